"""Tests for bayesrb.logs: a failed job's log says why it failed."""

import re

import pytest

from bayesrb.errors import BadInputError
from bayesrb.logs import log_to


def test_bad_input_is_one_error_line_then_the_traceback(tmp_path):
    log = tmp_path / "job.log"
    with pytest.raises(BadInputError), log_to(log):
        raise BadInputError("visits/v1/science.fits", "HDU 0 has no image data")
    lines = log.read_text().splitlines()
    assert lines[0].endswith("ERROR bayesrb: visits/v1/science.fits: HDU 0 has no image data")
    assert lines[1] == "Traceback (most recent call last):"


def test_any_other_failure_is_logged_with_its_type_and_traceback(tmp_path):
    log = tmp_path / "job.log"
    with pytest.raises(KeyError), log_to(log):
        {}["epochs"]
    text = log.read_text()
    assert "ERROR bayesrb: KeyError: 'epochs'" in text
    assert 'in test_any_other_failure_is_logged_with_its_type_and_traceback\n    {}["epochs"]' in text


def test_a_step_that_succeeds_ends_its_log_with_its_wall_time(tmp_path):
    log = tmp_path / "job.log"
    with log_to(log) as logger:
        logger.info("42 candidates")
    first, last = log.read_text().splitlines()
    assert first.endswith("INFO bayesrb: 42 candidates")
    assert re.search(r"INFO bayesrb: done in \d+\.\d\d s$", last)

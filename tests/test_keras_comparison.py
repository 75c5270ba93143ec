"""Tests for the comparison with the published stack: bayesrb.bench.model's Keras reference and ratios."""

import importlib.util
import sys

import pytest

from bayesrb.bench.model import (
    KERAS_SCRIPT,
    KerasSpeed,
    SpeedResult,
    keras_reference,
    median_keras,
    median_result,
    parse_keras_output,
    ratio_lines,
)
from bayesrb.cli import main

#: What benchmarks/keras_reference.py prints for --batch-sizes 64,128 (numbers made up).
KERAS_OUTPUT = """TensorFlow 2.21.0, Keras 3.15.1, all threads, oneDNN on
training, batch 64: 1610 stamps/s (median step)
model.fit, batch 64: 1580 stamps/s (one epoch of arrays in memory)
training, batch 128: 1651 stamps/s (median step)
model.fit, batch 128: 1602 stamps/s (one epoch of arrays in memory)
MC dropout 10000 x 50, tf.function: 86.5 s
"""


def test_the_keras_numbers_are_read_at_the_compared_batch_size():
    speed = parse_keras_output(KERAS_OUTPUT, 128)
    assert speed == KerasSpeed("TensorFlow 2.21.0, Keras 3.15.1, all threads, oneDNN on", 1651.0, 86.5)
    assert parse_keras_output(KERAS_OUTPUT, 64).train_stamps_per_s == 1610.0
    with pytest.raises(ValueError, match="no training speed at batch 256"):
        parse_keras_output(KERAS_OUTPUT, 256)


def test_ratios_are_bayesrb_over_keras():
    keras = KerasSpeed("TensorFlow", 1000.0, 80.0)
    lines = list(ratio_lines([SpeedResult("deterministic", 1250.0, 100.0, 6.0),
                              SpeedResult("bayesian (full)", 900.0, 80.0, 100.0)], keras))
    assert lines[1].split()[-2:] == ["1.25", "0.07"]
    assert lines[2].split()[-2:] == ["0.90", "1.25"]


def test_rounds_are_summarised_by_the_median_of_each_quantity():
    runs = [SpeedResult("bayesian (full)", 900.0, 80.0, 100.0, 0.7),
            SpeedResult("bayesian (full)", 700.0, 62.0, 140.0, 0.8),
            SpeedResult("bayesian (full)", 800.0, 71.0, 90.0, 0.75)]
    assert median_result(runs) == SpeedResult("bayesian (full)", 800.0, 71.0, 100.0, 0.75)
    assert median_result([SpeedResult("x", 1.0, 1.0, 1.0), SpeedResult("x", 3.0, 3.0, 3.0)]).onednn_share is None
    keras = median_keras([KerasSpeed("TF", 1000.0, 80.0), KerasSpeed("TF", 800.0, 120.0),
                          KerasSpeed("TF", 900.0, 90.0)])
    assert keras == KerasSpeed("TF", 900.0, 90.0)
    assert list(ratio_lines([median_result(runs)], keras))[1].split()[-2:] == ["0.89", "1.11"]


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None, reason="TensorFlow is installed here")
def test_an_environment_without_tensorflow_is_one_clear_error(capsys):
    assert KERAS_SCRIPT.is_file()
    with pytest.raises(RuntimeError, match="tensorflow.*install tensorflow-cpu in that environment"):
        keras_reference(sys.executable, steps=1, n_candidates=1, n_samples=1, batch_size=8)
    assert main(["benchmark-model", "--steps", "1", "--compare-keras", sys.executable]) == 1
    error = capsys.readouterr().err
    assert error.startswith("bayesrb benchmark-model: ") and "keras_reference.py failed" in error

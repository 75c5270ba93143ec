"""Tests for bayesrb.atomic: outputs replace only what the tool wrote, nothing else is ever deleted."""

import os
import subprocess
import sys

import pytest

from bayesrb.atomic import atomic_path, check_output_path, write_json
from bayesrb.errors import BadInputError


def _user_directory(path):
    path.mkdir()
    (path / "thesis.tex").write_text("years of work")
    return path


def test_file_output_overwrites_an_existing_file(tmp_path):
    target = tmp_path / "scores.json"
    target.write_text("old")
    write_json({"a": 1}, target)
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.json"]


@pytest.mark.parametrize("name", [".", "..", "sub/..", "user", "user/"])
def test_file_output_onto_a_directory_is_refused_and_deletes_nothing(tmp_path, monkeypatch, name):
    _user_directory(tmp_path / "user")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "notes.txt").write_text("keep")
    monkeypatch.chdir(tmp_path / "sub" if name == ".." else tmp_path)
    with pytest.raises(BadInputError, match="directory"):
        write_json({"a": 1}, name)
    assert (tmp_path / "user" / "thesis.tex").read_text() == "years of work"
    assert (tmp_path / "sub" / "notes.txt").read_text() == "keep"


def test_trailing_slash_on_a_new_name_is_refused_for_a_file(tmp_path):
    with pytest.raises(BadInputError, match="is a directory"):
        write_json({}, f"{tmp_path}/new/")
    assert not (tmp_path / "new").exists()


def test_refusal_comes_before_the_work(tmp_path):
    _user_directory(tmp_path / "user")
    ran = []
    with pytest.raises(BadInputError), atomic_path(tmp_path / "user"):
        ran.append(True)
    assert not ran


def test_directory_output_replaces_a_previous_output_of_its_kind(tmp_path):
    target = tmp_path / "store.zarr"
    for generation in ("first", "second"):
        with atomic_path(target, directory_signature="zarr.json") as tmp:
            tmp.mkdir()
            (tmp / "zarr.json").write_text(generation)
    assert (target / "zarr.json").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.zarr"]


def test_directory_output_into_an_empty_directory(tmp_path):
    (tmp_path / "model").mkdir()
    with atomic_path(tmp_path / "model", directory_signature="model.json") as tmp:
        tmp.mkdir()
        (tmp / "model.json").write_text("{}")
    assert (tmp_path / "model" / "model.json").read_text() == "{}"


def test_directory_output_refuses_a_foreign_directory_and_a_file(tmp_path):
    _user_directory(tmp_path / "user")
    with pytest.raises(BadInputError, match="not a previous output of this kind"):
        check_output_path(tmp_path / "user", directory_signature="zarr.json")
    (tmp_path / "file").write_text("x")
    with pytest.raises(BadInputError, match="is an existing file"):
        check_output_path(tmp_path / "file", directory_signature="zarr.json")
    assert (tmp_path / "user" / "thesis.tex").exists() and (tmp_path / "file").read_text() == "x"


def test_working_directory_is_refused_even_with_the_signature(tmp_path, monkeypatch):
    (tmp_path / "zarr.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadInputError, match="working directory"):
        check_output_path(".", directory_signature="zarr.json")
    with pytest.raises(BadInputError, match="working directory"):
        check_output_path(tmp_path.parent, directory_signature="zarr.json")


def test_failure_leaves_the_previous_output_and_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("previous")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_temporaries_of_dead_processes_are_removed_on_the_next_write(tmp_path):
    dead = _dead_pid()
    (tmp_path / f".out.json.tmp-{dead}").write_text("left by a killed job")
    (tmp_path / f".out.json.tmp-{dead}-old").mkdir()
    (tmp_path / f".out.json.tmp-{os.getppid()}").write_text("a running writer's")
    (tmp_path / f".other.json.tmp-{dead}").write_text("another output's")
    write_json({}, tmp_path / "out.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["out.json", f".out.json.tmp-{os.getppid()}", f".other.json.tmp-{dead}"])

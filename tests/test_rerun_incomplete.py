"""A workflow killed in the middle of training, restarted with --rerun-incomplete, gives the uninterrupted results."""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, assert_same_outputs, model_targets, snakemake, snakemake_command

pytestmark = pytest.mark.slow

#: Per-visit outputs of the session's run that the interrupted run starts from, so that it builds the data set and
#: trains (the stage with the most state to lose: a training folder with epoch checkpoints).
UPSTREAM = ("survey", "difference", "candidates", "stamps", "labels", "augment")


def _kill_at_first_checkpoint(results: Path, log: Path, timeout: float = 300) -> Path:
    """Run the tiny workflow, SIGKILL its process group once an epoch checkpoint appears; return the training folder.

    Only a finished checkpoint counts (orbax renames its temporary folder to the epoch number when done). Test
    runs take no lock (:data:`conftest.RUN_OPTIONS`), so the killed run leaves no stale lock behind. The folder is
    polled every 10 ms: on an idle machine the tiny config's second and last epoch and the final model take only
    ~0.3 s.
    """
    with log.open("w") as output:
        process = subprocess.Popen(snakemake_command(results, *model_targets(results)), cwd=ROOT,
                                   stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not (checkpoints := [p for p in results.glob("experiments/*/checkpoints/*/*") if p.name.isdigit()]):
            assert process.poll() is None, f"the run ended before any checkpoint:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no checkpoint after {timeout} s:\n{log.read_text()[-3000:]}"
            time.sleep(0.01)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return checkpoints[0].parents[2] / "training"


def test_killed_run_restarted_with_rerun_incomplete_gives_the_uninterrupted_results(tiny_run, tmp_path):
    results = tmp_path / "results"
    for folder in UPSTREAM:
        shutil.copytree(tiny_run / folder, results / folder)  # keeps the times, so Snakemake sees them complete
    training = _kill_at_first_checkpoint(results, tmp_path / "killed.log")
    assert not (training / "model").exists(), "the run was killed after training had finished"

    restart = snakemake(results, "--rerun-incomplete", *model_targets(results))
    # Snakemake reruns an incomplete output as forced (no --forcerun is given here)
    assert re.search(rf"output: {re.escape(str(training))}\n[^\[]*?reason: Forced execution", restart.stderr)
    # ... and its training resumes from the epoch checkpoint kept outside the deleted output
    assert "resuming from" in (results / "logs/train_model" / f"{training.parent.name}.log").read_text()
    assert_same_outputs(results, tiny_run)

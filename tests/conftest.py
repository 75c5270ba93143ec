"""Shared by the test modules: one tiny end-to-end workflow run per session and the comparison of two runs."""

import filecmp
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / ".test/config/config.yaml"
#: Outputs that two runs of the same config must have byte-identical (directories compared file by file).
IDENTICAL_OUTPUTS = ("stamps", "labels", "augment", "dataset/dataset.zarr")


#: Options of every workflow run of the tests. The runs take no lock: the suite's two worker processes run
#: workflows at the same time from the repository root, where Snakemake's numbered lock files in ``.snakemake/locks``
#: race (one run deletes the other's); each run writes its own results directory, which is what a lock protects.
RUN_OPTIONS = ("--cores", "2", "--nolock")


def snakemake_command(results: Path, *args: str, config: tuple[str, ...] = ()) -> list[str]:
    """The command line that runs the tiny workflow (:data:`RUN_OPTIONS`) into ``results`` from the repository root."""
    return [sys.executable, "-m", "snakemake", *args, *RUN_OPTIONS, "--configfile", str(TINY),
            "--config", f"results={results}", *config]


def snakemake(results: Path, *args: str, config: tuple[str, ...] = (), check: bool = True,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run :func:`snakemake_command`; with ``check``, a failure raises AssertionError showing Snakemake's output."""
    run = subprocess.run(snakemake_command(results, *args, config=config), cwd=ROOT, capture_output=True, text=True,
                         env=env)
    if check and run.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{run.stdout[-3000:]}\n{run.stderr[-6000:]}")
    return run


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep the tests that share an expensive fixture on one worker process (pytest-xdist's ``--dist loadgroup``).

    Every test of the session's :func:`tiny_run` goes to one worker, so that the tiny workflow runs once; the other
    tests go module by module, so that a module's own fixtures (a ZTF-like run, a SLURM cluster) are made once.
    """
    for item in items:
        group = "tiny_run" if "tiny_run" in getattr(item, "fixturenames", ()) else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The results directory of one uninterrupted local run of the tiny workflow."""
    results = tmp_path_factory.mktemp("tiny") / "results"
    snakemake(results)
    return results


def same_tree(a: Path, b: Path) -> bool:
    """Whether directories ``a`` and ``b`` hold the same files with the same bytes."""
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all(filecmp.cmp(a / f, b / f, shallow=False) for f in files_a)


def tiny_experiments() -> list[str]:
    """The experiment names of the tiny config."""
    return list(yaml.safe_load(TINY.read_text())["experiments"])


def model_targets(results: Path, experiments: Sequence[str] | None = None) -> list[str]:
    """The data set and the scores of ``experiments`` (default: every experiment of the tiny config): targets that
    need every rule up to scoring."""
    return [str(results / "dataset" / "dataset.zarr"),
            *(str(results / "experiments" / name / "scores.parquet") for name in experiments or tiny_experiments())]


def assert_same_outputs(results: Path, reference: Path, experiments: Sequence[str] | None = None) -> None:
    """Assert that a run gave the reference run's shards, labels, augmentation, data set and scores.

    The first four are compared byte for byte; the scores of ``experiments`` (default: every experiment of the tiny
    config) value for value (the message gives the largest difference of ``score_mean``).
    """
    for output in IDENTICAL_OUTPUTS:
        assert same_tree(results / output, reference / output), f"{output} differs from the reference run"
    for experiment in experiments or tiny_experiments():
        path = Path("experiments", experiment, "scores.parquet")
        scores, expected = pq.read_table(results / path), pq.read_table(reference / path)
        assert scores.num_rows == expected.num_rows, f"{path}: {scores.num_rows} rows, reference {expected.num_rows}"
        if not scores.equals(expected):
            difference = np.abs(scores["score_mean"].to_numpy() - expected["score_mean"].to_numpy()).max()
            raise AssertionError(f"{path} differs from the reference run (max |score_mean difference| {difference})")

"""Main stays lint clean: ruff on the code, snakemake --lint on the workflow."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "workflow"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout


def test_snakemake_lint_clean():
    run = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True)
    assert "Congratulations" in run.stdout + run.stderr, run.stdout + run.stderr

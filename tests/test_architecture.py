"""The boundaries between the parts (DESIGN.md "Boundaries"), as import-linter contracts in pyproject.toml."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                                      "sys.exit(lint_imports_command())"]


def lint_imports(package_root: Path) -> subprocess.CompletedProcess:
    """Run import-linter with the project's contracts on the ``bayesrb`` package found under ``package_root``."""
    return subprocess.run([*LINT_IMPORTS, "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=package_root,
                          env={"PYTHONPATH": str(package_root), "PATH": "/usr/bin:/bin"}, capture_output=True,
                          text=True)


def test_the_contracts_hold():
    run = lint_imports(ROOT / "src")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "broken" in run.stdout and ", 0 broken" in run.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("stamps/extract.py", "import bayesrb.simulate.truth", "never imports the simulator"),
    ("model/data.py", "import bayesrb.labels.automatic", "never the labelling code"),
    ("labels/synthetic.py", "import bayesrb.stamps.steps", "never libraries"),
    ("figures/recovery.py", "import bayesrb.evaluation.curves", "Figures only draw"),
    ("dataset/store.py", "import bayesrb.bench.workflow", "the library never imports them"),
    ("model/train.py", "import bayesrb.cli", "the library never imports them"),
])
def test_a_wrong_import_breaks_its_contract(tmp_path, module, line, contract):
    shutil.copytree(ROOT / "src" / "bayesrb", tmp_path / "bayesrb", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "bayesrb" / module
    target.write_text(target.read_text() + f"\n{line}  # a deliberate violation\n")
    run = lint_imports(tmp_path)
    assert run.returncode == 1, run.stdout[-4000:]
    broken = run.stdout.split("Broken contracts")[-1]
    assert contract in broken and line.split()[-1] in broken


def test_label_kinds_are_spelled_out_only_in_the_vocabulary():
    kind = re.compile(r"""["'](mp|randjunk|syntransient|glxresid|injected_[a-z]+)["']""")
    package = ROOT / "src" / "bayesrb"
    spelled = [f"{path.relative_to(package)}:{n}" for path in sorted(package.rglob("*.py"))
               if path.name != "vocabulary.py" and path.parent.name != "simulate"
               for n, line in enumerate(path.read_text().splitlines(), start=1)
               if kind.search(line)]
    assert spelled == []

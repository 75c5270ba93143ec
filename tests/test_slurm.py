"""The SLURM profile (profiles/slurm) on a real one-node SLURM cluster started for the test.

The tiny workflow, up to the scores of one experiment, goes through sbatch with the profile as users get it, plus
what this machine needs (its partition, small memory requests, job states from squeue since there is no accounting,
quick status checks), and must give the outputs of the local run. Without SLURM installed the test
is skipped, or fails when BAYESRB_REQUIRE_SLURM=1 (as in .ci/run).
"""

import importlib.util
import os
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, assert_same_outputs, model_targets, snakemake
from slurm_cluster import missing_programs, start_cluster

pytestmark = pytest.mark.slow

PROFILE = ROOT / "profiles" / "slurm"
#: MB asked for by every rule on the test node (the profile's requests are sized for paper-scale configs).
TEST_MEM_MB = 1000
#: The experiments trained and scored through SLURM: one, whose `model` group job is like every other's (all three
#: of the tiny config would add about a minute to the suite).
EXPERIMENTS = ("bcnn",)
#: Every rule the targets need; each must have run as (part of) a SLURM job.
PIPELINE_RULES = ("simulate_survey", "simulate_template", "simulate_visit", "subtract", "stamp_stage",
                  "label_visit", "augment_visit", "build_dataset", "train_model", "score_dataset")


def _unavailable() -> str | None:
    """Why SLURM cannot be tested here, or None."""
    if missing := missing_programs():
        return f"SLURM is not installed (missing {', '.join(missing)}; apt-get install slurmctld slurmd munge)"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if reason := _unavailable():
        if os.environ.get("BAYESRB_REQUIRE_SLURM") == "1":
            pytest.fail(f"{reason}, but BAYESRB_REQUIRE_SLURM=1")
        pytest.skip(reason)
    try:
        running = start_cluster(tmp_path_factory.mktemp("slurm"))
    except RuntimeError as error:
        pytest.fail(str(error))
    yield running
    running.stop()


def _overrides(partition: str, slurm_logs: Path) -> list[str]:
    """Command-line settings on top of the profile for the one-node test cluster."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    memory = [f"{rule}:mem_mb={TEST_MEM_MB}" for rule, resources in profile["set-resources"].items()
              if "mem_mb" in resources]
    return ["--default-resources", f"slurm_partition={partition}", f"mem_mb={TEST_MEM_MB}", "runtime=30",
            "--set-resources", *memory,
            "--slurm-status-command", "squeue", "--slurm-no-account", "--slurm-init-seconds-before-status-checks", "1",
            "--slurm-logdir", str(slurm_logs), "--slurm-keep-successful-logs", "--latency-wait", "5"]


def _submitted_jobs(output: str) -> dict[str, str]:
    """SLURM job id -> its log folder (``rule_<rule>`` or ``group_<group>_<rules>``), from Snakemake's output."""
    return dict(re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/((?:rule|group)_\w+)/", output))


def test_slurm_profile_gives_the_results_of_the_local_run(cluster, tiny_run, tmp_path):
    results = tmp_path / "results"
    run = snakemake(results, "--profile", str(PROFILE), *_overrides(cluster.partition, tmp_path / "slurm_logs"),
                    *model_targets(results, EXPERIMENTS), env=cluster.env, check=False)
    assert run.returncode == 0, f"{run.stderr[-6000:]}\n{cluster.log_tails()}"
    assert_same_outputs(results, tiny_run, EXPERIMENTS)

    jobs = _submitted_jobs(run.stderr + run.stdout)
    assert all(rule in " ".join(jobs.values()) for rule in PIPELINE_RULES)
    groups = [name.split("_")[1] for name in jobs.values() if name.startswith("group_")]
    assert set(groups) == {"imaging", "labels", "model"} and groups.count("model") == len(EXPERIMENTS)
    completed = set(re.findall(r"_job_complete: JobId=(\d+) WEXITSTATUS 0", cluster.log("slurmctld")))
    assert set(jobs) <= completed, "Snakemake reports jobs that slurmctld did not run to success"

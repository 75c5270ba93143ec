"""After a finished run, a config change reruns only the rules that read what changed (dry runs of the tiny run)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, TINY, tiny_experiments

from bayesrb.context.settings import ContextSettings

pytestmark = pytest.mark.slow

EXPERIMENT_RULES = {"train_model", "score_dataset", "training_curves", "evaluation_table", "experiment_metrics",
                    "experiment_figures", "comparison_figures", "paired_comparison", "metrics_summary", "all"}
#: What the context classifier reruns when its CNN changes: not the catalogue features.
CONTEXT_RULES = {"score_context_candidates", "context_table", "context_experiment", "context_figures",
                 "context_summary"}


def tiny_visits() -> int:
    """Visits of the tiny survey: its training, evaluation and context fields, each observed every night."""
    simulate = yaml.safe_load(TINY.read_text())["simulate"]
    return (simulate["n_fields"] + simulate["n_eval_fields"] + simulate["n_context_fields"]) * simulate["n_nights"]


def reversed_keys(value):
    """``value`` with every mapping's keys in reverse order (as a script generating configs might write them)."""
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in reversed(list(value))}
    return value


def scheduled(tiny_run: Path, tmp_path: Path, change=lambda config: None) -> dict[str, int]:
    """Jobs per rule that a dry run of the tiny config, keys reversed and ``change`` applied, would run."""
    config = yaml.safe_load(TINY.read_text()) | {"results": str(tiny_run)}
    change(config)
    configfile = tmp_path / "variant.yaml"
    configfile.write_text(yaml.safe_dump(reversed_keys(config), sort_keys=False))
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--cores", "2",
                          "--configfile", str(configfile)], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return {rule: int(n) for rule, n in re.findall(r"^([a-z_]+)\s+(\d+)$", run.stdout + run.stderr, re.MULTILINE)
            if rule != "total"}


def test_the_same_config_with_its_keys_in_another_order_reruns_nothing(tiny_run, tmp_path):
    assert scheduled(tiny_run, tmp_path) == {}


def test_a_changed_experiment_reruns_only_that_experiment(tiny_run, tmp_path):
    def longer_mc_dropout(config):
        config["experiments"]["mc_dropout"] = {"model": {"kind": "mc_dropout", "epochs": 3}}

    jobs = scheduled(tiny_run, tmp_path, longer_mc_dropout)
    assert set(jobs) == EXPERIMENT_RULES
    assert jobs["train_model"] == jobs["score_dataset"] == jobs["experiment_metrics"] == 1


def test_a_changed_context_cnn_reruns_the_context_stage_but_not_its_features(tiny_run, tmp_path):
    def longer_bcnn(config):
        config["experiments"]["bcnn"] = {"model": {"epochs": 3}}

    jobs = scheduled(tiny_run, tmp_path, longer_bcnn)
    assert set(jobs) == EXPERIMENT_RULES | CONTEXT_RULES
    assert jobs["context_experiment"] == len(ContextSettings().experiments)


def test_a_changed_context_experiment_reruns_only_that_context_experiment(tiny_run, tmp_path):
    def deeper_xgboost(config):
        config["context"]["experiments"] = {**ContextSettings().experiments, "xgboost": {"max_depth": 4}}

    jobs = scheduled(tiny_run, tmp_path, deeper_xgboost)
    assert jobs == {"context_experiment": 1, "context_figures": 1, "context_summary": 1, "all": 1}


def test_replicates_train_every_experiment_again_from_another_seed_and_rebuild_nothing_upstream(tiny_run, tmp_path):
    def two_replicates(config):
        config["replicates"] = 2

    jobs = scheduled(tiny_run, tmp_path, two_replicates)
    assert set(jobs) == EXPERIMENT_RULES - {"comparison_figures", "paired_comparison"}
    n_experiments = len(tiny_experiments())
    assert jobs["train_model"] == jobs["score_dataset"] == jobs["experiment_metrics"] == n_experiments  # NAME.r1
    assert jobs["metrics_summary"] == 1


def test_a_changed_scoring_setting_rescores_without_retraining(tiny_run, tmp_path):
    def more_samples(config):
        config["scoring"] = config["scoring"] | {"n_samples": 16}

    jobs = scheduled(tiny_run, tmp_path, more_samples)
    assert jobs["score_dataset"] == len(tiny_experiments())
    assert "train_model" not in jobs and "training_curves" not in jobs


def test_a_changed_evaluation_setting_trains_nothing(tiny_run, tmp_path):
    def stricter(config):
        config["evaluation"] = config["evaluation"] | {"threshold": 0.6}

    jobs = scheduled(tiny_run, tmp_path, stricter)
    assert jobs and set(jobs) <= {"experiment_metrics", "experiment_figures", "comparison_figures",
                                  "paired_comparison", "metrics_summary", "all"}


def test_a_changed_detection_setting_reruns_detection_not_subtraction(tiny_run, tmp_path):
    def deeper(config):
        config["imaging"] = config["imaging"] | {"detection_threshold": 4.5}

    jobs = scheduled(tiny_run, tmp_path, deeper)
    assert jobs["stamp_stage"] == tiny_visits() and "subtract" not in jobs and "simulate_visit" not in jobs


def test_a_changed_simulation_setting_reruns_the_simulation(tiny_run, tmp_path):
    def reseeded(config):
        config["simulate"]["seed"] = 8

    jobs = scheduled(tiny_run, tmp_path, reseeded)
    assert jobs["simulate_survey"] == 1 and jobs["simulate_visit"] == tiny_visits()
    assert jobs["train_model"] == len(tiny_experiments())

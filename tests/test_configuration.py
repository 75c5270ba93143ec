"""Tests for bayesrb.configuration: the whole config is checked before any job, every error names its key."""

import copy
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from bayesrb.configuration import RULE_SETTINGS, canonical, check_config, load_schema, rule_settings, split_replicate
from bayesrb.errors import BadInputError
from bayesrb.pipeline.plan import WorkflowPlan

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture(scope="module")
def schema():
    return load_schema(SCHEMA_PATH)


def validated(overrides: dict) -> dict:
    """The default config with ``overrides`` (top-level sections replaced), validated with defaults filled in."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text()) | copy.deepcopy(overrides)
    validate(config, str(SCHEMA_PATH))
    return config


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("*.yaml")), ids=lambda path: path.name)
def test_every_shipped_config_passes_the_checks(schema, path, tmp_path, monkeypatch):
    config = yaml.safe_load(path.read_text())
    validate(config, str(SCHEMA_PATH))
    monkeypatch.chdir(tmp_path)  # where the models that a config scores (`trained:`) were made by an earlier run
    for overrides in config["experiments"].values():
        if "trained" in (overrides or {}):
            (tmp_path / overrides["trained"]).mkdir(parents=True)
    assert check_config(config, schema)


def test_an_experiment_scoring_a_missing_model_is_one_clear_error(schema, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = validated({"experiments": {"old": {"trained": "elsewhere/training"}}, "context": {"enabled": False},
                        "evaluation": {"comparisons": {}}})
    with pytest.raises(BadInputError, match=r"experiments.old.trained: elsewhere/training is not a directory"):
        check_config(config, schema)
    (tmp_path / "elsewhere" / "training").mkdir(parents=True)
    assert check_config(config, schema)["old"]["trained"] == "elsewhere/training"
    config["context"] = config["context"] | {"enabled": True, "cnn_experiment": "old"}
    with pytest.raises(BadInputError, match="context.cnn_experiment.*needs a CNN trained on this run's fields"):
        check_config(config, schema)


def test_replicates_differ_only_in_their_model_seed(schema):
    experiments = check_config(validated({"replicates": 3}), schema)
    assert list(experiments)[:3] == ["bcnn", "bcnn.r1", "bcnn.r2"] and len(experiments) == 18
    seeds = [experiments[name]["model"]["seed"] for name in ("bcnn", "bcnn.r1", "bcnn.r2")]
    assert seeds[0] == 3 and len(set(seeds)) == 3
    for name in ("bcnn.r1", "bcnn.r2"):
        assert {**experiments[name]["model"], "seed": 3} == experiments["bcnn"]["model"]
        assert experiments[name]["training"] == experiments["bcnn"]["training"]
    assert split_replicate("bcnn.r2") == ("bcnn", 2) and split_replicate("bcnn") == ("bcnn", 0)
    assert check_config(validated({"replicates": 3}), schema)["bcnn.r1"] == experiments["bcnn.r1"]


def test_the_default_config_passes_and_gives_its_experiments(schema):
    experiments = check_config(validated({}), schema)
    assert list(experiments) == ["bcnn", "bcnn_noaug", "bcnn_head", "mc_dropout", "deterministic", "ensemble"]
    assert experiments["ensemble"]["model"]["ensemble_size"] == 5
    assert experiments["bcnn_head"]["model"]["scope"] == "head"
    assert experiments["bcnn_head"]["model"]["epochs"] == 30


@pytest.mark.parametrize(("overrides", "key", "message"), [
    ({"experiments": {"x": {"model": {"epochs": "ten"}}}}, "experiments.x.model.epochs", "'ten' is not of type"),
    ({"experiments": {"x": {"model": {"kind": "svm"}}}}, "experiments.x.model.kind", "'svm' is not one of"),
    ({"experiments": {"x": {"scoring": {"n_samples": 0}}}}, "experiments.x.scoring.n_samples",
     "less than the minimum"),
    ({"experiments": {"x": {"model": {"network": {"filters": []}}}}}, "experiments.x.model.network.filters",
     "should be non-empty"),
    ({"experiments": {"x": {"model": {"batch_size": -3}}}}, "experiments.x.model.batch_size",
     "less than the minimum"),
    ({"experiments": {"x": {"training": {"train_fraction": 2}}}}, "experiments.x.training.train_fraction",
     "greater than the maximum"),
    ({"experiments": {"x": {"training": {"channels": ["nope"]}}}}, "experiments.x.training.channels",
     r"\['nope'\] are not among stamps.channels"),
    ({"experiments": {}, "evaluation": {"comparisons": {}}}, "experiments", "defines no experiment"),
    ({"experiments": {"a+b": {}}, "evaluation": {"comparisons": {}}}, "experiments", r"name 'a\+b' must match"),
    ({"experiments": {"a": {}, "b": {}}, "evaluation": {"comparisons": {"a.b": ["a", "b"]}}},
     "evaluation.comparisons", r"name 'a.b' must match"),
    ({"stamps": {"size": 54}}, "stamps.size", "odd positive integer, got 54"),
    ({"dataset": {"fractions": {"train": 0.7, "val": 0.2, "test": 0.2}}}, "dataset.fractions", "sum to 1"),
    ({"dataset": {"chunk_stamps": 64, "shard_stamps": 100}}, "dataset.shard_stamps", "multiple of chunk_stamps"),
    ({"alerts": {"files": ["a.avro"], "experiment": "nope"}}, "alerts.experiment", "'nope' is not an experiment"),
    ({"alerts": {"files": ["a.avro"]}}, "alerts.experiment",
     r"'bcnn' reads 55x55 stamps .* ZTF's alert stamps are 63x63 of \['science', 'template', 'difference'\]"),
    ({"alerts": {"files": ["a.avro"], "survey": "Rubin"}, "stamps": {"size": 63}}, "alerts.experiment",
     r"'bcnn' reads 63x63 stamps .* Rubin's alert stamps are 29x29"),
])
def test_bad_values_are_one_error_naming_the_key(schema, overrides, key, message):
    config = validated(overrides)
    with pytest.raises(BadInputError, match=message) as error:
        check_config(config, schema)
    assert error.value.source == f"config {key}"


def test_a_bad_experiment_stops_the_dry_run_with_one_line(tmp_path):
    configfile = tmp_path / "bad.yaml"
    configfile.write_text(yaml.safe_dump(yaml.safe_load((ROOT / ".test" / "config" / "config.yaml").read_text())
                                         | {"experiments": {"bcnn": {"model": {"epochs": "ten"}}},
                                            "evaluation": {"comparisons": {}}}))
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(configfile)], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode != 0
    assert "config experiments.bcnn.model.epochs: 'ten' is not of type 'integer'" in run.stdout + run.stderr


def test_canonical_sorts_every_mapping_and_keeps_lists_in_order():
    config = {"b": {"z": 1, "a": [{"y": 2, "x": 3}]}, "a": None}
    assert repr(canonical(config)) == "{'a': None, 'b': {'a': [{'x': 3, 'y': 2}], 'z': 1}}"


def test_rule_keys_exist_and_subtract_and_detect_read_every_imaging_key(schema):
    keys = {rule: {field.name for field in dataclasses.fields(cls)} for rule, (_, cls) in RULE_SETTINGS.items()}
    for rule, (section, _) in RULE_SETTINGS.items():
        assert keys[rule] <= set(schema["properties"][section]["properties"])
    assert keys["subtract"] | keys["detect"] == set(schema["properties"]["imaging"]["properties"])
    assert rule_settings(validated({}), "detect") == {"detection_threshold": 5.0, "edge_margin_px": 10,
                                                      "low_usable": "warn", "min_area": 5, "min_usable_fraction": 0.5}



@pytest.mark.parametrize(("preset", "survey"), [("ztf", "ZTF"), ("rubin", "Rubin")])
def test_the_survey_presets_read_their_alerts_stamps(schema, preset, survey):
    settings = yaml.safe_load((ROOT / "config" / f"{preset}.yaml").read_text())
    config = validated(settings | {"alerts": {**settings["alerts"], "files": ["a.avro"]}})
    assert config["alerts"]["survey"] == survey
    assert set(check_config(config, schema)) == {"bcnn", "mc_dropout"}


def test_alert_files_are_expanded_once_each_and_an_entry_matching_nothing_is_an_error(tmp_path):
    (tmp_path / "night").mkdir()
    for path in (tmp_path / "a.avro", tmp_path / "night" / "b.avro"):
        path.write_bytes(b"")
    entries = [str(tmp_path / "a.avro"), str(tmp_path / "night"), str(tmp_path / "*.avro")]
    plan = WorkflowPlan(validated({"alerts": {"files": entries}}))
    assert plan.alert_files() == [str(tmp_path / "a.avro"), str(tmp_path / "night" / "b.avro")]
    plan = WorkflowPlan(validated({"alerts": {"files": [*entries, str(tmp_path / "nowhere" / "*.avro")]}}))
    with pytest.raises(BadInputError, match=r"'.*nowhere/\*.avro' matches no file") as error:
        plan.alert_files()
    assert error.value.source == "config alerts.files"

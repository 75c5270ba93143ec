import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from bayesrb.configuration import comparison_groups, experiment_models
from bayesrb.errors import BadInputError
from bayesrb.model.selection import TrainingData, selected_rows
from bayesrb.settings import settings_dict, settings_from
from bayesrb.vocabulary import AUGMENTED_KINDS

ROOT = Path(__file__).resolve().parents[1]
MODEL = {"kind": "bayesian", "scope": "full", "seed": 3, "network": {"filters": [16, 32], "dropout_rate": 0.5}}
TRAINING = {"augmentation": True, "train_fraction": 1.0, "channels": None}
SCORING = {"n_samples": 100, "batch_size": 1024}


def test_overrides_merge_into_the_model_training_and_scoring_sections_key_by_key():
    experiments = experiment_models({"model": MODEL, "training": TRAINING, "scoring": SCORING, "experiments": {
        "bcnn": {}, "head": {"model": {"scope": "head"}}, "wide": {"model": {"network": {"filters": [32, 64]}}},
        "noaug": {"training": {"augmentation": False}}, "more": {"scoring": {"n_samples": 200}},
        "elsewhere": {"trained": "other/results/experiments/bcnn/training"}}})
    assert experiments["bcnn"] == {"model": MODEL, "training": TRAINING, "scoring": SCORING, "trained": None}
    assert experiments["elsewhere"] == experiments["bcnn"] | {"trained": "other/results/experiments/bcnn/training"}
    assert experiments["more"]["scoring"] == {"n_samples": 200, "batch_size": 1024}
    assert experiments["head"]["model"]["scope"] == "head" and experiments["head"]["model"]["kind"] == "bayesian"
    assert experiments["wide"]["model"]["network"] == {"filters": [32, 64], "dropout_rate": 0.5}
    assert experiments["noaug"]["training"] == TRAINING | {"augmentation": False}
    assert experiments["noaug"]["model"] == MODEL
    assert MODEL["network"]["filters"] == [16, 32], "the base section must not change"


@pytest.mark.parametrize(("experiments", "message"), [
    ({"x": {"kind": "mc_dropout"}}, r"experiments.x.*unknown key\(s\) \['kind'\]; known keys are \['model', "
                                    r"'scoring', 'training'\]"),
    ({"x": {"model": {"kindd": "mc_dropout"}}}, r"experiments.x.model.*unknown key\(s\) \['kindd'\]"),
    ({"x": {"model": {"network": {"filter": [8]}}}}, r"experiments.x.model.network.*unknown key\(s\) \['filter'\]"),
    ({"x": {"model": {"network": 3}}}, r"experiments.x.model.network.*must be a mapping"),
    ({"x": {"training": {"augment": False}}}, r"experiments.x.training.*unknown key\(s\) \['augment'\]"),
    ({"bad name": {}}, r"name 'bad name' must match"),
])
def test_bad_experiments_are_one_clear_error(experiments, message):
    with pytest.raises(BadInputError, match=message):
        experiment_models({"model": MODEL, "training": TRAINING, "scoring": SCORING, "experiments": experiments})


def test_comparison_groups_must_name_defined_experiments():
    config = {"experiments": {"a": {}, "b": {}}, "evaluation": {"comparisons": {"ab": ["a", "b"]}}}
    assert comparison_groups(config) == {"ab": ["a", "b"]}
    config["evaluation"]["comparisons"]["ac"] = ["a", "c"]
    with pytest.raises(BadInputError, match=r"comparisons.ac.*unknown experiment\(s\) \['c'\]"):
        comparison_groups(config)


class _Store:
    """What selected_rows reads of a data set (a StampSource): the rows of a split and the kind column."""

    def __init__(self, kinds):
        self.kinds = np.array(kinds)

    def rows(self, split):
        return slice(0, len(self.kinds)) if split == "train" else slice(2, len(self.kinds))

    def column(self, name, rows):
        assert name == "kind"
        return self.kinds[rows]


def test_selected_rows_drop_augmentation_and_subsample_training_only():
    kinds = ["mp", "syntransient", "randjunk", "glxresid"] * 50
    store = _Store(kinds)
    no_aug = selected_rows(store, "train", TrainingData(augmentation=False), seed=1)
    assert np.array_equal(no_aug, ~np.isin(kinds, AUGMENTED_KINDS))
    assert selected_rows(store, "train", TrainingData(), seed=1).all()

    quarter = selected_rows(store, "train", TrainingData(augmentation=False, train_fraction=0.25), seed=1)
    assert quarter.sum() == 25 and not (quarter & ~no_aug).any()  # ceil(0.25 * 100), among the kept rows
    assert np.array_equal(quarter, selected_rows(store, "train", TrainingData(False, 0.25), seed=1))
    assert not np.array_equal(quarter, selected_rows(store, "train", TrainingData(False, 0.25), seed=2))
    assert selected_rows(store, "val", TrainingData(train_fraction=0.25), seed=1).all()  # fraction: train only


def test_training_data_config_is_checked():
    assert settings_from(TrainingData, None, "training") == TrainingData()
    data = settings_from(TrainingData, {"channels": ["difference"]}, "training")
    assert data.channels == ("difference",) and settings_dict(data)["channels"] == ["difference"]
    with pytest.raises(ValueError, match="train_fraction"):
        TrainingData(train_fraction=0.0)
    with pytest.raises(ValueError, match="distinct"):
        TrainingData(channels=("science", "science"))
    with pytest.raises(BadInputError, match=r"unknown key\(s\) \['fraction'\]"):
        settings_from(TrainingData, {"fraction": 0.5}, "training")


@pytest.mark.parametrize("configfile", sorted(ROOT.glob("config/*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_plan_their_experiments(configfile):
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--configfile", str(configfile)],
                         cwd=ROOT, capture_output=True, text=True)
    config = yaml.safe_load(configfile.read_text())
    experiments = config.get("experiments", {"bcnn": {}})
    missing = [name for name, overrides in experiments.items()
               if "trained" in (overrides or {}) and not (ROOT / overrides["trained"]).is_dir()]
    if missing:  # a config scoring the models of a run not made here: one clear error naming the first
        assert run.returncode != 0
        first = missing[0]
        message = f"experiments.{first}.trained: {experiments[first]['trained']} is not a directory"
        assert message in run.stdout + run.stderr
        return
    assert run.returncode == 0, run.stderr[-3000:]
    trained_here = sum("trained" not in (overrides or {}) for overrides in experiments.values())
    planned = re.search(r"^train_model\s+(\d+)$", run.stdout + run.stderr, re.MULTILINE)
    assert int(planned.group(1) if planned else 0) == trained_here * config.get("replicates", 1)

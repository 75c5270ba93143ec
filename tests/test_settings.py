"""One settings idiom: settings_from builds every part's settings; their defaults are the schema's."""

import dataclasses
from pathlib import Path

import pytest

from bayesrb.configuration import load_schema
from bayesrb.context.settings import ClassifierSettings, ContextSettings, FeatureSettings
from bayesrb.dataset.settings import DatasetSettings
from bayesrb.errors import BadInputError
from bayesrb.evaluation.settings import EvaluationSettings
from bayesrb.imaging.settings import DetectSettings, SubtractSettings
from bayesrb.labels.settings import AugmentSettings, LabelSettings
from bayesrb.model.methods import ModelSettings
from bayesrb.model.network import NetworkConfig
from bayesrb.model.scoring import ScoringSettings
from bayesrb.model.selection import TrainingData
from bayesrb.settings import settings_dict, settings_from
from bayesrb.simulate.settings import SurveySettings
from bayesrb.stamps.settings import StampSettings

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")
SECTIONS = [("simulate", SurveySettings), ("imaging", SubtractSettings), ("imaging", DetectSettings),
            ("labels", LabelSettings), ("augment", AugmentSettings), ("evaluation", EvaluationSettings),
            ("model", ModelSettings), ("model.network", NetworkConfig), ("training", TrainingData),
            ("scoring", ScoringSettings), ("stamps", StampSettings), ("dataset", DatasetSettings),
            ("context", ContextSettings), ("context.features", FeatureSettings), ("context.model", ClassifierSettings)]


def schema_section(path: str) -> dict:
    section = SCHEMA
    for key in path.split("."):
        section = section["properties"][key]
    return section["properties"]


@pytest.mark.parametrize(("path", "cls"), SECTIONS, ids=[f"{p}-{c.__name__}" for p, c in SECTIONS])
def test_the_defaults_of_every_settings_class_are_the_schemas(path, cls):
    schema = schema_section(path)
    defaults = settings_dict(cls())
    for field in dataclasses.fields(cls):
        assert field.name in schema, f"{cls.__name__}.{field.name} is not a key of {path}"
        assert schema[field.name].get("description"), f"{path}.{field.name} has no description"
        if "default" in schema[field.name] and not dataclasses.is_dataclass(getattr(cls(), field.name)):
            assert defaults[field.name] == schema[field.name]["default"], f"{path}.{field.name}"


def test_settings_from_builds_nested_settings_with_tuples():
    settings = settings_from(ModelSettings, {"kind": "mc_dropout", "network": {"filters": [8, 16]}}, "model")
    assert settings.kind == "mc_dropout" and settings.network == NetworkConfig(filters=(8, 16))
    assert settings_from(ModelSettings, settings_dict(settings), "model") == settings


@pytest.mark.parametrize(("section", "where", "message"), [
    ({"kindd": "x"}, "config experiments.a.model", r"unknown key\(s\) \['kindd'\]; known keys are \["),
    ({"network": {"filter": [8]}}, "config experiments.a.model.network", r"unknown key\(s\) \['filter'\]"),
    ({"kind": "svm"}, "config experiments.a.model", "model.kind must be one of"),
])
def test_settings_from_names_the_key_path(section, where, message):
    with pytest.raises(BadInputError, match=message) as error:
        settings_from(ModelSettings, section, "experiments.a.model")
    assert error.value.source == where

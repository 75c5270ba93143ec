import pytest

from bayesrb.errors import BadInputError
from bayesrb.workflow import experiment_models

MODEL = {"kind": "bayesian", "scope": "full", "seed": 3, "network": {"filters": [16, 32], "dropout_rate": 0.5}}


def test_overrides_merge_into_the_model_section_key_by_key():
    models = experiment_models({"model": MODEL, "experiments": {
        "bcnn": {}, "head": {"scope": "head"}, "wide": {"network": {"filters": [32, 64]}}}})
    assert models["bcnn"] == MODEL
    assert models["head"]["scope"] == "head" and models["head"]["kind"] == "bayesian"
    assert models["wide"]["network"] == {"filters": [32, 64], "dropout_rate": 0.5}
    assert MODEL["network"]["filters"] == [16, 32], "the base section must not change"


@pytest.mark.parametrize(("experiments", "message"), [
    ({"x": {"kindd": "mc_dropout"}}, r"experiments.x.*unknown key\(s\) \['kindd'\]"),
    ({"x": {"network": {"filter": [8]}}}, r"experiments.x.network.*unknown key\(s\) \['filter'\]"),
    ({"x": {"network": 3}}, r"experiments.x.network.*must be a mapping"),
    ({"bad name": {}}, r"name 'bad name' must match"),
])
def test_bad_experiments_are_one_clear_error(experiments, message):
    with pytest.raises(BadInputError, match=message):
        experiment_models({"model": MODEL, "experiments": experiments})

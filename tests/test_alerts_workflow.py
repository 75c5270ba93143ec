"""The tiny ZTF-like workflow: it trains on 63x63 science/template/difference stamps, and scores real alerts.

The alert rules run when the shared ZTF packets (../shared/data/ztf_alerts) are there; without them the ZTF-like
survey still trains and scores.
"""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import ROOT, RUN_OPTIONS

from bayesrb.figures.names import ALERT_GALLERIES
from bayesrb.model.checkpoint import read_model_meta
from bayesrb.model.data import StampSource
from bayesrb.pipeline import paths

TINY_ZTF = ROOT / ".test" / "config" / "ztf.yaml"
ALERTS = ROOT.parent / "shared" / "data" / "ztf_alerts"
N_ALERTS = 38  # alerts in the shared packets (PROVENANCE.md there)
needs_alerts = pytest.mark.skipif(not ALERTS.is_dir(), reason=f"the shared ZTF alert packets are not at {ALERTS}")


@pytest.fixture(scope="module")
def ztf_run(tmp_path_factory) -> Path:
    """The results of one run of the tiny ZTF-like config, scoring the shared alerts when they are there."""
    results = tmp_path_factory.mktemp("ztf") / "results"
    configs = [str(TINY_ZTF)]
    if ALERTS.is_dir():
        extra = results.parent / "alerts.yaml"
        extra.write_text(yaml.safe_dump({"alerts": {"files": [str(ALERTS)]}}))
        configs.append(str(extra))
    run = subprocess.run([sys.executable, "-m", "snakemake", *RUN_OPTIONS, "--configfile", *configs,
                          "--config", f"results={results}"], cwd=ROOT, capture_output=True, text=True)
    if run.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{run.stdout[-3000:]}\n{run.stderr[-6000:]}")
    return results


def test_the_ztf_like_survey_trains_a_model_of_ztf_cutouts(ztf_run):
    store = StampSource(ztf_run / "dataset" / "dataset.zarr")
    assert store.channels == ("science", "template", "difference") and store.stamp_shape == (63, 63)
    synthetic = store.column("kind") == "syntransient"
    assert set(store.column("sign")[synthetic]) == {-1, 1}  # augment.fading_fraction: faded transients
    variables = store.column("kind") == "synvariable"
    assert variables.any() and set(store.column("sign")[variables]) == {-1, 1}  # stars brightened and faded
    assert (store.column("label")[variables] == 1).all()
    spec = read_model_meta(ztf_run / "experiments" / "bcnn" / "training" / "model")["input_spec"]
    assert (spec["channels"], spec["stamp_size"]) == (["science", "template", "difference"], 63)
    scores = pd.read_parquet(ztf_run / "experiments" / "bcnn" / "scores.parquet")
    assert len(scores) == len(store) and scores["score_mean"].between(0, 1).all()


@needs_alerts
def test_alert_scores_are_joined_to_the_packets(ztf_run):
    table = pq.read_table(paths.alert_scores(str(ztf_run)))
    scores = table.to_pandas()
    store = StampSource(paths.alert_store(str(ztf_run)))
    assert len(scores) == len(store) == N_ALERTS
    assert scores["candidate_id"].tolist() == [str(c) for c in store.column("candidate_id")]
    assert scores["score_mean"].between(0, 1).all() and (scores["score_p95"] >= scores["score_p05"]).all()
    assert scores["drb"].notna().all() and set(scores["isdiffpos"]) == {"t", "f"}
    assert table.schema.metadata[b"model_kind"] == b"bayesian"


@needs_alerts
def test_the_comparison_with_ztf_reports_every_group_and_the_galleries_are_drawn(ztf_run):
    comparison = json.loads(Path(paths.alert_comparison(str(ztf_run), "json")).read_text())
    scores = pd.read_parquet(paths.alert_scores(str(ztf_run)))
    assert comparison["n_alerts"] == N_ALERTS and comparison["spearman"]["drb"]["n"] == N_ALERTS
    assert comparison["auroc"]["n_bogus"] == 0 and comparison["auroc"]["value"] is None
    called = comparison["called_real"]
    assert called["all"]["k"] == int((scores["score_mean"] >= 0.5).sum())
    assert called["known_asteroids"]["n"] == int((scores["ssdistnr"] < 2).sum()) > 0
    assert called["negative"]["n"] == int((scores["sign"] < 0).sum()) == 5
    assert "Simulated-to-real check: 38 real ZTF alerts" in Path(paths.alert_comparison(str(ztf_run), "md")).read_text()
    for order in ALERT_GALLERIES:
        assert Path(paths.alert_gallery(str(ztf_run), order)).stat().st_size > 10_000

"""The tiny end-to-end workflow (.test/config/config.yaml) run by Snakemake itself, plus its failure modes."""

import filecmp
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from conftest import same_tree, snakemake

from bayesrb.dataset.store import open_dataset
from bayesrb.stamps.shard import SHARD_META_COLUMNS, read_shard

FIELDS = ("F00", "F01", "F02", "E00", "C00", "C01")
VISITS = tuple(f"{field}-n{night:02d}-v00" for night in range(2) for field in FIELDS)
DATASET_VISITS = tuple(v for v in VISITS if not v.startswith("C"))  # context fields never enter the CNN's data set
TRAINING_VISITS = tuple(v for v in DATASET_VISITS if not v.startswith("E"))

pytestmark = pytest.mark.slow


def test_every_visit_has_a_valid_shard(tiny_run):
    total, kinds = 0, []
    for visit in VISITS:
        shard = read_shard(tiny_run / "stamps" / f"{visit}.zarr")
        assert shard.stamps.dtype == np.float32 and shard.stamps.shape[1:] == (31, 31, 4)
        assert shard.channels == ("science", "template", "difference", "subframe_ptp")
        assert set(SHARD_META_COLUMNS) <= set(shard.meta)
        assert np.all(shard.meta["visit"] == visit)
        assert np.all(np.isfinite(shard.stamps))
        assert shard.attrs["stamp_size"] == 31 and shard.attrs["seed"] == 7
        assert not any(name.startswith("truth_") for name in shard.meta), "the simulator's truth leaked into a shard"
        truth = Table.read(tiny_run / "truth" / f"{visit}.ecsv")
        assert list(truth["candidate_id"]) == list(shard.meta["candidate_id"])
        total += len(shard)
        kinds += np.ma.filled(truth["truth_kind"], "").tolist()  # ECSV reads an empty string back as masked
    assert total > 20
    assert kinds.count("mp") >= 2, "minor planets placed by the simulator must be detected"
    assert set(kinds) & {"variable_star", "sn", "hostless", "nuclear", "agn"}, "real variability must be detected"


def test_every_rule_logged_and_benchmarked(tiny_run):
    per_rule = {"augment_visit": TRAINING_VISITS, "label_visit": DATASET_VISITS}
    for rule in ("subtract", "stamp_stage", "simulate_visit", "label_visit", "augment_visit", "context_features"):
        visits = per_rule.get(rule, VISITS)
        assert len(list((tiny_run / "benchmarks" / rule).glob("*.tsv"))) == len(visits)
    for step in ("subtract", "detect", "extract_stamps", "simulate_visit", "label_visit", "augment_visit",
                 "context_features"):
        logs = list((tiny_run / "logs" / step).glob("*.log"))
        assert len(logs) == len(per_rule.get(step, VISITS))
        assert all(" INFO bayesrb: done in " in log.read_text().splitlines()[-1] for log in logs)
    for rule in ("earth_orientation", "build_dataset", "label_purity", "dataset_figures"):
        assert (tiny_run / "benchmarks" / f"{rule}.tsv").is_file() and (tiny_run / "logs" / f"{rule}.log").is_file()


def test_same_seed_gives_byte_identical_shards_labels_and_augmentation(tiny_run, tmp_path):
    again = tmp_path / "results"
    targets = [f"stamps/{VISITS[0]}.zarr", f"labels/{VISITS[0]}.ecsv", f"augment/{VISITS[0]}.zarr"]
    snakemake(again, *(str(again / t) for t in targets))
    assert same_tree(tiny_run / targets[0], again / targets[0])
    assert filecmp.cmp(tiny_run / targets[1], again / targets[1], shallow=False)
    assert same_tree(tiny_run / targets[2], again / targets[2])


def test_minor_planets_placed_by_the_simulator_are_labelled_real(tiny_run):
    n_mp = 0
    for visit in DATASET_VISITS:
        labels = Table.read(tiny_run / "labels" / f"{visit}.ecsv")
        meta = Table.read(tiny_run / "truth" / f"{visit}.ecsv")
        row = {c: i for i, c in enumerate(meta["candidate_id"])}
        for candidate, kind, designation in zip(labels["candidate_id"], labels["kind"], labels["mp_designation"],
                                                strict=True):
            if kind == "mp":
                n_mp += 1
                assert meta["truth_kind"][row[candidate]] == "mp"
                assert meta["truth_designation"][row[candidate]] == designation
    assert n_mp >= 4


def test_dataset_splits_by_field_and_keeps_evaluation_out_of_training(tiny_run):
    dataset = open_dataset(tiny_run / "dataset" / "dataset.zarr")
    split, field, kind = (np.asarray(dataset.meta[c]) for c in ("split", "field", "kind"))
    assert all(len(set(split[field == f])) == 1 for f in set(field)), "a field is in two splits"
    assert set(split[field == "E00"]) == {"eval"} and "E00" not in set(field[split != "eval"])
    assert not any(k.startswith("injected_") for k in kind[split != "eval"])
    assert {"mp", "randjunk", "syntransient", "glxresid"} <= set(kind[split == "train"])
    assert set(kind[split == "eval"]) & {"injected_sn", "injected_nuclear", "injected_hostless"}
    assert np.array_equal(np.unique(dataset.meta["label"]), [0, 1])
    purity = json.loads((tiny_run / "dataset" / "purity.json").read_text())
    assert purity["classes"]["real"]["n"] == int(((kind == "mp") & (split != "eval")).sum())
    assert purity["evaluation_fields"]["classes"]["bogus"]["n"] == int(((kind == "randjunk") & (split == "eval")).sum())
    for name in ("gallery", "label_counts", "magnitudes", "host_offsets"):
        assert (tiny_run / "figures" / "dataset" / f"{name}.png").stat().st_size > 10_000
    assert not {"C00", "C01"} & set(field), "context fields must never enter the CNN's data set"


def test_the_context_classifier_writes_every_output_without_leakage(tiny_run):
    import pandas as pd

    from bayesrb.context.settings import ContextSettings
    from bayesrb.figures.names import CONTEXT_FIGURES
    from bayesrb.vocabulary import CONTEXT_CLASSES

    summary = json.loads((tiny_run / "dataset" / "summary.json").read_text())
    cnn_training = set(summary["split_fields"]["train"]) | set(summary["split_fields"]["val"])
    table = pd.read_parquet(tiny_run / "context" / "table.parquet")
    assert not cnn_training & set(table["field"]), "CNN training fields leaked into the context table"
    assert set(table.loc[table["field"].isin({"C00", "C01"}), "split"]) == {"train", "val"}
    assert set(table.loc[table["field"] == "E00", "split"]) == {"test"}
    for family in ("stars", "variables", "agn", "galaxies"):  # the simulated survey's catalogues were read
        assert table[f"{family}_state"].notna().mean() > 0.5 and (table[f"{family}_state"] == 0).any()
    assert (table["stars_state"] == 1).any() and table["host_ddlr"].notna().any()
    scored = pd.read_parquet(tiny_run / "context" / "cnn_scores.parquet")
    assert set(table["candidate_id"]) <= set(scored["candidate_id"])
    assert not any(c.split("-")[0] in cnn_training for c in scored["candidate_id"])
    for experiment in ContextSettings().experiments:
        folder = tiny_run / "context" / experiment
        scores = pd.read_parquet(folder / "scores.parquet")
        assert len(scores) == len(table)
        mean = scores[[f"p_{c}" for c in CONTEXT_CLASSES]].to_numpy()
        np.testing.assert_allclose(mean.sum(axis=1), 1.0, atol=1e-5)
        assert np.all(scores[[f"p_{c}_std" for c in CONTEXT_CLASSES]].to_numpy() >= 0)
        np.testing.assert_allclose(scores["real_bogus"], 1 - scores["p_bs"])
        metrics = json.loads((folder / "metrics.json").read_text())
        test = metrics["splits"]["test"]
        assert test["n"] == int((table["split"] == "test").sum())
        assert sum(map(sum, test["confusion_matrix"])) == test["n"]
        assert 0 <= test["accuracy"]["ci95"][0] <= test["accuracy"]["value"] <= test["accuracy"]["ci95"][1] <= 1
        assert set(metrics["censoring"]) == {"stars", "variables", "agn", "galaxies", "all"}
        shares = [share for _, share in metrics["feature_importance"]]
        assert sum(shares) == pytest.approx(1.0) and shares == sorted(shares, reverse=True)
        for name in CONTEXT_FIGURES:
            assert (folder / "figures" / f"{name}.png").stat().st_size > 10_000
        assert (tiny_run / "logs" / "context_experiment" / f"{experiment}.log").is_file()
    summary_table = (tiny_run / "context" / "metrics.md").read_text()
    assert all(f"| {e} |" in summary_table for e in ContextSettings().experiments)


def test_unknown_config_key_is_one_clear_error(tmp_path):
    run = snakemake(tmp_path / "results", "-n", config=("stamps={'size': 31, 'colour': 1}",), check=False)
    assert run.returncode != 0
    assert "colour" in run.stdout + run.stderr


def _manifest(tmp_path: Path, tiny_run: Path) -> Path:
    """A FITS-source manifest over simulator output: one good visit, one external difference, the workflow's own
    difference file given as external, a science image with inf pixels, and two bad visits (a corrupt science
    image, an external difference on another grid)."""
    survey = tiny_run / "survey"
    science = {v: survey / "visits" / v / "science.fits" for v in VISITS}
    good = science[VISITS[0]]
    corrupt = tmp_path / "corrupt.fits"
    corrupt.write_bytes(good.read_bytes()[: 2880 * 3])
    external, cropped = tmp_path / "external_diff.fits", tmp_path / "cropped_diff.fits"
    with fits.open(tiny_run / "difference" / f"{VISITS[1]}.fits") as hdul:
        fits.PrimaryHDU(hdul["DIFF"].data, hdul["DIFF"].header).writeto(external)
        fits.PrimaryHDU(hdul["DIFF"].data[:-3], hdul["DIFF"].header).writeto(cropped)
    with_inf = tmp_path / "science_inf.fits"
    with fits.open(science[VISITS[2]]) as hdul:
        hdul[0].data[:20, :20] = np.inf
        hdul.writeto(with_inf)
    template = survey / "templates"
    rows = ["visit,field,science,template,difference",
            f"good,F00,{good},{template / 'F00.fits'},",
            f"prediff,F01,{science[VISITS[1]]},{template / 'F01.fits'},{external}",
            f"owndiff,F02,{science[VISITS[2]]},{template / 'F02.fits'},{tiny_run / 'difference' / f'{VISITS[2]}.fits'}",
            f"infpixels,F02,{with_inf},{template / 'F02.fits'},",
            f"broken,F00,{corrupt},{template / 'F00.fits'},",
            f"othergrid,F01,{science[VISITS[1]]},{template / 'F01.fits'},{cropped}"]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def test_fits_source_matches_simulate_source_and_isolates_bad_files(tiny_run, tmp_path):
    manifest = _manifest(tmp_path, tiny_run)
    results = tmp_path / "results"
    run = snakemake(results, "--keep-going", config=(f"survey={{'source': 'fits', 'fits_manifest': '{manifest}'}}",),
                    check=False)
    assert run.returncode != 0  # the bad visits fail ...
    for visit in ("broken", "othergrid"):
        assert not (results / "stamps" / f"{visit}.zarr").exists()  # ... and leave nothing behind
    message = (results / "logs" / "subtract" / "broken.log").read_text()
    assert "corrupt.fits" in message and ("truncated" in message or "corrupt" in message)
    message = (results / "logs" / "detect" / "othergrid.log").read_text()
    assert "cropped_diff.fits: image shape" in message and f"science image {tiny_run}" in message
    fits_shard = read_shard(results / "stamps" / "good.zarr")  # the good visits complete
    simulated = read_shard(tiny_run / "stamps" / f"{VISITS[0]}.zarr")
    assert np.array_equal(fits_shard.stamps, simulated.stamps)
    assert np.array_equal(fits_shard.meta["x"], simulated.meta["x"])
    assert "truth_kind" not in fits_shard.meta
    prediff = read_shard(results / "stamps" / "prediff.zarr")
    assert len(prediff) > 0 and np.all(np.isfinite(prediff.stamps))
    own = read_shard(results / "stamps" / "owndiff.zarr")
    assert np.array_equal(own.stamps, read_shard(tiny_run / "stamps" / f"{VISITS[2]}.zarr").stamps)
    inf = read_shard(results / "stamps" / "infpixels.zarr")
    assert len(inf) > 0 and np.all(np.isfinite(inf.stamps))
    near_inf = (inf.meta["x"] < 34.5) & (inf.meta["y"] < 34.5)  # 31-pixel stamps reaching the 20x20 inf corner
    assert np.all(inf.meta["stamp_flags"][near_inf] & 2)  # FLAG_NAN: the masked pixels are recorded


def test_wrong_config_type_is_one_clear_error(tmp_path):
    run = snakemake(tmp_path / "results", "-n", config=("stamps={'size': 'big'}",), check=False)
    assert run.returncode != 0
    assert "'big' is not of type 'integer'" in run.stdout + run.stderr


def test_empty_candidate_list_gives_empty_shard(tiny_run, tmp_path):
    from astropy.table import Table

    from bayesrb.imaging.detect import empty_candidates
    from bayesrb.simulate.files import write_truth_matches
    from bayesrb.stamps.settings import StampSettings
    from bayesrb.stamps.steps import stamp_visit

    visit = VISITS[0]
    empty = tmp_path / "none.ecsv"
    Table(empty_candidates()).write(empty, format="ascii.ecsv")
    survey = tiny_run / "survey"
    out = tmp_path / "empty.zarr"
    stamp_visit(visit, str(survey / "visits" / visit / "science.fits"), str(survey / "templates" / "F00.fits"),
                str(tiny_run / "difference" / f"{visit}.fits"), str(empty), str(out), StampSettings(size=31),
                seed=7, config_hash="test")
    shard = read_shard(out)
    assert shard.stamps.shape == (0, 31, 31, 4)
    assert len(shard.meta["candidate_id"]) == 0
    write_truth_matches(str(out), str(survey / "visits" / visit / "truth.ecsv"), str(tmp_path / "truth.ecsv"))
    truth = Table.read(tmp_path / "truth.ecsv")
    assert len(truth) == 0 and {"candidate_id", "truth_kind", "truth_mag"} <= set(truth.colnames)


def test_benchmark_summary_counts_every_stamp_and_visit(tiny_run):
    from bayesrb.bench.workflow import PIPELINE_RULES, report, rule_costs, throughput

    stamps = sum(len(read_shard(tiny_run / "stamps" / f"{v}.zarr")) for v in VISITS)
    figures = throughput(tiny_run)
    assert figures["stamps"] == stamps and figures["visits"] == len(VISITS)
    costs = rule_costs(tiny_run, PIPELINE_RULES)
    assert [c.rule for c in costs] == list(PIPELINE_RULES) and all(c.jobs == len(VISITS) for c in costs)
    assert figures["seconds"] == pytest.approx(sum(c.seconds for c in costs))
    assert figures["stamps_per_second_per_core"] == pytest.approx(stamps / figures["seconds"])
    assert f"stamps: {stamps} from {len(VISITS)} visits" in report(tiny_run)


def test_every_experiment_is_trained_and_scores_every_candidate(tiny_run):
    import pyarrow.parquet as pq

    from bayesrb.model.score import SCORE_COLUMNS

    dataset = open_dataset(tiny_run / "dataset" / "dataset.zarr")
    for experiment, kind in (("bcnn", "bayesian"), ("mc_dropout", "mc_dropout")):
        scores = pq.read_table(tiny_run / "experiments" / experiment / "scores.parquet")
        assert tuple(scores.column_names) == SCORE_COLUMNS
        assert scores.schema.metadata[b"model_kind"].decode() == kind
        assert scores["candidate_id"].to_pylist() == dataset.meta["candidate_id"].tolist()
        mean = scores["score_mean"].to_numpy()
        assert np.all((mean >= 0) & (mean <= 1))
        assert np.all(scores["score_p05"].to_numpy() <= scores["score_p95"].to_numpy())
        history = json.loads((tiny_run / "experiments" / experiment / "training" / "history.json").read_text())
        assert [entry["epoch"] for entry in history] == [1, 2]
        assert (tiny_run / "experiments" / experiment / "figures" / "training_curves.png").stat().st_size > 10_000


def test_an_experiment_scores_the_model_another_run_trained(tiny_run, tmp_path):
    """``trained: DIR`` scores that model without training one; with bcnn's seed and scoring settings the scores are
    bcnn's own, and the learned prior scales of the tiny bcnn (``prior: learned``) are in its model."""
    import pandas as pd
    import yaml
    from conftest import RUN_OPTIONS, TINY

    from bayesrb.model.checkpoint import read_model_meta

    config = yaml.safe_load(TINY.read_text())
    config["experiments"]["rescored"] = {"trained": str(tiny_run / "experiments" / "bcnn" / "training")}
    configfile = tmp_path / "rescore.yaml"
    configfile.write_text(yaml.safe_dump(config))
    target = tiny_run / "experiments" / "rescored" / "scores.parquet"
    run = subprocess.run([sys.executable, "-m", "snakemake", str(target), *RUN_OPTIONS, "--configfile",
                          str(configfile), "--config", f"results={tiny_run}"], cwd=TINY.parents[2],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "train_model" not in run.stdout + run.stderr
    bcnn_scores = tiny_run / "experiments" / "bcnn" / "scores.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(target), pd.read_parquet(bcnn_scores))
    assert read_model_meta(tiny_run / "experiments" / "bcnn" / "training" / "model")["settings"]["prior"] == "learned"


def test_the_ensemble_trains_two_members_and_scores_with_both(tiny_run):
    import pyarrow.parquet as pq

    training = tiny_run / "experiments" / "ensemble_noaug" / "training"
    histories = json.loads((training / "history.json").read_text())["members"]
    assert [[entry["epoch"] for entry in history] for history in histories] == [[1, 2], [1, 2]]
    assert all((training / "members" / member / "model" / "model.json").is_file() for member in ("00", "01"))
    scores = pq.read_table(tiny_run / "experiments" / "ensemble_noaug" / "scores.parquet")
    assert scores.schema.metadata[b"ensemble_size"] == b"2"
    std = scores["score_std"].to_numpy()
    assert std.max() > 0  # two networks from different seeds disagree
    # Two samples: the std is half their difference, so the mean lies std away from each.
    mean, p95 = scores["score_mean"].to_numpy(), scores["score_p95"].to_numpy()
    np.testing.assert_allclose(p95, mean + 0.9 * std, atol=1e-5)


def test_classify_command_runs_a_trained_context_model_on_a_store(tiny_run, tmp_path, capsys):
    import pandas as pd

    from bayesrb.cli import main
    from bayesrb.vocabulary import CONTEXT_CLASSES

    shard = tiny_run / "stamps" / "E00-n01-v00.zarr"
    scores, out = tmp_path / "scores.parquet", tmp_path / "classes.parquet"
    assert main(["score", "--model", str(tiny_run / "experiments" / "bcnn" / "training" / "model"),
                 "--stamps", str(shard), "--out", str(scores), "--samples", "4"]) == 0
    catalogues = tiny_run / "survey" / "catalogues"
    args = ["classify", "--model", str(tiny_run / "context" / "xgboost" / "model.joblib"), "--stamps", str(shard),
            "--scores", str(scores), "--out", str(out),
            "--catalogue", f"stars={catalogues / 'stars.ecsv'}",
            "--catalogue", f"stars={catalogues / 'deep.ecsv'}:class=star",
            "--catalogue", f"galaxies={catalogues / 'galaxies.ecsv'}",
            "--science", str(tiny_run / "survey" / "visits" / "E00-n01-v00" / "science.fits"),
            "--orbits", str(tiny_run / "survey" / "orbits" / "MPCORB.DAT"),
            "--template", str(tiny_run / "survey" / "templates" / "E00.fits")]
    assert main(args) == 0
    classes = pd.read_parquet(out)
    assert len(classes) == len(read_shard(shard))
    np.testing.assert_allclose(classes[[f"p_{c}" for c in CONTEXT_CLASSES]].sum(axis=1), 1.0, atol=1e-5)
    assert set(classes["predicted_class"]) <= set(CONTEXT_CLASSES)
    # a CNN score table of another store is one clear error naming it
    other = tmp_path / "other.parquet"
    pd.read_parquet(scores).iloc[:2].to_parquet(other)
    capsys.readouterr()
    assert main([*args[:6], str(other), *args[7:]]) == 1
    error = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bayesrb classify:")]
    assert len(error) == 1 and f"{other}: has no score for {len(classes) - 2} of" in error[0]


def test_the_reference_features_of_the_workflow_are_those_of_the_visits_template(tiny_run):
    import pandas as pd

    from bayesrb.context.features import candidate_features
    from bayesrb.context.reference import REFERENCE_COLUMNS
    from bayesrb.context.settings import FeatureSettings
    from bayesrb.context.visit import visit_reference_sources
    from bayesrb.stamps.shard import read_shard_meta

    visit = "E00-n01-v00"
    workflow = pd.read_parquet(tiny_run / "context" / "features" / f"{visit}.parquet")
    assert (workflow["ref_state"] == 1).any() and (workflow["ref_state"] == 0).any()
    # the template resampled again from its FITS, as `bayesrb classify --template` does
    sources = visit_reference_sources(str(tiny_run / "survey" / "visits" / visit / "science.fits"),
                                      str(tiny_run / "survey" / "templates" / "E00.fits"), "",
                                      FeatureSettings().reference_threshold_sigma)
    meta, attrs = read_shard_meta(tiny_run / "stamps" / f"{visit}.zarr")
    again = candidate_features(meta, float(attrs["pixel_scale_arcsec"]), {}, None, FeatureSettings(), sources)
    for name in REFERENCE_COLUMNS:
        np.testing.assert_array_equal(workflow[name].to_numpy(), again[name], err_msg=name)


def test_classify_takes_the_history_from_a_table_of_earlier_detections(tiny_run, tmp_path, capsys):
    import pandas as pd
    from astropy.table import Table

    from bayesrb.cli import main
    from bayesrb.context.settings import FeatureSettings
    from bayesrb.context.table import history_from_detections

    # The workflow's history of the second night's candidates is the first night's detections nearby.
    earlier = pd.read_parquet(tiny_run / "context" / "features" / "E00-n00-v00.parquet")[["ra", "dec", "mjd"]]
    table = pd.read_parquet(tiny_run / "context" / "table.parquet").query("visit == 'E00-n01-v00'")
    history = history_from_detections(table["ra"].to_numpy(), table["dec"].to_numpy(), table["mjd"].iloc[0],
                                      {name: earlier[name].to_numpy() for name in earlier},
                                      FeatureSettings().history_radius_arcsec)
    np.testing.assert_array_equal(history["history_n_earlier"], table["history_n_earlier"])
    np.testing.assert_allclose(history["history_days_since_first"], table["history_days_since_first"])
    assert table["history_n_earlier"].max() > 0
    # The command reads such a table, and needs the science FITS for the visit's epoch.
    Table.from_pandas(earlier).write(tmp_path / "detections.ecsv")
    shard = tiny_run / "stamps" / "E00-n01-v00.zarr"
    scores = tmp_path / "scores.parquet"
    assert main(["score", "--model", str(tiny_run / "experiments" / "bcnn" / "training" / "model"),
                 "--stamps", str(shard), "--out", str(scores), "--samples", "4"]) == 0
    args = ["classify", "--model", str(tiny_run / "context" / "xgboost" / "model.joblib"), "--stamps", str(shard),
            "--scores", str(scores), "--out", str(tmp_path / "classes.parquet"),
            "--history", str(tmp_path / "detections.ecsv")]
    assert main(args) == 1 and "needs the visit's epoch" in capsys.readouterr().err
    template = tiny_run / "survey" / "templates" / "E00.fits"
    assert main([*args[:-2], "--template", str(template)]) == 1
    assert "need the science grid" in capsys.readouterr().err
    science = tiny_run / "survey" / "visits" / "E00-n01-v00" / "science.fits"
    assert main([*args, "--science", str(science)]) == 0
    Table.from_pandas(earlier.drop(columns="mjd")).write(tmp_path / "no_mjd.ecsv")
    assert main([*args[:-1], str(tmp_path / "no_mjd.ecsv"), "--science", str(science)]) == 1
    assert "no_mjd.ecsv: missing column(s) ['mjd']" in capsys.readouterr().err

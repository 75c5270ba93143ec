"""Tests for bayesrb.evaluation: the figures' data (curves, selection) on synthetic evaluation tables, and the table
and the workflow steps on a small data set built by build_dataset."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from test_dataset import FRACTIONS, make_survey
from test_figures_evaluation import (
    draw_confusion_matrix,
    draw_rates_vs_threshold,
    draw_recovery_vs_host_offset,
    draw_recovery_vs_magnitude,
    draw_reliability,
    draw_risk_coverage,
    draw_roc,
    draw_uncertainty_vs_magnitude,
    make_table,
)

from bayesrb.context.table import CNN_SCORE_COLUMNS
from bayesrb.dataset import build_dataset, open_dataset
from bayesrb.errors import BadInputError
from bayesrb.evaluation import steps
from bayesrb.evaluation.curves import (
    MAG_BIN_WIDTH,
    N_THRESHOLDS,
    OFFSET_BINS,
    RECOVERY_CONFIDENCE,
    calibration_errors,
    finite_values,
    magnitude_bins,
    offset_bins,
    operating_points,
    recovery_curves,
    reliability_curves,
    roc_curves,
    running_medians,
    threshold_rates,
)
from bayesrb.evaluation.metrics import (
    binomial_interval,
    expected_calibration_error,
    rates_at_threshold,
    rates_vs_threshold,
    roc_auc,
    roc_curve,
    threshold_at_fpr,
)
from bayesrb.evaluation.selection import LEAST_CONFIDENT, MISCLASSIFIED, select_uncertain
from bayesrb.evaluation.steps import (
    COMPARISON_FIGURES,
    EXPERIMENT_FIGURES,
    UNCERTAIN_FIGURE,
    EvaluationSettings,
    replicate_summary,
    write_comparison_figures,
    write_evaluation_table,
    write_experiment_figures,
    write_metrics,
    write_metrics_summary,
    write_paired_comparison,
)
from bayesrb.evaluation.table import evaluation_table, held_out
from bayesrb.figures import names
from bayesrb.figures.style import save_figure
from bayesrb.model.score import SCORE_COLUMNS
from bayesrb.model.scoring import read_scores


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return make_table(np.random.default_rng(11))


def labels_scores(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return table["label"].to_numpy(), table["score_mean"].to_numpy()


# --- classification curves -----------------------------------------------------------------------------------


def test_operating_points_are_the_metrics_at_the_threshold_meeting_the_target(table):
    only_real = table[table["label"] == 1]
    points = operating_points({"all": table, "only real": only_real, "empty": table.iloc[:0]}, target_fpr=0.02)
    assert list(points) == ["all", "only real", "empty"]
    labels, scores = labels_scores(table)
    threshold = threshold_at_fpr(labels, scores, target_fpr=0.02)
    rates = rates_at_threshold(labels, scores, threshold)
    assert points["all"] == {"n_real": int(np.sum(labels == 1)), "n_bogus": int(np.sum(labels == 0)),
                             "auc": roc_auc(labels, scores), "threshold": threshold, "fpr": rates["fpr"],
                             "tpr": rates["tpr"], "fnr": rates["fnr"]}
    assert points["all"]["fpr"] <= 0.02 < points["all"]["n_bogus"]
    assert (points["only real"]["n_real"], points["only real"]["n_bogus"]) == (len(only_real), 0)
    assert (points["empty"]["n_real"], points["empty"]["n_bogus"]) == (0, 0)
    for point in (points["only real"], points["empty"]):
        assert all(math.isnan(point[key]) for key in ("auc", "threshold", "fpr", "tpr", "fnr"))


def test_roc_curves_of_experiments_with_both_classes(table):
    curves = roc_curves({"all": table, "only real": table[table["label"] == 1], "empty": table.iloc[:0]})
    assert list(curves) == ["all"]
    fpr, tpr, thresholds = roc_curve(*labels_scores(table))
    np.testing.assert_array_equal(curves["all"]["fpr"], fpr)
    np.testing.assert_array_equal(curves["all"]["tpr"], tpr)
    np.testing.assert_array_equal(curves["all"]["threshold"], thresholds)


def test_threshold_rates_on_an_even_grid_and_none_for_one_class(table):
    rates = threshold_rates(table)
    thresholds = np.linspace(0.0, 1.0, N_THRESHOLDS)
    fpr, fnr = rates_vs_threshold(*labels_scores(table), thresholds)
    np.testing.assert_array_equal(rates["threshold"], thresholds)
    np.testing.assert_array_equal(rates["fpr"], fpr)
    np.testing.assert_array_equal(rates["fnr"], fnr)
    assert (rates["fpr"].iloc[0], rates["fnr"].iloc[0]) == (1.0, 0.0)
    assert threshold_rates(table[table["label"] == 0]).empty and len(threshold_rates(table, 11)) == 11


# --- calibration ---------------------------------------------------------------------------------------------


def test_reliability_curves_give_the_clopper_pearson_interval_of_each_bin(table):
    curves = reliability_curves({"all": table, "empty": table.iloc[:0]}, n_bins=10)
    curve = curves["all"]
    labels, scores = labels_scores(table)
    index = np.minimum((scores * 10).astype(int), 9)
    count = np.bincount(index, minlength=10)
    n_real = np.bincount(index, weights=labels, minlength=10)
    np.testing.assert_array_equal(curve["count"], count)
    np.testing.assert_allclose(curve["frac_real"], n_real / np.where(count, count, np.nan))
    low, high = binomial_interval(n_real, count, RECOVERY_CONFIDENCE)
    np.testing.assert_allclose(curve["low"], low)
    np.testing.assert_allclose(curve["high"], high)
    assert np.isnan(curve.loc[count == 0, ["low", "high"]].to_numpy()).all()
    assert curves["empty"]["count"].sum() == 0
    errors = calibration_errors({"all": table, "empty": table.iloc[:0]}, n_bins=10)
    assert errors["all"] == expected_calibration_error(labels, scores, n_bins=10) and math.isnan(errors["empty"])


# --- recovery and running medians ----------------------------------------------------------------------------


def test_magnitude_bins_lie_on_multiples_of_the_width_and_cover_the_values():
    np.testing.assert_allclose(magnitude_bins(np.array([17.9, 15.2, 16.0])), np.arange(15.0, 18.01, MAG_BIN_WIDTH))
    np.testing.assert_allclose(magnitude_bins(np.array([16.0])), [16.0, 16.5])
    np.testing.assert_allclose(magnitude_bins(np.empty(0)), [0.0, MAG_BIN_WIDTH])


def test_offset_bins_start_with_the_nuclear_region():
    bins = offset_bins(np.array([0.1, 3.0]), nuclear_limit=0.5)
    np.testing.assert_allclose(bins, np.concatenate([[0.0], np.linspace(0.5, 3.0, OFFSET_BINS + 1)]))
    np.testing.assert_allclose(offset_bins(np.empty(0), nuclear_limit=0.5)[[1, -1]], [0.5, 1.0])


def test_finite_values_pool_the_kinds_over_experiments(table):
    other = table.iloc[:50]
    pooled = finite_values({"a": table, "b": other}, "mag", ["mp"])
    expected = np.concatenate([t.loc[t["kind"] == "mp", "mag"] for t in (table, other)])
    np.testing.assert_array_equal(pooled, expected[np.isfinite(expected)])
    assert finite_values({"a": table}, "mag").size == int(np.isfinite(table["mag"]).sum())


def test_recovery_curves_count_each_kind_in_each_bin(table):
    bins = magnitude_bins(finite_values({"a": table}, "mag"))
    curves = recovery_curves({"a": table, "none": table.iloc[:0]}, ["mp", "no such kind"], "mag", bins, 0.6)
    assert list(curves) == ["a", "none"] and all(list(by_kind) == ["mp", "no such kind"] for by_kind in curves.values())
    assert not curves["a"]["no such kind"]["n"].any() and not curves["none"]["mp"]["n"].any()
    rows = table[(table["kind"] == "mp") & np.isfinite(table["mag"])]
    curve = curves["a"]["mp"]
    np.testing.assert_array_equal(curve["lower"], bins[:-1])
    assert curve["n"].sum() == len(rows)
    for bin_ in curve[curve["n"] > 0].itertuples():
        in_bin = rows[(rows["mag"] >= bin_.lower) & (rows["mag"] < bin_.upper)]
        assert (bin_.n, bin_.k) == (len(in_bin), int(np.sum(in_bin["score_mean"] >= 0.6)))
        assert (bin_.low, bin_.high) == pytest.approx(binomial_interval(bin_.k, bin_.n, RECOVERY_CONFIDENCE))


def test_running_medians_need_enough_candidates_per_bin():
    mag = np.array([15.1, 15.2, 15.3, 15.4, 16.1, 16.2, np.nan])
    table = pd.DataFrame({"kind": "mp", "mag": mag, "bald": [1.0, 2.0, 3.0, np.nan, 5.0, 6.0, 7.0]})
    bins = magnitude_bins(finite_values({"a": table}, "mag"))
    (medians,) = running_medians({"a": table}, "bald", bins, min_count=2).values()
    np.testing.assert_allclose(medians["centre"], [15.25, 16.25])
    np.testing.assert_allclose(medians["median"], [2.0, 5.5])
    assert running_medians({"a": table}, "bald", bins, min_count=4)["a"].empty


# --- uncertain candidates ------------------------------------------------------------------------------------


def test_select_uncertain_picks_highest_entropy_then_most_confidently_wrong(table):
    picked = select_uncertain(table, n=5)
    least = picked[picked["reason"] == LEAST_CONFIDENT]
    wrong = picked[picked["reason"] == MISCLASSIFIED]
    assert list(picked["reason"]) == [LEAST_CONFIDENT] * 5 + [MISCLASSIFIED] * len(wrong)
    assert list(least["candidate_id"]) == list(table.nlargest(5, "entropy")["candidate_id"])
    assert not set(least["candidate_id"]) & set(wrong["candidate_id"])
    all_wrong = table[((table["score_mean"] >= 0.5) != (table["label"] == 1))
                      & ~table["candidate_id"].isin(least["candidate_id"])]
    assert len(wrong) == min(5, len(all_wrong)) > 0
    wrong_probability = np.where(wrong["label"] == 1, 1 - wrong["score_mean"], wrong["score_mean"])
    assert np.all(np.diff(wrong_probability) <= 0) and np.all(wrong_probability > 0.5)
    all_wrong_probability = np.where(all_wrong["label"] == 1, 1 - all_wrong["score_mean"], all_wrong["score_mean"])
    assert wrong_probability.min() >= np.sort(all_wrong_probability)[-len(wrong)]


def test_bad_tables_are_refused_with_a_clear_message(table):
    with pytest.raises(ValueError, match="wrap one table"):
        roc_curves(table)
    with pytest.raises(ValueError, match="'baseline' lacks the column.*'mag'"):
        finite_values({"baseline": table.drop(columns="mag")}, "mag")
    with pytest.raises(ValueError, match="'baseline' lacks the column.*'score_mean'"):
        recovery_curves({"baseline": table.drop(columns="score_mean")}, ["mp"], "mag", np.array([15.0, 21.0]))
    with pytest.raises(ValueError, match="entropy"):
        select_uncertain(table.drop(columns="entropy"))
    with pytest.raises(ValueError, match="at least 1"):
        select_uncertain(table, n=0)


# --- the table and the workflow steps on a data set ----------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluation")
    sources, _ = make_survey(root)
    path = root / "data.zarr"
    build_dataset(path, sources, fractions=FRACTIONS, seed=3, chunk_stamps=4, shard_stamps=16)
    return path


def write_scores(path, meta: dict, wrong: np.ndarray) -> pd.DataFrame:
    """Scores that call every candidate right (0.9 for real, 0.1 for bogus) except the rows of ``wrong``."""
    correct = np.where(meta["label"] == 1, 0.9, 0.1)
    mean = np.where(wrong, 1.0 - correct, correct)
    scores = pd.DataFrame({"candidate_id": meta["candidate_id"], "score_mean": mean, "score_std": 0.05})
    for column in SCORE_COLUMNS[3:8]:
        scores[column] = mean
    scores["p_real"] = (mean > 0.5).astype(float)
    scores["entropy"] = -(mean * np.log(mean) + (1 - mean) * np.log(1 - mean))
    scores["bald"] = 0.01
    scores = scores.iloc[::-1]  # any order: the table follows the store
    scores.to_parquet(path, index=False)
    return scores


def test_table_joins_scores_to_candidates_in_store_order(store, tmp_path):
    meta = open_dataset(store).meta
    scores = write_scores(tmp_path / "scores.parquet", meta, np.zeros(len(meta["label"]), bool))
    table = evaluation_table(store, tmp_path / "scores.parquet")

    assert list(table["candidate_id"]) == list(meta["candidate_id"])
    assert np.array_equal(table["label"], meta["label"]) and np.array_equal(table["split"], meta["split"])
    assert np.allclose(table["score_mean"], scores.set_index("candidate_id").loc[meta["candidate_id"], "score_mean"])
    assert set(held_out(table)["split"]) == {"test", "eval"}


def test_unscored_or_twice_scored_candidates_are_clear_errors(store, tmp_path):
    meta = open_dataset(store).meta
    scores = write_scores(tmp_path / "scores.parquet", meta, np.zeros(len(meta["label"]), bool))
    scores.iloc[3:].to_parquet(tmp_path / "short.parquet", index=False)
    with pytest.raises(BadInputError, match=r"short\.parquet: 3 of the data set's \d+ candidates are not scored"):
        evaluation_table(store, tmp_path / "short.parquet")
    pd.concat([scores, scores.iloc[:2]]).to_parquet(tmp_path / "twice.parquet", index=False)
    with pytest.raises(BadInputError, match=r"twice\.parquet: 2 candidate id\(s\) scored twice"):
        evaluation_table(store, tmp_path / "twice.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(BadInputError, match=r"junk\.parquet: cannot read the scores"):
        evaluation_table(store, tmp_path / "junk.parquet")
    scores.drop(columns="candidate_id").to_parquet(tmp_path / "anonymous.parquet", index=False)
    with pytest.raises(BadInputError, match=r"anonymous\.parquet: lacks the column\(s\) \['candidate_id'\]"):
        evaluation_table(store, tmp_path / "anonymous.parquet")
    scores.drop(columns="bald").to_parquet(tmp_path / "no_bald.parquet", index=False)
    with pytest.raises(BadInputError, match=r"no_bald\.parquet: lacks the column\(s\) \['bald'\]"):
        read_scores(tmp_path / "no_bald.parquet", CNN_SCORE_COLUMNS)


def test_metrics_count_the_held_out_mistakes(store, tmp_path):
    meta = open_dataset(store).meta
    held = np.flatnonzero(np.isin(meta["split"], ("test", "eval")))
    wrong = np.zeros(len(meta["label"]), bool)
    wrong[held[:3]] = True
    wrong[np.flatnonzero(meta["split"] == "train")] = True  # training rows never count
    write_scores(tmp_path / "scores.parquet", meta, wrong)
    write_evaluation_table(store, tmp_path / "scores.parquet", tmp_path / "table.parquet")
    metrics = write_metrics(tmp_path / "table.parquet", tmp_path / "metrics.json", EvaluationSettings(), "x")

    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    overall = metrics["splits"]["all_held_out"]
    assert overall["n"] == len(held)
    assert overall["accuracy"] == pytest.approx(1 - 3 / len(held))
    summary = write_metrics_summary({"x": tmp_path / "metrics.json"}, tmp_path / "metrics.md")
    low, high = overall["ci95"]["accuracy"]
    assert f"| x | {len(held)} | {100 * (1 - 3 / len(held)):.2f} [{100 * low:.2f}, {100 * high:.2f}] |" in summary
    assert low <= 1 - 3 / len(held) <= high and "Paired" not in summary


def test_paired_comparison_finds_the_better_experiment(store, tmp_path):
    meta = open_dataset(store).meta
    held = np.flatnonzero(np.isin(meta["split"], ("test", "eval")))
    tables = {}
    for name, n_wrong in (("good", 0), ("bad", len(held) // 3)):
        wrong = np.zeros(len(meta["label"]), bool)
        wrong[held[:n_wrong]] = True
        write_scores(tmp_path / f"{name}.parquet", meta, wrong)
        tables[name] = write_evaluation_table(store, tmp_path / f"{name}.parquet", tmp_path / f"{name}.table.parquet")
    paths = {name: tmp_path / f"{name}.table.parquet" for name in tables}
    settings = EvaluationSettings(bootstrap_resamples=200)
    comparison = write_paired_comparison(paths, tmp_path / "paired.json", settings)

    assert json.loads((tmp_path / "paired.json").read_text()) == comparison
    assert comparison["reference"] == "good" and list(comparison["experiments"]) == ["bad"]
    overall = comparison["experiments"]["bad"]["all_held_out"]
    assert overall["mcnemar"]["a_only"] == 0 and overall["mcnemar"]["b_only"] == len(held) // 3
    accuracy = overall["differences"]["accuracy"]
    assert accuracy["difference"] == pytest.approx(-(len(held) // 3) / len(held))
    assert accuracy["ci95"][1] < 0 and accuracy["p_value"] < 0.05
    for name in tables:
        write_metrics(paths[name], tmp_path / f"{name}.json", settings, name)
    summary = write_metrics_summary({name: tmp_path / f"{name}.json" for name in tables}, tmp_path / "metrics.md",
                                    {"pair": tmp_path / "paired.json"})
    assert re.search(r"\| pair \| bad − good \| all_held_out \| -\d+\.\d\d \[-[\d.]+, -[\d.]+\] \* \|", summary)
    with pytest.raises(ValueError, match="two experiments"):
        write_paired_comparison({"good": paths["good"]}, tmp_path / "one.json", settings)
    short = tables["bad"][~tables["bad"]["candidate_id"].isin(meta["candidate_id"][held[:2]])]
    short.to_parquet(tmp_path / "short.parquet")
    with pytest.raises(ValueError, match="lacks 2 held-out candidate"):
        write_paired_comparison({"good": paths["good"], "short": tmp_path / "short.parquet"}, tmp_path / "x.json",
                                settings)


def test_the_replicate_summary_gives_the_spread_across_seeds_and_of_paired_differences():
    def metrics(accuracy, ece):
        return {"splits": {"all_held_out": {"accuracy": accuracy, "ece": ece, "fnr_at_fpr_threshold": None}}}

    runs = {"a": metrics(0.97, 0.02), "a.r1": metrics(0.98, 0.01), "a.r2": metrics(0.99, 0.03),
            "b": metrics(0.96, 0.02), "b.r1": metrics(0.96, 0.02), "b.r2": metrics(0.98, 0.02)}
    text = replicate_summary(runs, {"pair": ["a", "b"]})
    # a: accuracy 97, 98, 99 %: mean 98.00, sd 1.00; b - a: -1, -2, -1: mean -1.33, sd 0.58.
    assert "| a | 3 | 98.00 ± 1.00 [97.00, 99.00] | n/a | 2.00 ± 1.00 [1.00, 3.00] | n/a |" in text
    assert "| pair | b − a | 3 | -1.33 ± 0.58 [-2.00, -1.00] | n/a | +0.00 ± 1.00 [-1.00, +1.00] | n/a |" in text


def test_every_figure_is_written(store, tmp_path):
    meta = open_dataset(store).meta
    wrong = np.arange(len(meta["label"])) % 7 == 0
    write_scores(tmp_path / "scores.parquet", meta, wrong)
    write_evaluation_table(store, tmp_path / "scores.parquet", tmp_path / "table.parquet")
    settings = EvaluationSettings(uncertain_candidates=2)
    written = write_experiment_figures(tmp_path / "table.parquet", store, tmp_path / "one", settings, "x")
    compared = write_comparison_figures({"x": tmp_path / "table.parquet", "y": tmp_path / "table.parquet"},
                                        tmp_path / "two", settings)

    assert [p.name for p in written] == [f"{stem}.png" for stem in (*EXPERIMENT_FIGURES, UNCERTAIN_FIGURE)]
    assert [p.name for p in compared] == [f"{stem}.png" for stem in COMPARISON_FIGURES]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in (*written, *compared))


def test_written_figures_are_those_of_the_evaluation_data(store, tmp_path):
    """Each written figure is the figure of the data bayesrb.evaluation computes (as tested in test_figures_*)."""
    meta = open_dataset(store).meta
    scores = write_scores(tmp_path / "scores.parquet", meta, np.arange(len(meta["label"])) % 5 == 0)
    rng = np.random.default_rng(4)  # spread the scores, so that every setting changes what is drawn
    logit = np.log(scores["score_mean"] / (1.0 - scores["score_mean"])) + rng.normal(0.0, 1.5, len(scores))
    mean = 1.0 / (1.0 + np.exp(-logit))
    scores.assign(score_mean=mean, score_std=rng.uniform(0.01, 0.2, len(scores)),
                  bald=rng.uniform(0.0, 0.1, len(scores))).to_parquet(tmp_path / "scores.parquet", index=False)
    table = write_evaluation_table(store, tmp_path / "scores.parquet", tmp_path / "table.parquet")
    settings = EvaluationSettings(threshold=0.6, target_fpr=0.05, calibration_bins=10)
    write_experiment_figures(tmp_path / "table.parquet", store, tmp_path / "one", settings, "x")
    tables = {"x": held_out(table)}
    expected = {
        "confusion_matrix": draw_confusion_matrix(tables["x"], 0.6),
        "roc": draw_roc(tables, 0.05),
        "rates_vs_threshold": draw_rates_vs_threshold(tables["x"], 0.05),
        "recovery_magnitude": draw_recovery_vs_magnitude(tables, threshold=0.6),
        "recovery_host_offset": draw_recovery_vs_host_offset(tables, threshold=0.6),
        "reliability": draw_reliability(tables, 10),
        "uncertainty_magnitude": draw_uncertainty_vs_magnitude(tables),
        "risk_coverage": draw_risk_coverage(tables, 0.6),
    }
    assert list(expected) == list(EXPERIMENT_FIGURES)
    for stem, figure in expected.items():
        save_figure(figure, tmp_path / "expected" / f"{stem}.png")
        assert (tmp_path / "expected" / f"{stem}.png").read_bytes() == (tmp_path / "one" / f"{stem}.png").read_bytes()


def test_steps_take_the_figure_names_from_the_light_names_module():
    assert steps.EXPERIMENT_FIGURES is names.EXPERIMENT_FIGURES
    assert steps.UNCERTAIN_FIGURE is names.UNCERTAIN_FIGURE
    assert steps.COMPARISON_FIGURES is names.COMPARISON_FIGURES
    assert set(COMPARISON_FIGURES) <= set(EXPERIMENT_FIGURES) and UNCERTAIN_FIGURE not in EXPERIMENT_FIGURES

"""Evaluation metrics against hand-computed cases."""

import json

import numpy as np
import pandas as pd
import pytest

from bayesrb.evaluation import (
    binomial_interval,
    brier_score,
    confusion_counts,
    expected_calibration_error,
    experiment_metrics,
    fraction_correct_by_kind,
    log_loss,
    rates_at_threshold,
    rates_vs_threshold,
    recovery_curve,
    reliability_bins,
    roc_auc,
    roc_curve,
    threshold_at_fpr,
)

# Ten candidates worked out by hand. Real scores 0.9 0.8 0.5 0.4 0.1, bogus scores 0.7 0.5 0.3 0.2 0.0.
# At threshold 0.5 (score >= 0.5 is real): tp = 3 (0.9, 0.8, 0.5), fn = 2 (0.4, 0.1), fp = 2 (0.7, 0.5), tn = 3.
LABELS = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
SCORES = np.array([0.9, 0.8, 0.5, 0.4, 0.1, 0.7, 0.5, 0.3, 0.2, 0.0])
KINDS = np.array(["mp", "mp", "mp", "syntransient", "syntransient", "randjunk", "randjunk", "randjunk",
                  "glxresid", "glxresid"])


def mann_whitney(labels, scores):
    """P(real score > bogus score) over all pairs, a tie counting 1/2."""
    real, bogus = scores[labels == 1][:, None], scores[labels == 0][None, :]
    return float(np.mean((real > bogus) + 0.5 * (real == bogus)))


def test_confusion_counts_and_rates_by_hand():
    assert confusion_counts(LABELS, SCORES) == {"tp": 3, "fp": 2, "tn": 3, "fn": 2}
    rates = rates_at_threshold(LABELS, SCORES)
    assert rates == pytest.approx({"accuracy": 0.6, "fpr": 0.4, "fnr": 0.4, "tpr": 0.6, "n_real": 5, "n_bogus": 5})
    # Raising the threshold to 0.75 keeps only 0.9 and 0.8: tp 2, fn 3, fp 0, tn 5.
    assert confusion_counts(LABELS, SCORES, threshold=0.75) == {"tp": 2, "fp": 0, "tn": 5, "fn": 3}


def test_rates_undefined_for_absent_class_are_nan():
    rates = rates_at_threshold([1, 1, 1], [0.9, 0.2, 0.6])
    assert np.isnan(rates["fpr"]) and rates["n_bogus"] == 0
    assert rates["fnr"] == pytest.approx(1 / 3)
    assert confusion_counts([], []) == {"tp": 0, "fp": 0, "tn": 0, "fn": 0}


def test_roc_curve_by_hand_with_tie():
    fpr, tpr, thresholds = roc_curve(LABELS, SCORES)
    # One point per distinct score; the real and the bogus 0.5 share one point (fpr 0.2 -> 0.4, tpr 0.4 -> 0.6).
    np.testing.assert_array_equal(thresholds, [np.inf, 0.9, 0.8, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    np.testing.assert_allclose(fpr, [0, 0, 0, 0.2, 0.4, 0.4, 0.6, 0.8, 0.8, 1.0])
    np.testing.assert_allclose(tpr, [0, 0.2, 0.4, 0.4, 0.6, 0.8, 0.8, 0.8, 1.0, 1.0])


def test_roc_auc_equals_mann_whitney():
    # By hand: real 0.9 beats 5, 0.8 beats 5, 0.5 beats 3 and ties 1 (3.5), 0.4 beats 3, 0.1 beats 1 -> 17.5 / 25.
    assert roc_auc(LABELS, SCORES) == pytest.approx(0.7, abs=1e-12)
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 400)
    scores = np.round(np.clip(0.3 * labels + rng.uniform(0, 0.7, 400), 0, 1), 1)  # coarse rounding makes ties
    assert roc_auc(labels, scores) == pytest.approx(mann_whitney(labels, scores), abs=1e-12)
    assert np.isnan(roc_auc([1, 1], [0.2, 0.4]))


@pytest.mark.parametrize(("target", "expected"), [
    (0.4, 0.4),  # at 0.4 the bogus 0.7 and 0.5 pass (FPR 2/5); at 0.3 a third would
    (0.2, 0.7),  # 0.5 would let the tied bogus 0.5 through (FPR 0.4), so the next distinct score
    (0.1, 0.8),  # no bogus may pass; 0.8 is the smallest score above the top bogus 0.7
    (0.0, 0.8),
    (1.0, 0.0),
])
def test_threshold_at_fpr_by_hand(target, expected):
    assert threshold_at_fpr(LABELS, SCORES, target) == expected


def test_threshold_at_fpr_fallbacks():
    assert threshold_at_fpr([0, 1], [0.9, 0.3], 0.0) == np.nextafter(1.0, 2.0)  # top score is bogus
    assert np.isnan(threshold_at_fpr([1, 1], [0.9, 0.3]))  # no bogus: FPR undefined


def test_rates_vs_threshold_by_hand():
    fpr, fnr = rates_vs_threshold(LABELS, SCORES, [0.0, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(fpr, [1.0, 0.4, 0.0, 0.0])
    np.testing.assert_allclose(fnr, [0.0, 0.4, 0.6, 1.0])
    fpr, fnr = rates_vs_threshold([0, 0], [0.1, 0.6], [0.5])
    assert fpr[0] == 0.5 and np.isnan(fnr[0])


# Six probabilities in three bins [0, 1/3), [1/3, 2/3), [2/3, 1]:
#   bin 1: 0.1 (bogus), 0.2 (real): mean_prob 0.15, frac_real 0.5, gap 0.35
#   bin 2: 0.5 (bogus), 0.6 (real): mean_prob 0.55, frac_real 0.5, gap 0.05
#   bin 3: 0.9 (real), 1.0 (real):  mean_prob 0.95, frac_real 1.0, gap 0.05
# ECE = 2/6 * (0.35 + 0.05 + 0.05) = 0.15.
# Brier = (0.1² + 0.8² + 0.5² + 0.4² + 0.1² + 0²) / 6 = 1.07 / 6.
CAL_LABELS = np.array([0, 1, 0, 1, 1, 1])
CAL_PROBS = np.array([0.1, 0.2, 0.5, 0.6, 0.9, 1.0])


def test_reliability_bins_by_hand():
    bins = reliability_bins(CAL_LABELS, CAL_PROBS, n_bins=3)
    np.testing.assert_array_equal(bins["count"], [2, 2, 2])
    np.testing.assert_allclose(bins["mean_prob"], [0.15, 0.55, 0.95])
    np.testing.assert_allclose(bins["frac_real"], [0.5, 0.5, 1.0])
    np.testing.assert_allclose(bins["upper"], [1 / 3, 2 / 3, 1.0])
    # Four bins: 0.5 sits on an edge and goes up; 1.0 goes into the closed last bin; [0.25, 0.5) is empty.
    bins = reliability_bins(CAL_LABELS, CAL_PROBS, n_bins=4)
    np.testing.assert_array_equal(bins["count"], [2, 0, 2, 2])
    assert np.isnan(bins["mean_prob"][1]) and np.isnan(bins["frac_real"][1])


def test_ece_and_brier_by_hand():
    assert expected_calibration_error(CAL_LABELS, CAL_PROBS, n_bins=3) == pytest.approx(0.15, abs=1e-12)
    assert brier_score(CAL_LABELS, CAL_PROBS) == pytest.approx(1.07 / 6, abs=1e-12)
    assert expected_calibration_error([0, 1], [0.0, 1.0]) == 0.0


def test_log_loss_by_hand():
    assert log_loss([1, 0], [0.8, 0.4]) == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2, abs=1e-12)
    assert log_loss([1], [0.0]) == pytest.approx(-np.log(1e-7))  # a certain mistake is clipped, not infinite
    assert log_loss([0, 1], [0.0, 1.0]) < 1e-6


def test_binomial_interval_known_values():
    # k = 0: the upper limit solves (1 - p)^n = alpha / 2, so p = 1 - 0.16^(1/10) at 68 %.
    low, high = binomial_interval(0, 10, 0.68)
    assert low == 0.0 and high == pytest.approx(1 - 0.16 ** (1 / 10), rel=1e-10)
    low, high = binomial_interval(10, 10, 0.68)
    assert low == pytest.approx(0.16 ** (1 / 10), rel=1e-10) and high == 1.0
    # The textbook 95 % interval of 5 / 10 is (0.1871, 0.8129).
    low, high = binomial_interval(np.array([5, 0]), np.array([10, 0]), 0.95)
    assert low[0] == pytest.approx(0.187086, abs=1e-6) and high[0] == pytest.approx(0.812914, abs=1e-6)
    assert np.isnan(low[1]) and np.isnan(high[1])


def test_recovery_curve_counts():
    values = [18.0, 18.5, 19.0, 19.5, 20.0, np.nan, 21.0, 17.0]
    recovered = [True, False, True, True, False, True, True, True]
    curve = recovery_curve(values, recovered, bins=[17.5, 18.0, 19.0, 20.0])
    # [17.5, 18) empty; [18, 19): 18.0 yes, 18.5 no; [19, 20]: 19.0 yes, 19.5 yes, 20.0 no. NaN, 21, 17 dropped.
    np.testing.assert_array_equal(curve["n"], [0, 2, 3])
    np.testing.assert_array_equal(curve["k"], [0, 1, 2])
    np.testing.assert_allclose(curve["fraction"][1:], [0.5, 2 / 3])
    np.testing.assert_allclose(curve["centre"], [17.75, 18.5, 19.5])
    assert curve[["fraction", "low", "high"]].iloc[0].isna().all()
    low, high = binomial_interval(2, 3)
    assert curve["low"][2] == pytest.approx(low) and curve["high"][2] == pytest.approx(high)


def test_fraction_correct_by_kind_by_hand():
    by_kind = fraction_correct_by_kind(KINDS, LABELS, SCORES)
    assert list(by_kind) == ["glxresid", "mp", "randjunk", "syntransient"]
    # mp recall 3/3 (0.9, 0.8, 0.5), syntransient 0/2, randjunk rejection 1/3 (only 0.3), glxresid 2/2.
    assert {kind: (v["n"], v["n_correct"]) for kind, v in by_kind.items()} == {
        "glxresid": (2, 2), "mp": (3, 3), "randjunk": (3, 1), "syntransient": (2, 0)}
    assert by_kind["mp"]["low"] == pytest.approx(0.16 ** (1 / 3)) and by_kind["mp"]["high"] == 1.0
    assert by_kind["randjunk"]["fraction"] == pytest.approx(1 / 3)


def evaluation_table():
    """The ten hand-worked candidates in test, two real injections in eval, and train rows that must be ignored."""
    test = pd.DataFrame({"label": LABELS, "kind": KINDS, "split": "test", "score_mean": SCORES})
    evaluation = pd.DataFrame({"label": [1, 1], "kind": ["injected_sn"] * 2, "split": "eval",
                               "score_mean": [0.6, 0.2]})
    train = pd.DataFrame({"label": [0, 0], "kind": ["randjunk"] * 2, "split": "train", "score_mean": [1.0, 1.0]})
    return pd.concat([train, test, evaluation], ignore_index=True)


def test_experiment_metrics_by_hand():
    metrics = experiment_metrics(evaluation_table(), target_fpr=0.2, n_bins=5)
    json.dumps(metrics, allow_nan=False)
    assert metrics["target_fpr"] == 0.2 and set(metrics["splits"]) == {"test", "eval", "all_held_out"}
    test = metrics["splits"]["test"]
    assert (test["n"], test["n_real"], test["n_bogus"]) == (10, 5, 5)
    assert test["accuracy"] == pytest.approx(0.6) and test["roc_auc"] == pytest.approx(0.7)
    # At the 20 % FPR threshold 0.7 only 0.9 and 0.8 of the real pass: FNR 3/5.
    assert test["threshold_at_fpr"] == 0.7 and test["fnr_at_fpr_threshold"] == pytest.approx(0.6)
    assert test["brier"] == pytest.approx(np.mean((SCORES - LABELS) ** 2))
    assert test["by_kind"]["mp"]["n_correct"] == 3
    evaluation = metrics["splits"]["eval"]  # real only: rates that need bogus are None
    assert evaluation["fpr"] is None and evaluation["roc_auc"] is None and evaluation["threshold_at_fpr"] is None
    assert evaluation["fnr"] == pytest.approx(0.5) and evaluation["by_kind"]["injected_sn"]["fraction"] == 0.5
    both = metrics["splits"]["all_held_out"]
    assert (both["n"], both["n_real"]) == (12, 7) and both["fnr"] == pytest.approx(3 / 7)
    assert test["log_loss"] == pytest.approx(log_loss(LABELS, SCORES))


def test_the_validation_split_is_evaluated_apart_for_model_selection():
    table = evaluation_table()
    validation = pd.DataFrame({"label": [1, 0, 0], "kind": ["mp", "randjunk", "randjunk"], "split": "val",
                               "score_mean": [0.9, 0.6, 0.1]})
    metrics = experiment_metrics(pd.concat([table, validation], ignore_index=True), n_bootstrap=0)
    assert list(metrics["splits"]) == ["val", "test", "eval", "all_held_out"]
    assert metrics["splits"]["val"]["n"] == 3 and metrics["splits"]["val"]["accuracy"] == pytest.approx(2 / 3)
    assert metrics["splits"]["all_held_out"] == experiment_metrics(table, n_bootstrap=0)["splits"]["all_held_out"]


def test_experiment_metrics_intervals_and_error_detection():
    table = evaluation_table()
    # An uncertainty that is largest on the four misclassified test candidates (0.5, 0.4, 0.1 real; 0.7, 0.5 bogus).
    wrong = np.abs(table["score_mean"] - 0.5) + (table["score_mean"] >= 0.5).ne(table["label"] == 1) * 1.0
    table["score_std"] = wrong / 2
    metrics = experiment_metrics(table, target_fpr=0.2, n_bins=5, n_bootstrap=300, seed=4)
    assert metrics["bootstrap"] == {"resamples": 300, "unit": "candidate", "confidence": 0.95, "seed": 4}
    test = metrics["splits"]["test"]
    assert test["error_auroc_score_std"] == 1.0 and "error_auroc_bald" not in test
    assert test["mean_score_std"] == pytest.approx(table.loc[table["split"] == "test", "score_std"].mean())
    low, high = test["ci95"]["accuracy"]
    assert low < 0.6 < high and 0 <= low and high <= 1
    assert set(test["ci95"]) >= {"accuracy", "fnr_at_fpr_threshold", "roc_auc", "ece", "error_auroc_score_std"}
    # Referring the most uncertain 10 % (one of ten) removes an error: 6 right of 9.
    assert test["accuracy_after_referral"]["score_std"]["0.1"] == pytest.approx(6 / 9)
    assert metrics == experiment_metrics(table, target_fpr=0.2, n_bins=5, n_bootstrap=300, seed=4)
    assert experiment_metrics(table, n_bootstrap=0)["splits"]["test"]["ci95"] == {}


@pytest.mark.parametrize(("call", "message"), [
    (lambda: confusion_counts([0, 1], [0.5]), "differ in length"),
    (lambda: confusion_counts([0, 2], [0.5, 0.5]), "0 \\(bogus\\) or 1"),
    (lambda: confusion_counts([0, 1], [0.5, 1.5]), "\\[0, 1\\]"),
    (lambda: confusion_counts([0, 1], [0.5, np.nan]), "NaN"),
    (lambda: rates_at_threshold([], []), "empty"),
    (lambda: roc_auc([], []), "empty"),
    (lambda: brier_score([], []), "empty"),
    (lambda: expected_calibration_error([], []), "empty"),
    (lambda: reliability_bins([0], [0.5], n_bins=0), "n_bins"),
    (lambda: threshold_at_fpr([0, 1], [0.2, 0.8], target_fpr=1.5), "target_fpr"),
    (lambda: binomial_interval(3, 2), "0 <= k <= n"),
    (lambda: binomial_interval(1, 2, confidence=1.0), "confidence"),
    (lambda: recovery_curve([1.0], [True], bins=[2.0, 1.0]), "increasing"),
    (lambda: recovery_curve([1.0, 2.0], [True], bins=[0.0, 3.0]), "one length"),
    (lambda: fraction_correct_by_kind(["mp"], [1, 0], [0.5, 0.5]), "kinds and labels"),
    (lambda: experiment_metrics(pd.DataFrame({"label": [1], "split": ["test"], "score_mean": [0.5]})), "kind"),
    (lambda: experiment_metrics(evaluation_table().query("split == 'train'")), "no rows in the held-out"),
])
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()

"""Metrics of the multi-class context classifier against hand-computed cases and scikit-learn."""

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from bayesrb.context.metrics import class_reliability, classification_metrics
from bayesrb.vocabulary import CONTEXT_CLASSES

# Ten candidates of three classes worked out by hand; the prediction gets probability 0.6, the others 0.2.
# Confusion (rows true, columns predicted): [[2, 1, 1], [1, 2, 0], [0, 1, 2]]
# support [4, 3, 3], predicted [3, 4, 3], TP [2, 2, 2]
# precision [2/3, 1/2, 2/3], recall [1/2, 2/3, 2/3], F1 = 2 TP / (support + predicted) = [4/7, 4/7, 2/3]
# accuracy 6/10, balanced accuracy (1/2 + 2/3 + 2/3) / 3 = 11/18, macro F1 (4/7 + 4/7 + 2/3) / 3 = 38/63
# One-vs-rest ECE with 10 bins (two filled bins per class, at 0.6 and at 0.2):
#   a: predicted rows frac 2/3 vs 0.6 (3 rows), others 2/7 vs 0.2 (7 rows) -> 0.3/15 + 0.7 * 3/35 = 0.08
#   b: 1/2 vs 0.6 (4 rows), 1/6 vs 0.2 (6 rows) -> 0.4 * 0.1 + 0.6/30 = 0.06
#   c: 2/3 vs 0.6 (3 rows), 1/7 vs 0.2 (7 rows) -> 0.3/15 + 0.7 * 2/35 = 0.06
CLASSES3 = ("a", "b", "c")
Y3 = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
PRED3 = np.array([0, 0, 1, 2, 1, 1, 0, 2, 2, 1])


def _proba_from_pred(pred, n_classes, top=0.6):
    proba = np.full((pred.size, n_classes), (1 - top) / (n_classes - 1))
    proba[np.arange(pred.size), pred] = top
    return proba


P3 = _proba_from_pred(PRED3, 3)


def _sampled(n, n_classes, seed, alpha=1.0):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(n_classes, alpha), size=n)
    y = (proba.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return y, proba


def _width(interval):
    return interval["ci95"][1] - interval["ci95"][0]


def test_perfect_classifier():
    y = np.repeat(np.arange(6), [5, 4, 3, 2, 1, 7])
    proba = np.eye(6)[y]
    m = classification_metrics(y, proba, CONTEXT_CLASSES, n_bootstrap=200)
    assert m["n"] == 22
    for name in ("accuracy", "balanced_accuracy", "macro_f1"):
        assert m[name] == {"value": 1.0, "ci95": [1.0, 1.0]}
    assert m["confusion_matrix"] == np.diag([5, 4, 3, 2, 1, 7]).tolist()
    assert m["classes"] == list(CONTEXT_CLASSES)
    assert list(m["per_class"]) == list(CONTEXT_CLASSES)
    for k, name in enumerate(CONTEXT_CLASSES):
        assert m["per_class"][name] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": [5, 4, 3, 2, 1, 7][k],
                                        "ece": 0.0}


def test_three_class_case_by_hand():
    m = classification_metrics(Y3, P3, CLASSES3, n_bootstrap=100)
    assert m["confusion_matrix"] == [[2, 1, 1], [1, 2, 0], [0, 1, 2]]
    assert m["accuracy"]["value"] == pytest.approx(0.6)
    assert m["balanced_accuracy"]["value"] == pytest.approx(11 / 18)
    assert m["macro_f1"]["value"] == pytest.approx(38 / 63)
    expected = {"a": (2 / 3, 1 / 2, 4 / 7, 4, 0.08), "b": (1 / 2, 2 / 3, 4 / 7, 3, 0.06),
                "c": (2 / 3, 2 / 3, 2 / 3, 3, 0.06)}
    for name, (precision, recall, f1, support, ece) in expected.items():
        entry = m["per_class"][name]
        assert entry["precision"] == pytest.approx(precision)
        assert entry["recall"] == pytest.approx(recall)
        assert entry["f1"] == pytest.approx(f1)
        assert entry["support"] == support
        assert entry["ece"] == pytest.approx(ece)


def test_three_class_case_matches_sklearn():
    m = classification_metrics(Y3, P3, CLASSES3, n_bootstrap=100)
    precision, recall, f1, support = skm.precision_recall_fscore_support(Y3, PRED3, labels=[0, 1, 2])
    for k, name in enumerate(CLASSES3):
        entry = m["per_class"][name]
        assert [entry["precision"], entry["recall"], entry["f1"]] == pytest.approx([precision[k], recall[k], f1[k]])
        assert entry["support"] == support[k]
    assert m["accuracy"]["value"] == pytest.approx(skm.accuracy_score(Y3, PRED3))
    assert m["balanced_accuracy"]["value"] == pytest.approx(skm.balanced_accuracy_score(Y3, PRED3))
    assert m["macro_f1"]["value"] == pytest.approx(skm.f1_score(Y3, PRED3, average="macro"))
    assert m["confusion_matrix"] == skm.confusion_matrix(Y3, PRED3, labels=[0, 1, 2]).tolist()


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_six_class_case_matches_sklearn_with_absent_class(seed):
    y, proba = _sampled(300, 6, seed, alpha=0.5)
    y[y == 4] = 0  # class "or" is predicted but never true
    pred = proba.argmax(axis=1)
    present = sorted(set(y.tolist()))
    m = classification_metrics(y, proba, CONTEXT_CLASSES, n_bootstrap=50)
    assert m["balanced_accuracy"]["value"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["macro_f1"]["value"] == pytest.approx(
        skm.f1_score(y, pred, labels=present, average="macro", zero_division=0))
    assert m["accuracy"]["value"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=range(6)).tolist()
    absent = m["per_class"]["or"]
    assert absent["support"] == 0 and absent["recall"] is None and absent["f1"] == 0.0
    assert absent["precision"] == 0.0


def test_class_neither_present_nor_predicted_is_none_and_json_strict():
    y = np.array([0, 1, 1, 2, 0])
    proba = _proba_from_pred(np.array([0, 1, 0, 2, 0]), 4)  # class 3 absent and never predicted
    m = classification_metrics(y, proba, ("w", "x", "y", "z"), n_bootstrap=20)
    # z gets 0.4 / 3 on every row and is never true: ECE = 0.4 / 3
    assert m["per_class"]["z"] == {"precision": None, "recall": None, "f1": None, "support": 0,
                                   "ece": pytest.approx(0.4 / 3)}
    assert m["balanced_accuracy"]["value"] == pytest.approx((1 + 0.5 + 1) / 3)
    text = json.dumps(m, allow_nan=False)
    assert json.loads(text) == m
    assert all(type(v) is int for row in m["confusion_matrix"] for v in row)


def test_bootstrap_interval_contains_value_and_has_binomial_width():
    # accuracy 0.6 over n = 2000: bootstrap standard error ~ sqrt(0.6 * 0.4 / 2000) = 0.01095,
    # so the 95 % interval is ~ 2 * 1.96 * 0.01095 = 0.0429 wide.
    y = np.tile(Y3, 200)
    m = classification_metrics(y, np.tile(P3, (200, 1)), CLASSES3, n_bootstrap=1000, seed=3)
    for name in ("accuracy", "balanced_accuracy", "macro_f1"):
        low, high = m[name]["ci95"]
        assert low < m[name]["value"] < high
    assert _width(m["accuracy"]) == pytest.approx(2 * 1.96 * np.sqrt(0.24 / 2000), rel=0.15)
    assert m["accuracy"]["ci95"][0] == pytest.approx(0.6 - 1.96 * np.sqrt(0.24 / 2000), abs=0.004)


def test_bootstrap_interval_narrows_with_more_data():
    small = classification_metrics(np.tile(Y3, 10), np.tile(P3, (10, 1)), CLASSES3, n_bootstrap=500)
    large = classification_metrics(np.tile(Y3, 100), np.tile(P3, (100, 1)), CLASSES3, n_bootstrap=500)
    for name in ("accuracy", "balanced_accuracy", "macro_f1"):
        assert small[name]["value"] == pytest.approx(large[name]["value"])
        # expected ratio sqrt(100 / 1000) = 0.32
        assert 0.2 < _width(large[name]) / _width(small[name]) < 0.45


def test_same_seed_identical_different_seed_different():
    y, proba = _sampled(400, 6, 7)
    first = classification_metrics(y, proba, CONTEXT_CLASSES, n_bootstrap=200, seed=11)
    again = classification_metrics(y, proba, CONTEXT_CLASSES, n_bootstrap=200, seed=11)
    other = classification_metrics(y, proba, CONTEXT_CLASSES, n_bootstrap=200, seed=12)
    assert json.dumps(first) == json.dumps(again)
    assert first["accuracy"]["value"] == other["accuracy"]["value"]
    assert first["per_class"] == other["per_class"]
    assert [first[k]["ci95"] for k in ("accuracy", "macro_f1")] != [other[k]["ci95"] for k in ("accuracy", "macro_f1")]


def test_ece_small_when_calibrated_large_when_overconfident():
    y, proba = _sampled(20_000, 6, 5)  # labels drawn from the probabilities: calibrated by construction
    calibrated = classification_metrics(y, proba, CONTEXT_CLASSES, n_bootstrap=10)
    assert max(entry["ece"] for entry in calibrated["per_class"].values()) < 0.02
    # 0.99 on a random class, truth uniform and independent: per class, 1/6 of rows at 0.99 with frequency 1/6 and
    # 5/6 at 0.002 with frequency 1/6, so ECE = (1/6)(0.99 - 1/6) + (5/6)(1/6 - 0.002) = 0.2744.
    rng = np.random.default_rng(6)
    y = rng.integers(0, 6, 20_000)
    overconfident = _proba_from_pred(rng.integers(0, 6, 20_000), 6, top=0.99)
    m = classification_metrics(y, overconfident, CONTEXT_CLASSES, n_bootstrap=10)
    for entry in m["per_class"].values():
        assert entry["ece"] == pytest.approx(0.2744, abs=0.02)


def test_ece_matches_reliability_tables():
    tables = class_reliability(Y3, P3, CLASSES3, n_bins=10)
    m = classification_metrics(Y3, P3, CLASSES3, n_bootstrap=10)
    assert list(tables) == list(CLASSES3)
    for k, name in enumerate(CLASSES3):
        table = tables[name]
        assert len(table) == 10 and table["count"].sum() == 10
        filled = table[table["count"] > 0]
        assert sorted(filled["mean_prob"].round(6)) == [0.2, 0.6]
        assert filled["frac_real"].notna().all() and table.loc[table["count"] == 0, "frac_real"].isna().all()
        ece = (filled["count"] * (filled["frac_real"] - filled["mean_prob"]).abs()).sum() / 10
        assert ece == pytest.approx(m["per_class"][name]["ece"])
        assert (filled["frac_real"] * filled["count"]).sum() == pytest.approx((Y3 == k).sum())


def test_large_input_runs():
    y, proba = _sampled(10_000, 6, 8)
    m = classification_metrics(y, proba, CONTEXT_CLASSES, n_bootstrap=1000)
    assert m["n"] == 10_000 and sum(map(sum, m["confusion_matrix"])) == 10_000
    assert _width(m["accuracy"]) == pytest.approx(2 * 1.96 * np.sqrt(0.4 * 0.6 / 10_000), rel=0.2)


GOOD_P = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])


@pytest.mark.parametrize(("y_true", "proba", "classes", "kwargs", "message"), [
    ([], np.zeros((0, 3)), CLASSES3, {}, "y_true is empty"),
    ([[0, 1]], GOOD_P, CLASSES3, {}, "y_true must be a 1-D array"),
    ([0.5, 1], GOOD_P, CLASSES3, {}, "integer class indices"),
    (["a", "b"], GOOD_P, CLASSES3, {}, "integer class indices"),
    ([0, 3], GOOD_P, CLASSES3, {}, r"y_true must lie in \[0, 3\).*\[3\]"),
    ([-1, 0], GOOD_P, CLASSES3, {}, r"y_true must lie in \[0, 3\).*\[-1\]"),
    ([0, 1, 2], GOOD_P, CLASSES3, {}, r"proba must have shape .*\(3, 3\).*got \(2, 3\)"),
    ([0, 1], GOOD_P[:, :2], CLASSES3, {}, r"proba must have shape"),
    ([0, 1], GOOD_P[0], CLASSES3, {}, r"proba must have shape"),
    ([0, 1], GOOD_P, ("a", "b"), {}, r"proba must have shape"),
    ([0, 1], [[np.nan, 0.5, 0.5], [0.1, 0.8, 0.1]], CLASSES3, {}, "non-finite"),
    ([0, 1], [[np.inf, 0.5, 0.5], [0.1, 0.8, 0.1]], CLASSES3, {}, "non-finite"),
    ([0, 1], [[1.2, -0.2, 0.0], [0.1, 0.8, 0.1]], CLASSES3, {}, r"proba must lie in \[0, 1\]"),
    ([0, 1], [[0.7, 0.2, 0.2], [0.1, 0.8, 0.1]], CLASSES3, {}, "rows must sum to 1.*1 row"),
    ([0, 1], GOOD_P, (), {}, "classes is empty"),
    ([0, 1], GOOD_P, ("a", "a", "c"), {}, "classes must be distinct"),
    ([0, 1], GOOD_P, CLASSES3, {"n_bootstrap": 0}, "n_bootstrap must be a positive integer"),
    ([0, 1], GOOD_P, CLASSES3, {"n_bins": 0}, "n_bins must be a positive integer"),
    ([0, 1], GOOD_P, CLASSES3, {"n_bins": 2.5}, "n_bins must be a positive integer"),
])
def test_bad_input_raises(y_true, proba, classes, kwargs, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(y_true, proba, classes, **kwargs)
    if "n_bootstrap" not in kwargs:
        with pytest.raises(ValueError, match=message):
            class_reliability(y_true, proba, classes, **kwargs)


def test_row_sum_tolerance_accepts_rounding():
    proba = GOOD_P + np.array([[5e-5, 0, 0], [0, -5e-5, 0]])
    m = classification_metrics([0, 1], proba, CLASSES3, n_bootstrap=10)
    assert m["accuracy"]["value"] == 1.0
    assert m["per_class"]["c"]["support"] == 0 and m["per_class"]["c"]["precision"] is None

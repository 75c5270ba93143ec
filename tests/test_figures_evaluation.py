"""Tests for the evaluation figures (bayesrb.figures.classification, .calibration, .recovery, .uncertainty).

The figures draw what bayesrb.evaluation computes from small synthetic evaluation tables, composed as
bayesrb.evaluation.steps does (the draw_* helpers); the tests check that what is drawn equals the metrics of
bayesrb.evaluation.metrics computed independently.
"""

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle, StepPatch

from bayesrb.evaluation.curves import (
    MAG_BIN_WIDTH,
    MIN_MEDIAN_COUNT,
    N_THRESHOLDS,
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
    confusion_counts,
    expected_calibration_error,
    rates_at_threshold,
    rates_vs_threshold,
    reliability_bins,
    roc_auc,
    roc_curve,
    threshold_at_fpr,
)
from bayesrb.evaluation.referral import UNCERTAINTY_MEASURES, error_detection_auroc, risk_coverage
from bayesrb.evaluation.selection import select_uncertain
from bayesrb.figures.calibration import reliability
from bayesrb.figures.classification import ZOOM_MAX_FPR, confusion_matrix, rates_vs_threshold_figure, roc
from bayesrb.figures.recovery import (
    HOST_OFFSET_KINDS,
    MAGNITUDE_KINDS,
    recovery_vs_host_offset,
    recovery_vs_magnitude,
)
from bayesrb.figures.style import NO_DATA_TEXT, NUCLEAR_OFFSET_ARCSEC, NUCLEAR_OFFSET_HLR, OFFSET_PANELS, save_figure
from bayesrb.figures.uncertainty import (
    MAX_REFERRED,
    UNCERTAINTY_PANELS,
    uncertain_candidates,
    uncertainty_vs_magnitude,
)
from bayesrb.figures.uncertainty import risk_coverage as risk_coverage_figure

CHANNELS = ("science", "template", "difference", "subframe_ptp")
KIND_COUNTS = {
    "mp": 30,
    "syntransient": 30,
    "randjunk": 40,
    "glxresid": 30,
    "injected_sn": 25,
    "injected_nuclear": 25,
    "injected_hostless": 20,
}
BOGUS_KINDS = ("randjunk", "glxresid")
HOSTED_KINDS = ("syntransient", "injected_sn", "injected_nuclear")
RECOVERY_KINDS = ("mp", "syntransient", "injected_sn", "injected_nuclear", "injected_hostless")


def make_table(rng: np.random.Generator, skill: float = 1.0) -> pd.DataFrame:
    """About 200 scored candidates of every kind; real ones fade towards faint magnitudes, some are misclassified."""
    kind = np.concatenate([[name] * count for name, count in KIND_COUNTS.items()])
    n = kind.size
    label = np.where(np.isin(kind, BOGUS_KINDS), 0, 1)
    mag = rng.uniform(15.0, 21.0, n)
    mag[::13] = np.nan
    offset = np.where(np.isin(kind, HOSTED_KINDS), rng.exponential(2.0, n), np.nan)
    offset[kind == "injected_nuclear"] *= 0.1
    logit = np.where(label == 1, skill * (20.0 - np.nan_to_num(mag, nan=18.0)), -2.0 * skill) + rng.normal(0, 1.5, n)
    mean = 1.0 / (1.0 + np.exp(-logit))
    std = rng.uniform(0.05, 0.5, n) * mean * (1.0 - mean)
    percentiles = {f"score_p{q:02d}": np.clip(mean + z * std, 0, 1)
                   for q, z in ((5, -1.645), (16, -1.0), (50, 0.0), (84, 1.0), (95, 1.645))}
    entropy = -(mean * np.log(mean) + (1 - mean) * np.log(1 - mean))
    return pd.DataFrame({
        "candidate_id": [f"v{i // 40:03d}-{i:04d}" for i in range(n)],
        "visit": [f"v{i // 40:03d}" for i in range(n)],
        "field": "f00",
        "split": np.where(np.char.startswith(kind, "injected"), "eval", "test"),
        "kind": kind,
        "label": label.astype(np.int8),
        "mag": mag,
        "host_offset_arcsec": offset,
        "host_offset_hlr": offset / 1.5,
        "score_mean": mean,
        "score_std": std,
        **percentiles,
        "p_real": (mean > 0.5).astype(float),
        "entropy": entropy,
        "bald": entropy * rng.uniform(0.0, 0.5, n),
    })


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return make_table(np.random.default_rng(11))


@pytest.fixture(scope="module")
def two_tables(table) -> dict[str, pd.DataFrame]:
    return {"baseline": table, "weak": make_table(np.random.default_rng(12), skill=0.4)}


# --- each figure from the data bayesrb.evaluation computes (as bayesrb.evaluation.steps composes them) -------


def draw_confusion_matrix(table: pd.DataFrame, threshold: float = 0.5) -> Figure:
    return confusion_matrix(confusion_counts(table["label"], table["score_mean"], threshold=threshold), threshold)


def draw_roc(tables: dict[str, pd.DataFrame], target_fpr: float = 0.01) -> Figure:
    return roc(roc_curves(tables), operating_points(tables, target_fpr), target_fpr)


def draw_rates_vs_threshold(table: pd.DataFrame, target_fpr: float = 0.01) -> Figure:
    (operating,) = operating_points({"one": table}, target_fpr).values()
    return rates_vs_threshold_figure(threshold_rates(table), operating, target_fpr)


def draw_recovery_vs_magnitude(tables: dict[str, pd.DataFrame], kinds=MAGNITUDE_KINDS, threshold=0.5) -> Figure:
    bins = magnitude_bins(finite_values(tables, "mag", kinds))
    curves = recovery_curves(tables, kinds, "mag", bins, threshold, RECOVERY_CONFIDENCE)
    return recovery_vs_magnitude(curves, kinds, threshold, RECOVERY_CONFIDENCE)


def draw_recovery_vs_host_offset(tables: dict[str, pd.DataFrame], threshold: float = 0.5) -> Figure:
    kinds = HOST_OFFSET_KINDS
    curves = {}
    for panel in OFFSET_PANELS:
        bins = offset_bins(finite_values(tables, panel.column, kinds), panel.nuclear_limit)
        curves[panel.column] = recovery_curves(tables, kinds, panel.column, bins, threshold, RECOVERY_CONFIDENCE)
    return recovery_vs_host_offset(curves, kinds, threshold, RECOVERY_CONFIDENCE)


def draw_reliability(tables: dict[str, pd.DataFrame], n_bins: int = 15) -> Figure:
    return reliability(reliability_curves(tables, n_bins), calibration_errors(tables, n_bins))


def draw_uncertainty_vs_magnitude(tables: dict[str, pd.DataFrame]) -> Figure:
    bins = magnitude_bins(finite_values(tables, "mag"))
    return uncertainty_vs_magnitude(tables, {column: running_medians(tables, column, bins)
                                             for column, _ in UNCERTAINTY_PANELS})


def draw_risk_coverage(tables: dict[str, pd.DataFrame], threshold: float = 0.5) -> Figure:
    curves = {name: {column: risk_coverage(table["label"], table["score_mean"], table[column], threshold)
                     for column in UNCERTAINTY_MEASURES} for name, table in tables.items()}
    aurocs = {name: {column: error_detection_auroc(table["label"], table["score_mean"], table[column], threshold)
                     for column in UNCERTAINTY_MEASURES} for name, table in tables.items()}
    return risk_coverage_figure(curves, aurocs, UNCERTAINTY_MEASURES)


def draw_uncertain_candidates(table: pd.DataFrame, stamps, n: int = 6, threshold: float = 0.5) -> Figure:
    return uncertain_candidates(select_uncertain(table, n, threshold), stamps, CHANNELS, threshold)


# --- reading figures -------------------------------------------------------------------------------------------


def labelled_lines(ax, prefix: str) -> list:
    return [line for line in ax.lines if line.get_label().startswith(prefix)]


def legend_texts(legend) -> list[str]:
    return [text.get_text() for text in legend.get_texts()]


def has_no_data_mark(ax) -> bool:
    return any(text.get_text() == NO_DATA_TEXT for text in ax.texts)


def bands(ax) -> list[PolyCollection]:
    return [collection for collection in ax.collections if isinstance(collection, PolyCollection)]


# --- confusion matrix ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.5, 0.8])
def test_confusion_matrix_cells_give_counts_and_row_percentages(table, threshold):
    fig = draw_confusion_matrix(table, threshold=threshold)
    (ax,) = fig.axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted class", "true class")
    assert [label.get_text() for label in ax.get_xticklabels()] == ["bogus", "real"]
    counts = confusion_counts(table["label"], table["score_mean"], threshold=threshold)
    expected = {(0, 0): counts["tn"], (0, 1): counts["fp"], (1, 0): counts["fn"], (1, 1): counts["tp"]}
    cells = {(round(text.get_position()[1]), round(text.get_position()[0])): text.get_text() for text in ax.texts}
    assert sorted(cells) == sorted(expected)
    for (row, col), text in cells.items():
        count, percentage = text.split("\n")
        row_total = expected[(row, 0)] + expected[(row, 1)]
        assert int(count) == expected[(row, col)]
        assert float(percentage.rstrip(" %")) == pytest.approx(100 * expected[(row, col)] / row_total, abs=0.05)
    accuracy = 100 * (counts["tp"] + counts["tn"]) / len(table)
    assert f"n = {len(table)}" in ax.get_title() and f"{accuracy:.1f} %" in ax.get_title()
    np.testing.assert_allclose(ax.images[0].get_array().sum(axis=1), [1.0, 1.0])


# --- ROC -----------------------------------------------------------------------------------------------------


def test_roc_draws_each_experiments_curve_in_both_panels_with_auc_and_target(two_tables):
    fig = draw_roc(two_tables, target_fpr=0.02)
    assert len(fig.axes) == 2
    full, zoom = fig.axes
    assert zoom.get_xscale() == "log" and zoom.get_xlim()[1] == pytest.approx(ZOOM_MAX_FPR)
    for name, table in two_tables.items():
        labels, scores = table["label"].to_numpy(), table["score_mean"].to_numpy()
        fpr, tpr, _ = roc_curve(labels, scores)
        operating = rates_at_threshold(labels, scores, threshold_at_fpr(labels, scores, target_fpr=0.02))
        for ax in (full, zoom):
            (line,) = labelled_lines(ax, name)
            assert line.get_label() == f"{name} (AUC = {roc_auc(labels, scores):.4f})"
            np.testing.assert_array_equal(line.get_xdata(), fpr)
            np.testing.assert_array_equal(line.get_ydata(), tpr)
            markers = [dot for dot in ax.lines if dot.get_marker() == "o" and dot.get_color() == line.get_color()]
            assert [(m.get_xdata()[0], m.get_ydata()[0]) for m in markers] == [(operating["fpr"], operating["tpr"])]
    for ax in (full, zoom):
        (target,) = labelled_lines(ax, "target FPR")
        assert list(target.get_xdata()) == [0.02, 0.02]
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("false positive rate", "true positive rate")
    assert [text.split(" (")[0] for text in legend_texts(full.get_legend())] == ["baseline", "weak", "chance",
                                                                               "target FPR 2 %"]


def test_roc_leaves_out_experiments_with_one_class(table):
    only_real = table[table["label"] == 1]
    fig = draw_roc({"baseline": table, "only real": only_real})
    for ax in fig.axes:
        assert len(labelled_lines(ax, "baseline")) == 1 and not labelled_lines(ax, "only real")
    fig = draw_roc({"only real": only_real})
    assert all(has_no_data_mark(ax) for ax in fig.axes)


# --- error rates against threshold ---------------------------------------------------------------------------


def test_rates_vs_threshold_draws_metric_curves_and_annotates_fnr_at_target(table):
    fig = draw_rates_vs_threshold(table, target_fpr=0.05)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log" and ax.get_xlim() == (0.0, 1.0)
    assert ax.get_xlabel().startswith("threshold") and ax.get_ylabel() == "rate"
    labels, scores = table["label"].to_numpy(), table["score_mean"].to_numpy()
    thresholds = np.linspace(0.0, 1.0, N_THRESHOLDS)
    expected_fpr, expected_fnr = rates_vs_threshold(labels, scores, thresholds)
    (fpr_line,), (fnr_line,) = labelled_lines(ax, "FPR"), labelled_lines(ax, "FNR")
    np.testing.assert_array_equal(fpr_line.get_xdata(), thresholds)
    np.testing.assert_array_equal(fpr_line.get_ydata(), expected_fpr)
    np.testing.assert_array_equal(fnr_line.get_ydata(), expected_fnr)
    threshold = threshold_at_fpr(labels, scores, target_fpr=0.05)
    (marked,) = labelled_lines(ax, "threshold at target")
    assert marked.get_xdata()[0] == threshold and f"{threshold:.3f}" in marked.get_label()
    (target,) = labelled_lines(ax, "target FPR")
    assert target.get_ydata()[0] == 0.05
    (note,) = [text for text in ax.texts if text.get_text().startswith("FNR =")]
    fnr = rates_at_threshold(labels, scores, threshold)["fnr"]
    assert float(re.search(r"= ([\d.]+) %", note.get_text()).group(1)) == pytest.approx(100 * fnr, rel=1e-2)
    assert note.xy[0] == threshold


# --- recovery ------------------------------------------------------------------------------------------------


def recovered_fraction(table, kind, column, low, high, threshold=0.5) -> float:
    rows = table[(table["kind"] == kind) & (table[column] >= low) & (table[column] < high)]
    return float(np.mean(rows["score_mean"] >= threshold))


def test_recovery_vs_magnitude_one_experiment_one_line_and_band_per_kind(table):
    fig = draw_recovery_vs_magnitude({"baseline": table}, threshold=0.6)
    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["training-like real kinds", "evaluation-only injections"]
    assert fig.axes[0].get_ylabel() == "fraction recovered (score_mean ≥ 0.6)"
    for ax, kinds in zip(fig.axes, (RECOVERY_KINDS[:2], RECOVERY_KINDS[2:]), strict=True):
        assert ax.get_xlabel() == "detected magnitude (mag)"
        assert len(bands(ax)) == len(kinds)
        for kind in kinds:
            (line,) = labelled_lines(ax, kind)
            n_finite = int(np.sum((table["kind"] == kind) & np.isfinite(table["mag"])))
            assert line.get_label() == f"{kind} (n={n_finite})"
            for centre, fraction in zip(line.get_xdata(), line.get_ydata(), strict=True):
                low, high = centre - MAG_BIN_WIDTH / 2, centre + MAG_BIN_WIDTH / 2
                assert low / MAG_BIN_WIDTH == pytest.approx(round(low / MAG_BIN_WIDTH))
                assert fraction == pytest.approx(recovered_fraction(table, kind, "mag", low, high, 0.6))


def test_recovery_band_is_the_clopper_pearson_interval_of_each_bin(table):
    fig = draw_recovery_vs_magnitude({"baseline": table}, kinds=("mp",))
    (ax,) = fig.axes
    (line,) = labelled_lines(ax, "mp")
    (band,) = bands(ax)
    vertices = np.concatenate([path.vertices for path in band.get_paths()])
    rows = table[table["kind"] == "mp"]
    for centre in line.get_xdata():
        in_bin = rows[(rows["mag"] >= centre - MAG_BIN_WIDTH / 2) & (rows["mag"] < centre + MAG_BIN_WIDTH / 2)]
        low, high = binomial_interval(int(np.sum(in_bin["score_mean"] >= 0.5)), len(in_bin), RECOVERY_CONFIDENCE)
        at_centre_edges = vertices[np.isclose(vertices[:, 0], centre - MAG_BIN_WIDTH / 2)]
        assert np.any(np.isclose(at_centre_edges[:, 1], low)) and np.any(np.isclose(at_centre_edges[:, 1], high))


def test_recovery_vs_magnitude_colours_experiments_when_comparing(two_tables):
    fig = draw_recovery_vs_magnitude(two_tables)
    for ax, kinds in zip(fig.axes, (RECOVERY_KINDS[:2], RECOVERY_KINDS[2:]), strict=True):
        assert len(bands(ax)) == 2 * len(kinds)
        colours = {name: {line.get_color() for line in labelled_lines(ax, f"{name}:")} for name in two_tables}
        assert all(len(found) == 1 for found in colours.values())
        assert colours["baseline"] != colours["weak"]
        styles = [line.get_linestyle() for line in labelled_lines(ax, "baseline:")]
        assert len(set(styles)) == len(kinds)


def test_recovery_vs_host_offset_first_bin_is_the_shaded_nuclear_region(table):
    fig = draw_recovery_vs_host_offset({"baseline": table})
    assert len(fig.axes) == 2
    for ax, column, limit in zip(fig.axes, ("host_offset_arcsec", "host_offset_hlr"),
                                 (NUCLEAR_OFFSET_ARCSEC, NUCLEAR_OFFSET_HLR), strict=True):
        (shade,) = [patch for patch in ax.patches if patch.get_label().startswith("nuclear")]
        assert (shade.get_x(), shade.get_width()) == (0.0, limit)
        assert ax.get_xlim() == pytest.approx((0.0, max(2 * limit, table[column].max())))
        assert ax.get_xlabel().startswith("host offset")
        assert len(bands(ax)) == len(HOSTED_KINDS)
        for kind in HOSTED_KINDS:
            (line,) = labelled_lines(ax, kind)
            assert line.get_xdata()[0] == pytest.approx(limit / 2)
            assert line.get_ydata()[0] == pytest.approx(recovered_fraction(table, kind, column, 0.0, limit))
        assert not labelled_lines(ax, "injected_hostless")


# --- reliability ---------------------------------------------------------------------------------------------


def test_reliability_curves_equal_the_metric_bins_with_ece_in_legend(two_tables):
    fig = draw_reliability(two_tables, n_bins=10)
    assert len(fig.axes) == 2
    curves, counts = fig.axes
    assert curves.get_ylabel() == "fraction real" and counts.get_yscale() == "log"
    assert counts.get_xlabel().startswith("mean predicted P(real)")
    steps = [patch for patch in counts.patches if isinstance(patch, StepPatch)]
    assert len(steps) == 2
    for name, step in zip(two_tables, steps, strict=True):
        table = two_tables[name]
        bins = reliability_bins(table["label"], table["score_mean"], n_bins=10)
        filled = bins[bins["count"] > 0]
        ece = expected_calibration_error(table["label"], table["score_mean"], n_bins=10)
        (errorbar,) = [container for container in curves.containers if container.get_label().startswith(name)]
        assert errorbar.get_label() == f"{name} (ECE = {ece:.3f})"
        line = errorbar.lines[0]
        np.testing.assert_allclose(line.get_xdata(), filled["mean_prob"])
        np.testing.assert_allclose(line.get_ydata(), filled["frac_real"])
        np.testing.assert_array_equal(step.get_data().values, bins["count"])
        np.testing.assert_allclose(step.get_data().edges, np.linspace(0, 1, 11))
    assert labelled_lines(curves, "perfect calibration")


# --- uncertain candidates ------------------------------------------------------------------------------------


def test_uncertain_candidates_rows_show_stamps_and_score_percentiles(table):
    rng = np.random.default_rng(3)
    picked = select_uncertain(table, n=3)
    stamps = {cid: rng.normal(size=(9, 9, len(CHANNELS))) for cid in picked["candidate_id"]}
    fig = uncertain_candidates(picked, stamps, CHANNELS, threshold=0.5)
    grid = np.array(fig.axes).reshape(len(picked), len(CHANNELS) + 1)
    assert [ax.get_title() for ax in grid[0, :-1]] == list(CHANNELS)
    for row, candidate in zip(grid, picked.itertuples(), strict=True):
        assert row[0].get_ylabel() == candidate.reason.replace(" ", "\n")
        np.testing.assert_array_equal(row[2].images[0].get_array(), stamps[candidate.candidate_id][:, :, 2])
        score_ax = row[-1]
        label = "real" if candidate.label == 1 else "bogus"
        assert score_ax.get_title() == f"{candidate.kind}, {label}, {candidate.candidate_id}"
        assert score_ax.get_xlim() == (0.0, 1.0)
        (box,) = [patch for patch in score_ax.patches if isinstance(patch, Rectangle)]
        assert box.get_x() == pytest.approx(candidate.score_p16)
        assert box.get_x() + box.get_width() == pytest.approx(candidate.score_p84)
        whisker = score_ax.collections[0].get_segments()[0]
        np.testing.assert_allclose(whisker[:, 0], [candidate.score_p05, candidate.score_p95])
        mean_marker, threshold_line = score_ax.lines
        assert mean_marker.get_xdata()[0] == candidate.score_mean and mean_marker.get_marker() == "D"
        assert list(threshold_line.get_xdata()) == [0.5, 0.5]
    assert legend_texts(fig.legends[0]) == ["5–95 %", "16–84 %", "median", "mean", "threshold"]


def test_uncertain_candidates_needs_a_stamp_per_picked_candidate(table):
    picked = select_uncertain(table, n=2)
    with pytest.raises(ValueError, match="no stamp given"):
        uncertain_candidates(picked, {}, CHANNELS)
    wrong_shape = {cid: np.zeros((9, 9, 2)) for cid in picked["candidate_id"]}
    with pytest.raises(ValueError, match=r"\(H, W, 4\)"):
        uncertain_candidates(picked, wrong_shape, CHANNELS)


# --- uncertainty against magnitude ---------------------------------------------------------------------------


def test_uncertainty_vs_magnitude_scatters_kinds_and_running_median_per_experiment(two_tables):
    fig = draw_uncertainty_vs_magnitude(two_tables)
    assert len(fig.axes) == 2
    assert [ax.get_ylabel() for ax in fig.axes] == ["posterior std of P(real)", "BALD (nats)"]
    for ax, column in zip(fig.axes, ("score_std", "bald"), strict=True):
        assert ax.get_xlabel() == "detected magnitude (mag)"
        for name, table in two_tables.items():
            points = [c for c in ax.collections if c.get_label().startswith(f"{name}:")]
            assert [c.get_label() for c in points] == [f"{name}: {kind}" for kind in KIND_COUNTS]
            assert sum(len(c.get_offsets()) for c in points) == int(np.sum(np.isfinite(table["mag"])))
            (median,) = labelled_lines(ax, f"{name}: running median")
            assert len(median.get_xdata()) > 0
            for centre, value in zip(median.get_xdata(), median.get_ydata(), strict=True):
                low, high = centre - MAG_BIN_WIDTH / 2, centre + MAG_BIN_WIDTH / 2
                assert low / MAG_BIN_WIDTH == pytest.approx(round(low / MAG_BIN_WIDTH))
                in_bin = table[(table["mag"] >= low) & (table["mag"] < high)]
                assert len(in_bin) >= MIN_MEDIAN_COUNT
                assert value == pytest.approx(np.median(in_bin[column]))
    assert len(fig.legends) == 1


def test_risk_coverage_draws_each_experiments_error_rate_and_oracle_per_measure(two_tables):
    fig = draw_risk_coverage(two_tables)
    assert [ax.get_title() for ax in fig.axes] == list(UNCERTAINTY_MEASURES.values())
    for ax, column in zip(fig.axes, UNCERTAINTY_MEASURES, strict=True):
        assert ax.get_xlim() == (0, 100 * MAX_REFERRED)
        for name, table in two_tables.items():
            auroc = error_detection_auroc(table["label"], table["score_mean"], table[column])
            (line,) = labelled_lines(ax, f"{name} (AUROC {auroc:.3f})")
            curve = risk_coverage(table["label"], table["score_mean"], table[column])
            shown = curve[curve["referred"] <= MAX_REFERRED]
            np.testing.assert_allclose(line.get_xdata(), 100 * shown["referred"])
            np.testing.assert_allclose(line.get_ydata(), 100 * (1 - shown["accuracy"]))
            assert line.get_ydata()[0] == pytest.approx(100 * (1 - shown["random"].iloc[0]))
        oracles = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
        assert len(oracles) == len(two_tables)


# --- empty input, bad input, saving --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "n_axes"),
    [
        (lambda empty: draw_confusion_matrix(empty), 1),
        (lambda empty: draw_roc({"empty": empty}), 2),
        (lambda empty: draw_rates_vs_threshold(empty), 1),
        (lambda empty: draw_recovery_vs_magnitude({"empty": empty}), 2),
        (lambda empty: draw_recovery_vs_host_offset({"empty": empty}), 2),
        (lambda empty: draw_reliability({"empty": empty}), 2),
        (lambda empty: draw_uncertain_candidates(empty, {}), 1),
        (lambda empty: draw_uncertainty_vs_magnitude({"empty": empty}), 2),
        (lambda empty: draw_risk_coverage({"empty": empty}), 3),
        (lambda empty: draw_roc({}), 2),
    ],
)
def test_empty_selection_gives_no_data_panels(table, build, n_axes, tmp_path):
    fig = build(table.iloc[:0])
    assert isinstance(fig, Figure) and len(fig.axes) == n_axes
    assert all(has_no_data_mark(ax) for ax in fig.axes)
    save_figure(fig, tmp_path / "empty.png")
    assert (tmp_path / "empty.png").stat().st_size > 0


def test_figures_of_real_data_render_to_pdf(table, two_tables, tmp_path):
    stamps = {cid: np.ones((5, 5, len(CHANNELS))) for cid in table["candidate_id"]}
    figures = [draw_confusion_matrix(table), draw_roc(two_tables), draw_rates_vs_threshold(table),
               draw_recovery_vs_magnitude(two_tables), draw_recovery_vs_host_offset(two_tables),
               draw_reliability(two_tables), draw_uncertain_candidates(table, stamps, n=2),
               draw_uncertainty_vs_magnitude(two_tables), draw_risk_coverage(two_tables)]
    for index, fig in enumerate(figures):
        save_figure(fig, tmp_path / f"figure{index}.pdf")
        assert (tmp_path / f"figure{index}.pdf").read_bytes().startswith(b"%PDF")

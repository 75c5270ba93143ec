"""Tests for bayesrb.figures.context: what each context-classifier figure draws equals the data it is given."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle, StepPatch

from bayesrb.evaluation.metrics import reliability_bins
from bayesrb.figures.context import (
    CONTEXT_CLASS_COLOURS,
    CONTRIBUTION_COLOURS,
    N_CONTRIBUTIONS,
    censoring_curves,
    class_reliability,
    confusion_matrices,
    explanation_cards,
    feature_importance,
)
from bayesrb.figures.style import DIVERGING_CMAP, NO_DATA_TEXT, save_figure
from bayesrb.vocabulary import CONTEXT_CLASS_NAMES, CONTEXT_CLASSES

CHANNELS = ("science", "template", "difference", "subframe_ptp")
LOSS = np.array([0.0, 0.25, 0.5, 1.0])
SCENARIOS = ("all catalogues", "stars", "galaxies", "variables", "agn")


def texts(ax) -> list[str]:
    return [text.get_text() for text in ax.texts]


def says_no_data(fig: Figure) -> bool:
    return any(NO_DATA_TEXT in texts(ax) for ax in fig.axes)


def axes_titled(fig: Figure, title: str):
    (ax,) = [ax for ax in fig.axes if ax.get_title() == title]
    return ax


def bars(ax) -> list[Rectangle]:
    return [patch for patch in ax.patches if isinstance(patch, Rectangle)]


def hex_colour(artist) -> str:
    return to_hex(artist.get_facecolor() if isinstance(artist, Rectangle) else artist.get_color())


def same_colours(drawn: list[str], expected: list[str]) -> bool:
    return drawn == [to_hex(colour) for colour in expected]


# ----------------------------------------------------------------------------------------------- class colours


def test_every_context_class_has_its_own_colour():
    assert set(CONTEXT_CLASS_COLOURS) == set(CONTEXT_CLASSES)
    assert len(set(CONTEXT_CLASS_COLOURS.values())) == len(CONTEXT_CLASSES)


# ----------------------------------------------------------------------------------------------- confusion matrices

COUNTS = np.array([
    [50, 3, 0, 1, 0, 6],
    [4, 20, 1, 0, 0, 0],
    [0, 2, 9, 3, 1, 0],
    [1, 0, 2, 17, 5, 0],
    [0, 0, 0, 0, 0, 0],  # no orphans: a blank row of percentages
    [2, 0, 0, 0, 0, 33],
])


def test_confusion_matrices_annotate_the_counts():
    fig = confusion_matrices(COUNTS, CONTEXT_CLASSES)
    count_ax = axes_titled(fig, "counts (shading: log scale)")
    assert [int(text) for text in texts(count_ax)] == COUNTS.ravel().tolist()
    assert [label.get_text() for label in count_ax.get_xticklabels()] == [CONTEXT_CLASS_NAMES[c] for c in
                                                                          CONTEXT_CLASSES]
    supports = [label.get_text() for label in count_ax.get_yticklabels()]
    assert supports == [f"{CONTEXT_CLASS_NAMES[c]} (n = {n})" for c, n in zip(CONTEXT_CLASSES, COUNTS.sum(axis=1),
                                                                               strict=True)]
    assert count_ax.get_xlabel() == "predicted class"
    assert "true class" in count_ax.get_ylabel()
    accuracy = 100 * np.trace(COUNTS) / COUNTS.sum()
    assert f"n = {COUNTS.sum()}" in fig.get_suptitle()
    assert f"{accuracy:.1f} %" in fig.get_suptitle()


def test_confusion_matrices_annotate_row_percentages_and_leave_empty_rows_blank():
    fig = confusion_matrices(COUNTS, CONTEXT_CLASSES)
    percent_ax = axes_titled(fig, "row percentages")
    filled = COUNTS.sum(axis=1) > 0
    written = np.array([float(text) for text in texts(percent_ax)]).reshape(filled.sum(), len(CONTEXT_CLASSES))
    expected = 100 * COUNTS[filled] / COUNTS[filled].sum(axis=1, keepdims=True)
    np.testing.assert_allclose(written, expected, atol=0.05 + 1e-9)
    np.testing.assert_allclose(written.sum(axis=1), 100.0, atol=0.05 * len(CONTEXT_CLASSES))
    (image,) = [artist for artist in percent_ax.get_children() if isinstance(artist, AxesImage)]
    mask = np.ma.getmaskarray(image.get_array())
    assert mask[~filled].all() and not mask[filled].any()
    np.testing.assert_allclose(image.get_array()[filled], expected)


def test_confusion_matrices_without_candidates_say_no_data():
    assert says_no_data(confusion_matrices(np.zeros((2, 2), dtype=int), ("bs", "sn")))


@pytest.mark.parametrize("counts, classes, message", [
    (np.ones((2, 3), dtype=int), ("bs", "sn"), r"square \(K, K\) matrix, got shape \(2, 3\)"),
    (np.ones((3, 3), dtype=int), ("bs", "sn"), "2 classes for 3 rows and columns"),
    (np.array([[1, -1], [0, 2]]), ("bs", "sn"), "non-negative whole numbers"),
    (np.array([[1.5, 1.0], [0.0, 2.0]]), ("bs", "sn"), "non-negative whole numbers"),
    (np.array([[1.0, np.nan], [0.0, 2.0]]), ("bs", "sn"), "non-negative whole numbers"),
    (np.ones((2, 2), dtype=int), ("bs", "bs"), "classes must be distinct"),
])
def test_confusion_matrices_reject_bad_counts(counts, classes, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrices(counts, classes)


# ----------------------------------------------------------------------------------------------- censoring curves


def censoring_metrics() -> dict[str, dict[str, np.ndarray]]:
    return {name: {"accuracy": 0.95 - 0.02 * index * LOSS, "sn_recall": 0.9 - 0.1 * index * LOSS}
            for index, name in enumerate(SCENARIOS)}


def censoring_intervals(metrics, below: float = 0.02, above: float = 0.03) -> dict[str, dict[str, np.ndarray]]:
    return {name: {metric: np.column_stack([values - below * (1 + LOSS), np.minimum(values + above, 1.0)])
                   for metric, values in curves.items()} for name, curves in metrics.items()}


def scenario_lines(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines() if line.get_label() in SCENARIOS}


def test_censoring_curves_draw_each_metric_of_each_scenario_in_percent():
    metrics = censoring_metrics()
    fig = censoring_curves(LOSS, metrics)
    assert [ax.get_title() for ax in fig.axes] == ["accuracy", "supernova recall"]
    for ax, metric in zip(fig.axes, ("accuracy", "sn_recall"), strict=True):
        lines = scenario_lines(ax)
        assert list(lines) == list(SCENARIOS)
        for name, line in lines.items():
            np.testing.assert_allclose(line.get_xdata(), 100 * LOSS)
            np.testing.assert_allclose(line.get_ydata(), 100 * metrics[name][metric])
        assert ax.get_xlabel() == "catalogue loss (%)"
        assert ax.get_ylabel().endswith("(%)")
        low, high = ax.get_ylim()
        assert low < 100 * min(m[metric].min() for m in metrics.values()) and high > 100 * metrics["stars"][metric][0]
    colours = [[hex_colour(line) for line in scenario_lines(ax).values()] for ax in fig.axes]
    assert colours[0] == colours[1] and len(set(colours[0])) == len(SCENARIOS)


def test_censoring_curves_draw_intervals_as_error_bars():
    metrics = censoring_metrics()
    intervals = censoring_intervals(metrics)
    fig = censoring_curves(LOSS, metrics, intervals=intervals)
    for ax, metric in zip(fig.axes, ("accuracy", "sn_recall"), strict=True):
        bar_sets = [artist for artist in ax.collections if isinstance(artist, LineCollection)]
        assert len(bar_sets) == len(SCENARIOS)
        for segments, name in zip(bar_sets, SCENARIOS, strict=True):
            ends = np.array(segments.get_segments())  # (L, 2 ends, xy)
            np.testing.assert_allclose(ends[:, :, 0], np.column_stack([100 * LOSS] * 2))
            np.testing.assert_allclose(np.sort(ends[:, :, 1], axis=1), 100 * intervals[name][metric])
            np.testing.assert_allclose(np.abs(np.diff(ends[:, :, 1], axis=1))[:, 0],
                                       100 * np.diff(intervals[name][metric], axis=1)[:, 0])
    assert "95 % intervals" in fig.get_suptitle()


def test_censoring_curves_spread_scenarios_apart_only_with_error_bars():
    metrics = {name: {"accuracy": np.full(LOSS.size, 0.9)} for name in SCENARIOS[:3]}

    def page_x(fig):
        return [line.get_transform().transform(line.get_xydata())[0, 0]
                for line in scenario_lines(fig.axes[0]).values()]

    plain = page_x(censoring_curves(LOSS, metrics))
    assert plain == pytest.approx([plain[0]] * 3)
    spread = page_x(censoring_curves(LOSS, metrics, intervals=censoring_intervals(metrics)))
    assert spread[0] < spread[1] < spread[2]


def test_censoring_curves_leave_out_a_metric_a_scenario_lacks():
    metrics = censoring_metrics()
    del metrics["agn"]["sn_recall"]
    fig = censoring_curves(LOSS, metrics)
    assert list(scenario_lines(fig.axes[0])) == list(SCENARIOS)
    assert list(scenario_lines(fig.axes[1])) == list(SCENARIOS[:-1])


def test_censoring_curves_without_metrics_say_no_data():
    assert says_no_data(censoring_curves(LOSS, {}))


@pytest.mark.parametrize("change, message", [
    ("unsorted loss", "loss must be increasing fractions"),
    ("loss in percent", "loss must be increasing fractions"),
    ("short metric", r"must have shape \(4,\) like loss"),
    ("metric in percent", r"\['accuracy'\] must be fractions in \[0, 1\]"),
    ("interval shape", r"must have shape \(4, 2\)"),
    ("interval reversed", "a lower end exceeds its upper end"),
    ("interval of unknown scenario", "has no metric to go with it"),
])
def test_censoring_curves_reject_bad_input(change, message):
    loss, metrics = LOSS.copy(), censoring_metrics()
    intervals = None
    if change == "unsorted loss":
        loss = loss[::-1]
    elif change == "loss in percent":
        loss = 100 * loss
    elif change == "short metric":
        metrics["stars"]["accuracy"] = metrics["stars"]["accuracy"][:-1]
    elif change == "metric in percent":
        metrics["stars"]["accuracy"] = 100 * metrics["stars"]["accuracy"]
    elif change == "interval shape":
        intervals = {"stars": {"accuracy": np.zeros((LOSS.size, 3))}}
    elif change == "interval reversed":
        intervals = {"stars": {"accuracy": censoring_intervals(metrics)["stars"]["accuracy"][:, ::-1]}}
    else:
        intervals = {"quasars": {"accuracy": censoring_intervals(metrics)["stars"]["accuracy"]}}
    with pytest.raises(ValueError, match=message):
        censoring_curves(loss, metrics, intervals=intervals)


# ----------------------------------------------------------------------------------------------- feature importance

NAMES = ("stars_sep1_arcsec", "host_ddlr", "mag", "snr", "cnn_p_mean", "agn_state", "mp_sep_arcsec")
GAIN = np.array([5.0, 40.0, 1.0, 10.0, 80.0, 10.0, 0.0])


def test_feature_importance_draws_the_top_gains_largest_first_as_shares_of_the_total():
    fig = feature_importance(NAMES, GAIN, top=4)
    (ax,) = fig.axes
    drawn = sorted(bars(ax), key=lambda bar: bar.get_y())
    order = [4, 1, 3, 5]  # equal gains (snr, agn_state) keep the order of the names
    np.testing.assert_allclose([bar.get_width() for bar in drawn], 100 * GAIN[order] / GAIN.sum())
    assert ax.yaxis_inverted()  # the smallest y, the largest gain, is at the top
    assert [label.get_text() for label in ax.get_yticklabels()] == [NAMES[i] for i in order]
    assert texts(ax) == [f"{100 * GAIN[i] / GAIN.sum():.1f}" for i in order]
    assert "total gain" in ax.get_xlabel() and "%" in ax.get_xlabel()
    assert f"{100 * GAIN[order].sum() / GAIN.sum():.1f} %" in ax.get_title()


def test_feature_importance_shows_every_feature_when_there_are_fewer_than_top():
    (ax,) = feature_importance(NAMES, GAIN).axes
    assert len(bars(ax)) == len(NAMES)


def test_feature_importance_without_gain_says_no_data():
    assert says_no_data(feature_importance(NAMES, np.zeros(len(NAMES))))
    assert says_no_data(feature_importance([], []))


@pytest.mark.parametrize("names, gain, top, message", [
    (NAMES, GAIN[:-1], 20, "one value per name"),
    (NAMES, -GAIN, 20, "finite and non-negative"),
    (NAMES, np.where(GAIN == 1.0, np.nan, GAIN), 20, "finite and non-negative"),
    (("mag", "mag"), (1.0, 2.0), 20, "names must be distinct"),
    (NAMES, GAIN, 0, "top must be a positive integer"),
])
def test_feature_importance_rejects_bad_input(names, gain, top, message):
    with pytest.raises(ValueError, match=message):
        feature_importance(names, gain, top=top)


# ----------------------------------------------------------------------------------------------- class reliability


def class_bins(rng: np.random.Generator, code_weights: dict[str, float]) -> dict[str, pd.DataFrame]:
    """One-against-the-rest reliability bins of each class, from reliability_bins as the evaluation computes them."""
    bins = {}
    for code, skill in code_weights.items():
        probs = rng.uniform(0.0, 1.0, 400)
        labels = (rng.uniform(0.0, 1.0, 400) < skill * probs).astype(int)
        bins[code] = reliability_bins(labels, probs, n_bins=10)
    return bins


def test_class_reliability_draws_one_panel_pair_per_class_in_class_order():
    bins = class_bins(np.random.default_rng(3), {"mp": 1.0, "bs": 0.8})
    fig = class_reliability(bins)
    curve_axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in curve_axes] == [
        f"{CONTEXT_CLASS_NAMES[code]} (n = {bins[code]['count'].sum()})" for code in ("bs", "mp")]
    assert len(fig.axes) == 4
    for ax, code in zip(curve_axes, ("bs", "mp"), strict=True):
        table = bins[code][bins[code]["count"] > 0]
        (curve,) = [line for line in ax.get_lines() if hex_colour(line) == to_hex(CONTEXT_CLASS_COLOURS[code])]
        np.testing.assert_allclose(curve.get_xdata(), table["mean_prob"])
        np.testing.assert_allclose(curve.get_ydata(), table["frac_real"])
        assert any(np.allclose(line.get_xdata(), [0, 1]) and np.allclose(line.get_ydata(), [0, 1])
                   for line in ax.get_lines())
    count_axes = [ax for ax in fig.axes if not ax.get_title()]
    for ax, code in zip(count_axes, ("bs", "mp"), strict=True):
        (stairs,) = [patch for patch in ax.patches if isinstance(patch, StepPatch)]
        np.testing.assert_array_equal(stairs.get_data().values, bins[code]["count"])
        assert ax.get_yscale() == "log"
    assert "mean predicted probability" in fig.get_supxlabel()


def test_class_reliability_draws_intervals_as_error_bars():
    bins = class_bins(np.random.default_rng(4), {"sn": 1.0})
    table = bins["sn"]
    table["low"], table["high"] = np.clip(table["frac_real"] - 0.1, 0, 1), np.clip(table["frac_real"] + 0.05, 0, 1)
    fig = class_reliability(bins)
    (segments,) = [artist for artist in fig.axes[0].collections if isinstance(artist, LineCollection)]
    ends = np.array(segments.get_segments())
    filled = table[table["count"] > 0]
    np.testing.assert_allclose(ends[:, :, 0], np.column_stack([filled["mean_prob"]] * 2))
    np.testing.assert_allclose(np.sort(ends[:, :, 1], axis=1), filled[["low", "high"]].to_numpy())


def test_class_reliability_lays_out_three_classes_to_a_row():
    fig = class_reliability(class_bins(np.random.default_rng(5), dict.fromkeys(("bs", "vs", "nt", "sn"), 1.0)))
    assert len(fig.axes) == 8  # two rows of three pairs, the last two pairs removed


def test_class_reliability_marks_a_class_without_candidates():
    bins = {"or": reliability_bins(np.empty(0, dtype=int), np.empty(0), n_bins=5)}
    assert says_no_data(class_reliability(bins))
    assert says_no_data(class_reliability({}))


@pytest.mark.parametrize("change, message", [
    ("missing column", r"lack the column\(s\) \['frac_real'\]"),
    ("negative count", "non-negative whole numbers"),
    ("gap between bins", "must be contiguous"),
    ("probability above 1", "mean_prob of the reliability bins of 'sn' must be fractions"),
    ("no rows", "have no rows"),
    ("interval reversed", r"a lower end \(low\) exceeds its upper end"),
])
def test_class_reliability_rejects_bad_bins(change, message):
    table = class_bins(np.random.default_rng(6), {"sn": 1.0})["sn"]
    if change == "missing column":
        table = table.drop(columns="frac_real")
    elif change == "negative count":
        table.loc[0, "count"] = -1
    elif change == "gap between bins":
        table = table.drop(index=3)
    elif change == "probability above 1":
        table.loc[9, "mean_prob"] = 1.5
    elif change == "no rows":
        table = table.iloc[:0]
    else:
        table["low"], table["high"] = table["frac_real"], table["frac_real"] / 2
    with pytest.raises(ValueError, match=message):
        class_reliability({"sn": table})


# ----------------------------------------------------------------------------------------------- explanation cards


def make_card(rng: np.random.Generator, title: str = "cand-001, true supernova", n_contributions: int = 9) -> dict:
    p_mean = rng.dirichlet(np.ones(len(CONTEXT_CLASSES)))
    return {
        "stamps": rng.normal(0.0, 1.0, (11, 11, len(CHANNELS))),
        "channels": CHANNELS,
        "title": title,
        "classes": CONTEXT_CLASSES,
        "p_mean": p_mean,
        "p_std": 0.3 * p_mean,
        "contributions": {f"feature_{i}": float(value) for i, value in
                          enumerate(rng.normal(0.0, 1.0, n_contributions))},
    }


def test_explanation_cards_draw_one_row_of_stamps_probabilities_and_contributions_per_card():
    rng = np.random.default_rng(7)
    cards = [make_card(rng, "cand-001, true supernova"), make_card(rng, "cand-002, true orphan")]
    fig = explanation_cards(cards)
    assert len(fig.axes) == len(cards) * (len(CHANNELS) + 2)
    for row, card in zip(fig.subfigs, cards, strict=True):
        predicted = CONTEXT_CLASS_NAMES[CONTEXT_CLASSES[int(np.argmax(card["p_mean"]))]]
        assert card["title"] in row.get_suptitle() and f"predicted {predicted}" in row.get_suptitle()
        stamp_axes = row.axes[:len(CHANNELS)]
        for channel, ax in enumerate(stamp_axes):
            (image,) = ax.get_images()
            np.testing.assert_array_equal(image.get_array(), card["stamps"][:, :, channel])
        assert stamp_axes[CHANNELS.index("difference")].get_images()[0].get_cmap().name == DIVERGING_CMAP
    assert [ax.get_title() for ax in fig.subfigs[0].axes[:len(CHANNELS)]] == list(CHANNELS)


def test_explanation_cards_draw_probabilities_with_their_spreads():
    card = make_card(np.random.default_rng(8))
    probability_ax = explanation_cards([card]).axes[len(CHANNELS)]
    drawn = sorted(bars(probability_ax), key=lambda bar: bar.get_y())
    np.testing.assert_allclose([bar.get_width() for bar in drawn], card["p_mean"])
    assert same_colours([hex_colour(bar) for bar in drawn], [CONTEXT_CLASS_COLOURS[code] for code in CONTEXT_CLASSES])
    (segments,) = [artist for artist in probability_ax.collections if isinstance(artist, LineCollection)]
    ends = np.array(segments.get_segments())
    np.testing.assert_allclose(ends[:, :, 0], np.column_stack([card["p_mean"] - card["p_std"],
                                                               card["p_mean"] + card["p_std"]]))
    np.testing.assert_allclose(ends[:, 1, 0] - ends[:, 0, 0], 2 * card["p_std"])
    labels = probability_ax.get_yticklabels()
    assert [label.get_text() for label in labels] == [CONTEXT_CLASS_NAMES[code] for code in CONTEXT_CLASSES]
    assert labels[int(np.argmax(card["p_mean"]))].get_fontweight() == "bold"


def test_explanation_cards_draw_the_largest_contributions_by_sign():
    card = make_card(np.random.default_rng(9), n_contributions=9)
    contribution_ax = explanation_cards([card]).axes[len(CHANNELS) + 1]
    drawn = sorted(bars(contribution_ax), key=lambda bar: bar.get_y())
    largest = sorted(card["contributions"].items(), key=lambda item: -abs(item[1]))[:N_CONTRIBUTIONS]
    assert len(drawn) == N_CONTRIBUTIONS
    np.testing.assert_allclose([bar.get_width() for bar in drawn], [value for _, value in largest])
    assert [label.get_text() for label in contribution_ax.get_yticklabels()] == [name for name, _ in largest]
    assert same_colours([hex_colour(bar) for bar in drawn],
                        [CONTRIBUTION_COLOURS["positive" if value > 0 else "negative"] for _, value in largest])
    assert contribution_ax.yaxis_inverted()
    predicted = CONTEXT_CLASS_NAMES[CONTEXT_CLASSES[int(np.argmax(card["p_mean"]))]]
    assert predicted in contribution_ax.get_xlabel()


def test_explanation_cards_mark_missing_contributions_and_missing_cards():
    card = make_card(np.random.default_rng(10), n_contributions=0)
    assert says_no_data(explanation_cards([card]))
    assert says_no_data(explanation_cards([]))


@pytest.mark.parametrize("change, message", [
    ("missing key", r"lacks the key\(s\) \['p_std'\]"),
    ("channel names", "one channel per name"),
    ("stamp dimensions", "one channel per name"),
    ("short p_mean", "one value per class"),
    ("p_mean not summing to 1", "probabilities summing to 1"),
    ("negative spread", "p_std must be finite and non-negative"),
    ("infinite contribution", "contributions must be finite"),
])
def test_explanation_cards_reject_bad_cards(change, message):
    card = make_card(np.random.default_rng(11))
    if change == "missing key":
        del card["p_std"]
    elif change == "channel names":
        card["channels"] = CHANNELS[:-1]
    elif change == "stamp dimensions":
        card["stamps"] = card["stamps"][:, :, 0]
    elif change == "short p_mean":
        card["p_mean"] = card["p_mean"][:-1]
    elif change == "p_mean not summing to 1":
        card["p_mean"] = 0.5 * card["p_mean"]
    elif change == "negative spread":
        card["p_std"] = -card["p_std"]
    else:
        card["contributions"]["feature_0"] = np.inf
    with pytest.raises(ValueError, match=message):
        explanation_cards([make_card(np.random.default_rng(12)), card])


# ----------------------------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("figure", ["confusion", "censoring", "importance", "reliability", "cards"])
def test_every_figure_renders_to_png(figure, tmp_path):
    rng = np.random.default_rng(13)
    metrics = censoring_metrics()
    build = {
        "confusion": lambda: confusion_matrices(COUNTS, CONTEXT_CLASSES),
        "censoring": lambda: censoring_curves(LOSS, metrics, intervals=censoring_intervals(metrics)),
        "importance": lambda: feature_importance(NAMES, GAIN),
        "reliability": lambda: class_reliability(class_bins(rng, dict.fromkeys(CONTEXT_CLASSES, 1.0))),
        "cards": lambda: explanation_cards([make_card(rng), make_card(rng)]),
    }[figure]
    path = tmp_path / f"{figure}.png"
    save_figure(build(), path)
    assert path.read_bytes().startswith(b"\x89PNG")

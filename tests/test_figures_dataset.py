"""Tests for bayesrb.figures.dataset, bayesrb.figures.style and bayesrb.figures.names on tiny synthetic data sets."""

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from bayesrb.dataset import steps as dataset_steps
from bayesrb.figures.dataset import host_offset_distributions, label_counts, magnitude_distributions, stamp_gallery
from bayesrb.figures.names import DATASET_FIGURES
from bayesrb.figures.style import (
    NO_DATA_TEXT,
    NUCLEAR_OFFSET_ARCSEC,
    NUCLEAR_OFFSET_HLR,
    SAVE_DPI,
    STRETCH_PERCENTILES,
    save_figure,
)

CHANNELS = ("science", "template", "difference", "subframe_ptp")
KIND_COUNTS = {
    "mp": 7,
    "syntransient": 9,
    "randjunk": 12,
    "glxresid": 5,
    "injected_sn": 6,
    "injected_nuclear": 4,
    "injected_hostless": 3,
}
BOGUS_KINDS = ("randjunk", "glxresid")
HOSTED_KINDS = ("syntransient", "injected_sn", "injected_nuclear")
EMPTY_META = {name: np.empty(0) for name in ("kind", "label", "split", "mag", "host_offset_arcsec", "host_offset_hlr")}


def make_meta(rng: np.random.Generator, kind_counts: dict[str, int] = KIND_COUNTS) -> dict[str, np.ndarray]:
    kind = np.concatenate([[k] * n for k, n in kind_counts.items()]).astype(object)
    n = kind.size
    evaluation = np.char.startswith(kind.astype(str), "injected")
    hosted = np.isin(kind, HOSTED_KINDS)
    mag = rng.normal(18.5, 1.0, n)
    mag[::5] = np.nan
    offset = np.where(hosted, rng.exponential(2.0, n), np.nan)
    return {
        "kind": kind,
        "label": np.where(np.isin(kind, BOGUS_KINDS), 0, 1).astype(np.int8),
        "split": np.where(evaluation, "eval", np.array(["train", "val", "test"])[np.arange(n) % 3]),
        "mag": mag,
        "host_offset_arcsec": offset,
        "host_offset_hlr": offset / 2.0,
        "mp_mag": np.where(kind == "syntransient", mag + 0.3, np.nan),
    }


def make_stamps(n: int, rng: np.random.Generator, size: int = 6) -> np.ndarray:
    """Stamps whose science channel is centred on the candidate index, so a drawn stamp tells its origin."""
    stamps = rng.normal(0.0, 1.0, (n, size, size, len(CHANNELS))).astype(np.float32)
    stamps[..., 0] += 1000.0 * np.arange(n)[:, None, None]
    return stamps


def shown_index(ax) -> int:
    """Candidate index of the stamp drawn on a science-channel axes (see make_stamps)."""
    return round(float(np.median(np.ma.getdata(ax.images[0].get_array()))) / 1000.0)


def legend_texts(legend) -> list[str]:
    return [text.get_text() for text in legend.get_texts()]


def polygon_area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def step_histograms(ax) -> dict[str, np.ndarray]:
    """Vertices of each labelled step histogram on ``ax``, keyed by the kind that starts its legend label."""
    return {patch.get_label().split()[0]: patch.get_xy() for patch in ax.patches if "n=" in patch.get_label()}


def has_no_data_mark(fig: Figure) -> bool:
    return any(text.get_text() == NO_DATA_TEXT for ax in fig.axes for text in ax.texts)


# --- stamp gallery -------------------------------------------------------------------------------------------


def test_gallery_has_rows_per_kind_times_channels_image_axes_with_labels():
    rng = np.random.default_rng(1)
    kinds = np.array(["randjunk"] * 6 + ["mp"] * 5 + ["injected_sn"] * 7)
    stamps = make_stamps(kinds.size, rng)
    fig = stamp_gallery(stamps, CHANNELS, kinds, rows_per_kind=3, rng=np.random.default_rng(7))
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3 * 3 * len(CHANNELS)
    assert all(len(ax.images) == 1 and len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0 for ax in fig.axes)
    grid = np.array(fig.axes).reshape(9, len(CHANNELS))
    assert [ax.get_title() for ax in grid[0]] == list(CHANNELS)
    assert [ax.get_ylabel() for ax in grid[:, 0]] == ["mp"] * 3 + ["randjunk"] * 3 + ["injected_sn"] * 3
    for row in grid:
        index = shown_index(row[0])
        assert kinds[index] == row[0].get_ylabel()
        np.testing.assert_array_equal(row[2].images[0].get_array(), stamps[index, :, :, 2])


def test_gallery_stretches_each_stamp_and_centres_the_difference_on_zero():
    rng = np.random.default_rng(2)
    stamps = make_stamps(4, rng)
    fig = stamp_gallery(stamps, CHANNELS, np.array(["mp"] * 4), rows_per_kind=4)
    grid = np.array(fig.axes).reshape(4, len(CHANNELS))
    for index, row in enumerate(grid):
        science = row[0].images[0]
        np.testing.assert_allclose(science.norm.vmin, np.percentile(stamps[index, :, :, 0], STRETCH_PERCENTILES[0]))
        np.testing.assert_allclose(science.norm.vmax, np.percentile(stamps[index, :, :, 0], STRETCH_PERCENTILES[1]))
        difference = row[2].images[0]
        assert difference.norm.vmin == -difference.norm.vmax
        np.testing.assert_allclose(difference.norm.vmax,
                                   np.percentile(np.abs(stamps[index, :, :, 2]), STRETCH_PERCENTILES[1]), rtol=1e-6)
        assert difference.get_cmap().name != science.get_cmap().name


def test_gallery_selection_is_seeded_and_capped_by_kind_size():
    rng = np.random.default_rng(3)
    kinds = np.array(["glxresid"] * 20 + ["human"] * 2)
    stamps = make_stamps(kinds.size, rng)

    def shown_indices(fig):
        return [shown_index(ax) for ax in np.array(fig.axes).reshape(-1, len(CHANNELS))[:, 0]]

    first = shown_indices(stamp_gallery(stamps, CHANNELS, kinds, rows_per_kind=4, rng=np.random.default_rng(5)))
    again = shown_indices(stamp_gallery(stamps, CHANNELS, kinds, rows_per_kind=4, rng=np.random.default_rng(5)))
    unseeded = shown_indices(stamp_gallery(stamps, CHANNELS, kinds, rows_per_kind=4))
    assert first == again
    assert len(first) == 4 + 2 and first[4:] == [20, 21] and first[:4] == sorted(first[:4])
    assert unseeded == [0, 1, 2, 3, 20, 21]


def test_gallery_flat_or_nan_stamps_get_finite_limits():
    stamps = np.zeros((2, 5, 5, len(CHANNELS)), dtype=np.float32)
    stamps[1] = np.nan
    fig = stamp_gallery(stamps, CHANNELS, np.array(["mp", "mp"]))
    limits = np.array([(ax.images[0].norm.vmin, ax.images[0].norm.vmax) for ax in fig.axes])
    assert np.all(np.isfinite(limits)) and np.all(limits[:, 1] > limits[:, 0])


def test_gallery_rejects_mismatched_input():
    stamps = np.zeros((3, 5, 5, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="channel names"):
        stamp_gallery(stamps, CHANNELS[:3], np.array(["mp"] * 3))
    with pytest.raises(ValueError, match="kinds must have shape"):
        stamp_gallery(stamps, CHANNELS, np.array(["mp"] * 2))
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        stamp_gallery(stamps[0], CHANNELS, np.array(["mp"] * 3))


# --- label counts --------------------------------------------------------------------------------------------


def test_label_counts_bars_match_counts_per_kind_and_split():
    meta = make_meta(np.random.default_rng(4))
    fig = label_counts(meta)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "kind" and ax.get_ylabel() == "candidates" and ax.get_title()
    assert [label.get_text() for label in ax.get_xticklabels()] == list(KIND_COUNTS)
    assert legend_texts(fig.legends[0]) == ["train", "val", "test", "eval", "real", "bogus"]
    totals, reals = ax.containers[0::2], ax.containers[1::2]
    assert sum(bar.get_height() for container in totals for bar in container) == meta["kind"].size
    assert sum(bar.get_height() for container in reals for bar in container) == int(np.sum(meta["label"] == 1))
    kinds = meta["kind"].astype(str)
    for split, container in zip(["train", "val", "test", "eval"], totals, strict=True):
        expected = [int(np.sum((kinds == kind) & (meta["split"] == split))) for kind in KIND_COUNTS]
        assert [int(bar.get_height()) for bar in container] == expected
    written = sorted(int(text.get_text()) for text in ax.texts if text.get_text())
    assert written == sorted(int(bar.get_height()) for container in totals for bar in container if bar.get_height())


@pytest.mark.parametrize(
    ("counts", "scale"), [({"mp": 3, "randjunk": 400}, "log"), ({"mp": 3, "randjunk": 40}, "linear")]
)
def test_label_counts_uses_log_axis_only_for_wide_ranges(counts, scale):
    fig = label_counts(make_meta(np.random.default_rng(5), counts))
    assert fig.axes[0].get_yscale() == scale


# --- magnitudes ----------------------------------------------------------------------------------------------


def test_magnitude_histograms_are_normalised_on_shared_bins_without_nans():
    meta = make_meta(np.random.default_rng(6))
    fig = magnitude_distributions(meta)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "magnitude" and "density" in ax.get_ylabel() and ax.get_title()
    shown = ["mp", "syntransient", "injected_sn", "injected_nuclear", "injected_hostless"]
    kinds = meta["kind"].astype(str)
    finite = {kind: int(np.sum((kinds == kind) & np.isfinite(meta["mag"]))) for kind in shown}
    assert legend_texts(ax.get_legend()) == [
        f"{kind} ({'training' if kind in ('mp', 'syntransient') else 'evaluation'}, n={finite[kind]})"
        for kind in shown
    ]
    histograms = step_histograms(ax)
    assert sorted(histograms) == sorted(shown)
    for xy in histograms.values():
        assert polygon_area(xy) == pytest.approx(1.0, rel=1e-9)
    (edges,) = {tuple(np.unique(xy[:, 0])) for xy in histograms.values()}
    shown_mags = meta["mag"][np.isin(kinds, shown)]
    assert (edges[0], edges[-1]) == pytest.approx((np.nanmin(shown_mags), np.nanmax(shown_mags)))


def test_magnitude_counts_mode_sums_to_sample_size_and_skips_absent_kinds():
    meta = make_meta(np.random.default_rng(7), {"mp": 10, "randjunk": 5})
    fig = magnitude_distributions(meta, density=False)
    ax = fig.axes[0]
    assert [text.split()[0] for text in legend_texts(ax.get_legend())] == ["mp"]
    xy = step_histograms(ax)["mp"]
    assert polygon_area(xy) / np.diff(np.unique(xy[:, 0]))[0] == pytest.approx(np.sum(np.isfinite(meta["mag"][:10])))
    assert ax.get_ylabel() == "candidates per bin"


# --- host offsets --------------------------------------------------------------------------------------------


def test_host_offsets_two_panels_with_nuclear_shading_and_hosted_kinds_only():
    meta = make_meta(np.random.default_rng(8))
    fig = host_offset_distributions(meta)
    assert len(fig.axes) == 2
    arcsec, hlr = fig.axes
    assert arcsec.get_xlabel() == "host offset (arcsec)" and hlr.get_xlabel() == "host offset (half-light radii)"
    assert arcsec.get_title() == "in arcsec" and hlr.get_title() == "in host half-light radii"
    for ax, limit in ((arcsec, NUCLEAR_OFFSET_ARCSEC), (hlr, NUCLEAR_OFFSET_HLR)):
        texts = legend_texts(ax.get_legend())
        assert texts[0].startswith("nuclear") and f"{limit:g}" in texts[0]
        assert [text.split()[0] for text in texts[1:]] == list(HOSTED_KINDS)
        (shade,) = [patch for patch in ax.patches if patch.get_label().startswith("nuclear")]
        assert (shade.get_x(), shade.get_width()) == (0.0, limit)
        assert ax.get_xlim()[0] == 0.0
        for xy in step_histograms(ax).values():
            assert xy[0, 0] == 0.0
            assert polygon_area(xy) == pytest.approx(1.0, rel=1e-9)


# --- empty input and saving ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "n_axes"),
    [
        (lambda: stamp_gallery(np.zeros((0, 5, 5, 4), np.float32), CHANNELS, np.array([], dtype=str)), 1),
        (lambda: label_counts(EMPTY_META), 1),
        (lambda: magnitude_distributions(EMPTY_META), 1),
        (lambda: host_offset_distributions(EMPTY_META), 2),
    ],
)
def test_empty_input_gives_a_no_data_figure(build, n_axes, tmp_path):
    fig = build()
    assert isinstance(fig, Figure) and len(fig.axes) == n_axes
    assert has_no_data_mark(fig)
    save_figure(fig, tmp_path / "empty.png")
    assert (tmp_path / "empty.png").stat().st_size > 0


def test_missing_meta_column_is_named():
    with pytest.raises(ValueError, match="split"):
        label_counts({"kind": np.array(["mp"]), "label": np.array([1])})


def test_save_figure_writes_png_at_save_dpi_and_reproducible_pdf_atomically(tmp_path):
    def build():
        return magnitude_distributions(make_meta(np.random.default_rng(9)))

    fig = build()
    out = tmp_path / "sub" / "mags"
    save_figure(fig, out.with_suffix(".png"))
    png = out.with_suffix(".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == tuple(round(inches * SAVE_DPI) for inches in fig.get_size_inches())
    save_figure(build(), out.with_suffix(".pdf"))
    pdf = out.with_suffix(".pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000
    save_figure(build(), out.with_suffix(".pdf"))
    assert out.with_suffix(".pdf").read_bytes() == pdf, "the same figure built again must give the same PDF bytes"
    assert sorted(path.name for path in out.parent.iterdir()) == ["mags.pdf", "mags.png"]


def test_save_figure_rejects_unknown_format_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="xyz"):
        save_figure(Figure(), tmp_path / "figure.xyz")
    assert list(tmp_path.iterdir()) == []


def test_save_figure_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    fig = Figure()

    def fail_half_way(path, **kwargs):
        Path(path).write_bytes(b"half a figure")
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", fail_half_way)
    with pytest.raises(RuntimeError, match="disk full"):
        save_figure(fig, tmp_path / "figure.png")
    assert list(tmp_path.iterdir()) == []


# --- figure names -----------------------------------------------------------------------------------------------


def test_figure_names_load_without_heavy_modules():
    """Rule files import the names while Snakemake parses the workflow: no matplotlib, pandas, numpy or zarr."""
    heavy = ("matplotlib", "pandas", "numpy", "zarr")
    code = ("import sys; import bayesrb.figures.names as names; "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules)); print(names.DATASET_FIGURES)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, dataset_figures = run.stdout.splitlines()
    assert loaded == "[]"
    assert dataset_figures == str(DATASET_FIGURES) == "('gallery', 'label_counts', 'magnitudes', 'host_offsets')"


def test_dataset_steps_take_the_figure_names_from_the_names_module():
    assert dataset_steps.DATASET_FIGURES is DATASET_FIGURES

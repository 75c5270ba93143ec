"""The evaluation part of the tiny end-to-end run: metrics, figures, comparisons, the report and the notebook."""

import json

import nbformat
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, snakemake, tiny_experiments
from nbclient import NotebookClient

from bayesrb.dataset.store import open_dataset
from bayesrb.evaluation.steps import COMPARISON_FIGURES, EXPERIMENT_FIGURES, UNCERTAIN_FIGURE
from bayesrb.model.checkpoint import read_model_meta
from bayesrb.vocabulary import AUGMENTED_KINDS

pytestmark = pytest.mark.slow


def test_metrics_agree_with_the_scores_of_the_held_out_candidates(tiny_run):
    for experiment in tiny_experiments():
        directory = tiny_run / "experiments" / experiment
        metrics = json.loads((directory / "metrics.json").read_text())
        table = pd.read_parquet(directory / "evaluation.parquet")
        assert set(metrics["splits"]) == {"val", "test", "eval", "all_held_out"}
        for split in ("val", "test", "eval"):
            rows = table[table["split"] == split]
            accuracy = np.mean((rows["score_mean"] >= 0.5) == (rows["label"] == 1))
            assert metrics["splits"][split]["n"] == len(rows) > 0
            assert metrics["splits"][split]["accuracy"] == pytest.approx(accuracy)
            low, high = metrics["splits"][split]["ci95"]["accuracy"]
            assert low <= accuracy <= high
        assert set(metrics["splits"]["eval"]["by_kind"]) >= {"injected_sn", "randjunk"}


def test_an_experiment_without_augmentation_trains_on_no_augmented_rows(tiny_run):
    meta = open_dataset(tiny_run / "dataset/dataset.zarr").meta
    train_kinds = meta["kind"][meta["split"] == "train"]
    model = read_model_meta(tiny_run / "experiments/ensemble_noaug/training/model")
    assert model["training"]["augmentation"] is False
    assert model["n_train"] == np.sum(~np.isin(train_kinds, AUGMENTED_KINDS)) < len(train_kinds)
    assert read_model_meta(tiny_run / "experiments/bcnn/training/model")["n_train"] == len(train_kinds)


def test_every_figure_and_the_summary_are_written(tiny_run):
    for experiment in tiny_experiments():
        for stem in (*EXPERIMENT_FIGURES, UNCERTAIN_FIGURE, "training_curves"):
            assert (tiny_run / "experiments" / experiment / "figures" / f"{stem}.png").stat().st_size > 10_000
    for stem in COMPARISON_FIGURES:
        assert (tiny_run / "comparisons/all" / f"{stem}.png").stat().st_size > 10_000
    summary = (tiny_run / "metrics.md").read_text()
    assert all(f"| {experiment} |" in summary for experiment in tiny_experiments())
    paired = json.loads((tiny_run / "comparisons/all/paired.json").read_text())
    reference, *others = "bcnn", "mc_dropout", "ensemble_noaug"  # the tiny config's comparison group `all`
    assert paired["reference"] == reference and set(paired["experiments"]) == set(others)
    assert all(f"| all | {name} − {reference} | test |" in summary for name in others)


def test_report_holds_every_figure_with_its_caption(tiny_run):
    report = tiny_run.parent / "report.html"
    snakemake(tiny_run, "--report", str(report))
    html = report.read_text()
    figures = [p for p in tiny_run.rglob("*.png")]
    assert len(figures) > 30
    assert all(p.name in html for p in figures)
    for caption in sorted((ROOT / "workflow/report/evaluation").glob("*.rst")):
        first_words = " ".join(caption.read_text().split()[:3])
        assert first_words.replace("**", "") in html.replace("<strong>", "").replace("</strong>", ""), caption.name


def test_notebook_runs_on_the_finished_run(tiny_run, monkeypatch):
    notebook = nbformat.read(ROOT / "notebooks/explore_results.ipynb", as_version=4)
    monkeypatch.setenv("BAYESRB_RESULTS", str(tiny_run))  # the kernel inherits the environment
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"{len(tiny_experiments())} experiments in {tiny_run}" in printed
    assert "largest class-probability spread" in printed  # the context classifier's section ran on its outputs
    assert any("image/png" in o.get("data", {}) for o in outputs), "the reliability figure is not shown"

"""Tests for bayesrb.evaluation.table and bayesrb.evaluation.steps on a small data set built by build_dataset."""

import json

import numpy as np
import pandas as pd
import pytest
from test_dataset import FRACTIONS, make_survey

from bayesrb.dataset import build_dataset, open_dataset
from bayesrb.errors import BadInputError
from bayesrb.evaluation.steps import (
    COMPARISON_FIGURES,
    EXPERIMENT_FIGURES,
    UNCERTAIN_FIGURE,
    EvaluationSettings,
    write_comparison_figures,
    write_evaluation_table,
    write_experiment_figures,
    write_metrics,
    write_metrics_summary,
)
from bayesrb.evaluation.table import evaluation_table, held_out
from bayesrb.model.score import SCORE_COLUMNS


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
    assert f"| x | {len(held)} | {100 * (1 - 3 / len(held)):.2f} |" in summary


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

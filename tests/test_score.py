"""Tests for bayesrb.model.score: posterior summaries, Parquet scores of data sets and shards, bad models/stores."""

import json
import shutil
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pyarrow.parquet as pq
import pytest
import zarr
from test_train import CHANNELS, SIZE, SPLITS, TINY_CONFIG, blob_stamps, shared_blob_store, shared_training, write_store

from bayesrb import __version__
from bayesrb.cli import main
from bayesrb.errors import BadInputError
from bayesrb.model.score import SCORE_COLUMNS, load_model, score_store, summarise

LN2 = np.log(2.0)


@pytest.fixture(scope="module")
def blob_store(tmp_path_factory) -> Path:
    return shared_blob_store(tmp_path_factory)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    return shared_training(tmp_path_factory)


def summary(samples) -> dict[str, float]:
    """Summaries of one candidate's samples, as floats."""
    return {name: float(value[0]) for name, value in summarise(jnp.asarray(samples, jnp.float32)[:, None]).items()}


def binary_entropy(p: float) -> float:
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def test_summaries_of_identical_samples():
    s = summary([0.9] * 50)
    assert s["score_mean"] == np.float32(0.9) and s["score_std"] == 0.0
    assert all(s[f"score_p{q:02d}"] == pytest.approx(0.9) for q in (5, 16, 50, 84, 95))
    assert s["p_real"] == 1.0
    assert s["entropy"] == pytest.approx(binary_entropy(0.9), rel=1e-5)  # 0.3251 nats
    assert s["bald"] == 0.0


def test_summaries_of_a_split_posterior():
    s = summary([0.0, 0.0, 1.0, 1.0])  # every sample certain, samples disagree: BALD is maximal
    assert s["score_mean"] == 0.5 and s["score_std"] == 0.5 and s["p_real"] == 0.5
    assert s["score_p50"] == 0.5 and s["score_p05"] == 0.0 and s["score_p95"] == 1.0
    assert s["entropy"] == pytest.approx(LN2, rel=1e-6)
    assert s["bald"] == pytest.approx(LN2, abs=1e-4)  # probabilities clipped at 1e-6: H = 1.5e-5 nats each


def test_summaries_percentiles_interpolate_like_numpy():
    samples = np.array([0.1, 0.7, 0.3, 0.5, 0.2, 0.6, 0.4])
    s = summary(samples)
    expected = np.percentile(samples, [5, 16, 50, 84, 95])
    assert [s[f"score_p{q:02d}"] for q in (5, 16, 50, 84, 95)] == pytest.approx(expected, abs=1e-6)
    assert s["score_std"] == pytest.approx(samples.std(), rel=1e-5)
    assert s["p_real"] == pytest.approx(2 / 7)  # 0.5 itself is not above 0.5
    mean_entropy = np.mean([binary_entropy(p) for p in samples])
    assert s["bald"] == pytest.approx(binary_entropy(samples.mean()) - mean_entropy, abs=1e-6)


@pytest.mark.parametrize("name", ["bayesian_full", "bayesian_head", "mc_dropout", "deterministic"])
def test_scores_separate_real_from_bogus(trained, blob_store, tmp_path, name):
    out = tmp_path / "scores.parquet"
    assert score_store(trained[name].model_dir, blob_store, out, n_samples=20) == 512
    table = pq.read_table(out)
    assert tuple(table.column_names) == SCORE_COLUMNS
    scores = {name: table[name].to_numpy() for name in SCORE_COLUMNS[1:]}
    labels = np.asarray(zarr.open_group(blob_store, mode="r")["meta/label"][...])
    val = slice(*SPLITS["val"])
    accuracy = np.mean((scores["score_mean"][val] > 0.5) == (labels[val] == 1))
    assert accuracy >= 0.95
    percentiles = np.stack([scores[f"score_p{q:02d}"] for q in (5, 16, 50, 84, 95)])
    assert np.all(np.diff(percentiles, axis=0) >= 0)
    assert np.all((scores["bald"] >= 0) & (scores["bald"] <= scores["entropy"] + 1e-6) & (scores["entropy"] <= LN2))
    if name == "deterministic":
        assert np.all(scores["score_std"] < 1e-6) and np.all(scores["bald"] < 1e-6)
    else:
        assert np.median(scores["score_std"]) > 0


def test_same_seed_gives_identical_scores(trained, blob_store, tmp_path):
    model = trained["bayesian_full"].model_dir
    paths = [tmp_path / f"{name}.parquet" for name in ("a", "b", "c")]
    for path, seed in zip(paths, (7, 7, 8), strict=True):
        score_store(model, blob_store, path, n_samples=10, batch_size=48, seed=seed)
    a, b, c = (pq.read_table(path) for path in paths)
    assert a.equals(b)
    assert not np.array_equal(a["score_mean"].to_numpy(), c["score_mean"].to_numpy())
    metadata = {key.decode(): value.decode() for key, value in a.schema.metadata.items()}
    assert metadata == {"model_kind": "bayesian", "scope": "full", "ensemble_size": "1", "n_samples": "10",
                        "batch_size": "48",
                        "seed": "7", "bayesrb_version": __version__}


def test_padding_does_not_change_scores(trained, blob_store, tmp_path):
    """The deterministic model's scores do not depend on the batch size (512 = 10 x 48 + 32 padded rows)."""
    model = trained["deterministic"].model_dir
    score_store(model, blob_store, tmp_path / "small.parquet", n_samples=20, batch_size=48)
    score_store(model, blob_store, tmp_path / "whole.parquet", n_samples=20, batch_size=512)
    small, whole = (pq.read_table(tmp_path / f"{n}.parquet")["score_mean"].to_numpy() for n in ("small", "whole"))
    assert np.allclose(small, whole, atol=1e-6)


def test_scoring_a_per_visit_shard(trained, tmp_path):
    rng = np.random.default_rng(3)
    labels = (np.arange(70) % 2).astype(np.int8)
    shard = write_store(tmp_path / "visit0042.zarr", blob_stamps(labels, rng), np.full(70, -1, np.int8), chunk=16)
    out = tmp_path / "out" / "visit0042.parquet"
    assert score_store(trained["bayesian_head"].model_dir, shard, out, n_samples=5) == 70
    table = pq.read_table(out)
    assert table["candidate_id"].to_pylist() == [f"visit0042-{i:05d}" for i in range(70)]
    real = table["score_mean"].to_numpy()[labels == 1]
    bogus = table["score_mean"].to_numpy()[labels == 0]
    assert np.mean(real > 0.5) > 0.9 and np.mean(bogus < 0.5) > 0.9


def test_model_reads_its_channels_by_name_from_a_store_with_more(trained, tmp_path):
    labels = (np.arange(40) % 2).astype(np.int8)
    stamps = blob_stamps(labels, np.random.default_rng(4))
    extra = np.random.default_rng(5).normal(size=stamps.shape[:3]).astype(np.float32)
    same = write_store(tmp_path / "same.zarr", stamps, labels)
    more = write_store(tmp_path / "more.zarr", np.stack([extra, stamps[..., 1], stamps[..., 0]], axis=-1), labels,
                       channels=("template", *CHANNELS[::-1]))
    model = trained["deterministic"].model_dir
    score_store(model, same, tmp_path / "same.parquet", n_samples=20)
    score_store(model, more, tmp_path / "more.parquet", n_samples=20)
    scores = [pq.read_table(tmp_path / f"{name}.parquet").drop_columns("candidate_id") for name in ("same", "more")]
    assert scores[0].equals(scores[1])  # ids differ: they are named after the store


def test_store_with_other_channels_or_size_is_rejected(trained, tmp_path):
    labels = np.zeros(4, np.int8)
    rng = np.random.default_rng(0)
    other = write_store(tmp_path / "other.zarr", blob_stamps(labels, rng), labels, channels=("science", "template"))
    with pytest.raises(BadInputError, match=r"other.zarr: the model expects channels \['science', 'difference'\] "
                                            r"but the store has channels \['science', 'template'\]"):
        score_store(trained["deterministic"].model_dir, other, tmp_path / "x.parquet")
    big = write_store(tmp_path / "big.zarr", blob_stamps(labels, rng, size=21), labels)
    with pytest.raises(BadInputError, match="expects 15x15 stamps but the store has 21x21"):
        score_store(trained["deterministic"].model_dir, big, tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


def test_model_whose_description_disagrees_with_its_parameters(trained, tmp_path):
    model_dir = shutil.copytree(trained["bayesian_full"].model_dir, tmp_path / "model")
    meta = json.loads((model_dir / "model.json").read_text())
    meta["input_spec"]["channels"].append("template")
    (model_dir / "model.json").write_text(json.dumps(meta))
    with pytest.raises(BadInputError, match=r"checkpoint array \d+ has shape \(3, 3, 2, 4\) float32 but the model "
                                            r"needs \(3, 3, 3, 4\) float32"):
        load_model(model_dir)


def test_missing_model_is_reported(trained, blob_store, tmp_path):
    with pytest.raises(BadInputError, match="not a trained model: model.json or params/ is missing"):
        score_store(tmp_path / "nothing", blob_store, tmp_path / "x.parquet")
    model_dir = shutil.copytree(trained["deterministic"].model_dir, tmp_path / "model")
    shutil.rmtree(model_dir / "params")
    with pytest.raises(BadInputError, match="not a trained model"):
        load_model(model_dir)


def test_load_model_accepts_the_training_directory(trained):
    model = load_model(trained["mc_dropout"].model_dir.parent)
    assert model.settings.kind == "mc_dropout" and model.channels == CHANNELS and model.stamp_size == SIZE
    assert model.settings.epochs == TINY_CONFIG["epochs"]


def test_nan_stamp_is_reported_with_its_row(trained, tmp_path):
    labels = np.zeros(40, np.int8)
    stamps = blob_stamps(labels, np.random.default_rng(0))
    stamps[33, 2, 2, 1] = np.nan
    store = write_store(tmp_path / "nan.zarr", stamps, labels, chunk=16)
    with pytest.raises(BadInputError, match="stamp row 33 holds NaN"):
        score_store(trained["deterministic"].model_dir, store, tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


@pytest.mark.parametrize("out", [".", "..", "user", "user/"])
def test_cli_refuses_an_output_that_would_delete_a_directory(trained, blob_store, tmp_path, monkeypatch, capsys, out):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "user").mkdir()
    (tmp_path / "sub" / "user" / "thesis.tex").write_text("years of work")
    monkeypatch.chdir(tmp_path / "sub")
    status = main(["score", "--model", str(trained["deterministic"].model_dir), "--stamps", str(blob_store),
                   "--out", out])
    assert status == 1
    assert "bayesrb score:" in capsys.readouterr().err
    assert (tmp_path / "sub" / "user" / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["user"]


@pytest.mark.parametrize("flag", ["--samples", "--batch-size"])
@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_cli_rejects_counts_that_are_not_positive(trained, blob_store, tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["score", "--model", str(trained["deterministic"].model_dir), "--stamps", str(blob_store),
              "--out", str(tmp_path / "s.parquet"), flag, value])
    assert exit_info.value.code == 2
    assert f"argument {flag}" in capsys.readouterr().err
    assert not (tmp_path / "s.parquet").exists()

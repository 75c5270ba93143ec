"""Tests for bayesrb.model.train: learning a separable toy problem, early stopping, checkpoints and resume."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest
import zarr

from bayesrb.errors import BadInputError
from bayesrb.model import train as train_module
from bayesrb.model.checkpoint import TrainingCheckpoints
from bayesrb.model.score import load_model
from bayesrb.model.train import HISTORY_FILE, MODEL_DIR, train

SIZE, CHANNELS = 15, ("science", "difference")
PEAK = 1.5  # blob peak in noise sigmas: matched-filter S/N about 5.6 over the two channels
SPLITS = {"train": [0, 384], "val": [384, 512]}
#: A small network for 15x15 stamps: 15 -conv-> 13 -pool-> 6 -conv-> 4 -pool-> 2, i.e. 2x2x8 features.
TINY_NETWORK = {"filters": [4, 8], "convs_per_block": 1, "kernel_size": 3, "dense_units": 16, "dropout_rate": 0.2,
                "conv_impl": "matmul"}
TINY_CONFIG = {"network": TINY_NETWORK, "batch_size": 32, "epochs": 4, "learning_rate": 0.01, "lr_schedule": "constant",
               "warmup_steps": 0, "patience": 10, "seed": 5}


def blob_stamps(labels: np.ndarray, rng: np.random.Generator, *, size: int = SIZE,
                channels: int = len(CHANNELS)) -> np.ndarray:
    """Unit noise stamps; the real ones (label 1) get a centred Gaussian blob (sigma 1.5 px, peak PEAK) in every
    channel, the bogus ones (label 0) nothing."""
    row, col = np.mgrid[:size, :size] - size // 2
    blob = PEAK * np.exp(-(row**2 + col**2) / (2 * 1.5**2))
    stamps = rng.normal(size=(len(labels), size, size, channels)) + 100.0
    stamps += labels[:, None, None, None] * blob[None, :, :, None]
    return stamps.astype(np.float32)


def write_store(path: Path, stamps: np.ndarray, labels: np.ndarray, *, channels=CHANNELS, split_ranges=None,
                chunk: int = 32) -> Path:
    """A stamp store as bayesrb.model.data reads it: a data set if ``split_ranges`` is given, else a shard."""
    group = zarr.open_group(path, mode="w", zarr_format=3)
    group.attrs.update(channels=list(channels), stamp_size=stamps.shape[1])
    if split_ranges is not None:
        group.attrs["split_ranges"] = split_ranges
    array = group.create_array("stamps", shape=stamps.shape, dtype=np.float32, chunks=(chunk, *stamps.shape[1:]))
    array[...] = stamps
    meta = group.create_group("meta")
    ids = np.array([f"{path.stem}-{i:05d}" for i in range(len(stamps))])
    for name, values in {"candidate_id": ids, "label": labels.astype(np.int8)}.items():
        column = meta.create_array(name, shape=values.shape, dtype=str if values.dtype.kind == "U" else values.dtype,
                                   chunks=values.shape)
        column[...] = values
    return path


#: One short training run per kind (and Bayesian scope), made once per session and shared with test_score.
KINDS = {"bayesian_full": {"kind": "bayesian", "scope": "full"}, "bayesian_head": {"kind": "bayesian", "scope": "head"},
         "mc_dropout": {"kind": "mc_dropout"}, "deterministic": {"kind": "deterministic"}}
_SHARED: dict = {}


def shared_blob_store(tmp_path_factory) -> Path:
    """512 blob stamps, about 30 % real, split 384 train / 128 val."""
    if "store" not in _SHARED:
        rng = np.random.default_rng(11)
        labels = (rng.uniform(size=512) < 0.3).astype(np.int8)
        _SHARED["store"] = write_store(tmp_path_factory.mktemp("blobs") / "dataset.zarr", blob_stamps(labels, rng),
                                       labels, split_ranges=SPLITS)
    return _SHARED["store"]


def shared_training(tmp_path_factory) -> dict:
    """The TrainResult of every kind on the shared blob store."""
    if "trained" not in _SHARED:
        store = shared_blob_store(tmp_path_factory)
        _SHARED["trained"] = {name: train(store, tmp_path_factory.mktemp(name), TINY_CONFIG | extra)
                              for name, extra in KINDS.items()}
    return _SHARED["trained"]


@pytest.fixture(scope="session")
def blob_store(tmp_path_factory) -> Path:
    return shared_blob_store(tmp_path_factory)


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict:
    return shared_training(tmp_path_factory)


@pytest.mark.parametrize("name", list(KINDS))
def test_training_learns_the_blobs(trained, name):
    result = trained[name]
    history = result.history
    assert len(history) == TINY_CONFIG["epochs"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert result.best_val_loss < 0.5 * history[0]["val_loss"]
    assert max(entry["val_accuracy"] for entry in history) >= 0.95  # Bayes-optimal accuracy is about 0.997
    assert result.best_val_loss == min(entry["val_loss"] for entry in history)
    saved = json.loads((result.model_dir.parent / HISTORY_FILE).read_text())
    assert saved == history
    assert all(entry["stamps_per_second"] > 0 for entry in history)
    assert ("train_elbo" in history[0]) == name.startswith("bayesian")


def test_early_stopping_keeps_the_best_epoch(blob_store, tmp_path, monkeypatch):
    losses = iter([0.5, 0.4, 0.45, 0.41, 0.42, 0.3])  # best at epoch 2, then two epochs without improvement

    def fake_evaluate(method, params, stream):
        return {"val_loss": next(losses), "val_accuracy": 0.9}

    monkeypatch.setattr(train_module, "evaluate", fake_evaluate)
    config = TINY_CONFIG | {"kind": "deterministic", "epochs": 6, "patience": 2}
    result = train(blob_store, tmp_path, config)
    assert [entry["val_loss"] for entry in result.history] == [0.5, 0.4, 0.45, 0.41]
    assert result.stopped_early and result.best_epoch == 2 and result.best_val_loss == 0.4


def leaves_close(a, b) -> bool:
    return all(np.allclose(x, y, rtol=1e-5, atol=1e-6) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b),
                                                                         strict=True))


def test_resuming_equals_training_straight_through(blob_store, trained, tmp_path):
    """Two epochs, then a resumed run to four, against the shared straight four-epoch run."""
    straight = trained["bayesian_full"]
    config = TINY_CONFIG | KINDS["bayesian_full"]
    train(blob_store, tmp_path, config | {"epochs": 2})
    resumed = train(blob_store, tmp_path, config)
    assert len(resumed.history) == len(straight.history) == 4
    for mine, theirs in zip(resumed.history, straight.history, strict=True):
        assert mine["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-5)
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-5)
    assert leaves_close(load_model(resumed.model_dir).params, load_model(straight.model_dir).params)
    with TrainingCheckpoints(tmp_path / "checkpoints") as checkpoints:
        assert checkpoints.latest_epoch() == 4
        assert checkpoints.read_meta()["history"] == resumed.history


def test_resume_refuses_a_checkpoint_of_another_config(blob_store, tmp_path):
    train(blob_store, tmp_path, TINY_CONFIG | {"kind": "deterministic", "epochs": 1})
    with pytest.raises(BadInputError, match=r"model\.learning_rate 0\.01 \(checkpoint\) != 0\.02 \(config\)"):
        train(blob_store, tmp_path, TINY_CONFIG | {"kind": "deterministic", "epochs": 2, "learning_rate": 0.02})
    with pytest.raises(BadInputError, match="cosine learning-rate schedule"):
        train(blob_store, tmp_path, TINY_CONFIG | {"kind": "deterministic", "epochs": 2, "lr_schedule": "cosine"})


def test_the_final_model_directory_is_complete(trained):
    model_dir = trained["bayesian_head"].model_dir
    assert model_dir.name == MODEL_DIR
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["kind"] == "bayesian" and meta["settings"]["scope"] == "head"
    assert meta["input_spec"] == {"channels": list(CHANNELS), "stamp_size": SIZE}
    assert meta["n_train"] == SPLITS["train"][1] and meta["best_epoch"] == trained["bayesian_head"].best_epoch
    assert not list(model_dir.parent.glob(".model.tmp-*"))


def test_unknown_config_key_is_rejected(blob_store, tmp_path):
    with pytest.raises(ValueError, match=r"config model: unknown key\(s\) \['learning_rat'\]"):
        train(blob_store, tmp_path, TINY_CONFIG | {"learning_rat": 0.1})


def test_an_ensemble_trains_its_members_from_their_own_seeds_and_scores_them_pooled(blob_store, tmp_path):
    config = TINY_CONFIG | {"kind": "deterministic", "epochs": 2, "ensemble_size": 3}
    result = train(blob_store, tmp_path, config)

    assert len(result.members) == 3 and result.model_dir == tmp_path / MODEL_DIR
    histories = json.loads((tmp_path / HISTORY_FILE).read_text())["members"]
    assert histories == [member.history for member in result.members]
    assert len({history[0]["train_loss"] for history in histories}) == 3  # different seeds, different runs
    seeds = [json.loads((member.model_dir / "model.json").read_text())["settings"]["seed"] for member in result.members]
    assert len(set(seeds)) == 3 and TINY_CONFIG["seed"] not in seeds
    ensemble = load_model(tmp_path)
    assert ensemble.settings.ensemble_size == 3 and len(ensemble.params) == 3
    members = [load_model(member.model_dir) for member in result.members]
    x = blob_stamps(np.array([1, 0, 1, 0], np.int8), np.random.default_rng(3))
    pooled = np.asarray(ensemble.sample_probs(ensemble.params, x, jax.random.PRNGKey(0), 10))
    assert pooled.shape == (3, 4)  # one sample per deterministic member, whatever n_samples asks
    alone = [np.asarray(m.sample_probs(m.params, x, jax.random.PRNGKey(1), 1))[0] for m in members]
    np.testing.assert_allclose(pooled, alone, rtol=1e-5)
    assert np.ptp(pooled, axis=0).max() > 0  # the members disagree somewhere

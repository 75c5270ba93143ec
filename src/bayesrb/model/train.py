"""Training of any method (:mod:`bayesrb.model.methods`) on a data-set store.

Mini-batches of the ``train`` split are streamed from the store (:class:`bayesrb.model.data.BatchStream`; a data
set larger than the stream's cache is never held in memory), normalised in the reading threads (once per stamp
when the split fits the cache; :func:`bayesrb.model.preprocess.normalise_on_host`) and padded to a fixed size so
that the jitted step compiles once. After each epoch the
``val`` split gives the validation loss (class-weighted Bernoulli NLL of the posterior-mean prediction) and
accuracy; training stops early when the validation loss has not improved for ``patience`` epochs, and the
parameters of the best epoch are kept. Every epoch ends with a checkpoint, so a killed run resumes where it stopped
and gives the same result as an uninterrupted one.

Layout of the training directory::

    checkpoints/     orbax checkpoint of the latest epoch: training state, best parameters, PRNG key, history
    history.json     per epoch: train loss (and ELBO), validation loss and accuracy, seconds, stamps/s
    model/           the final model (best parameters, settings, input spec), written atomically; the input of
                     :func:`bayesrb.model.score.load_model`
    members/NN/      an ensemble's members (``model.ensemble_size`` > 1), each a training directory as above; the
                     ensemble's own model/ holds all their parameters

Random streams: one root key from ``seed``, split by name (:func:`bayesrb.model.keys.named_key`) into ``init``
and ``train``; step ``i`` (counted over all epochs) uses ``fold_in(train key, i)``. The batch order of epoch ``e``
depends only on ``(seed, e)``.
"""

import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from bayesrb import __version__
from bayesrb.atomic import write_json
from bayesrb.errors import BadInputError
from bayesrb.model.checkpoint import TrainingCheckpoints, save_model
from bayesrb.model.data import Batch, BatchStream, StampSource
from bayesrb.model.keys import named_key
from bayesrb.model.methods import (
    Method,
    ModelSettings,
    TrainBatch,
    build_method,
    member_settings,
    pad_rows,
)
from bayesrb.model.preprocess import normalise_on_host
from bayesrb.model.selection import TrainingData, selected_rows
from bayesrb.settings import settings_dict, settings_from

__all__ = ["TrainResult", "EnsembleResult", "train", "evaluate", "to_train_batch", "input_spec", "MODEL_DIR",
           "MEMBERS_DIR", "HISTORY_FILE"]

LOG = logging.getLogger(__name__)
MODEL_DIR = "model"
HISTORY_FILE = "history.json"
MEMBERS_DIR = "members"
CHECKPOINT_DIR = "checkpoints"
#: Config keys that may change when a run resumes (the stopping rule only).
RESUMABLE_KEYS = ("epochs", "patience")


@dataclass
class TrainResult:
    """The outcome of :func:`train`.

    Attributes
    ----------
    model_dir : pathlib.Path
        The final model directory.
    history : list of dict
        One entry per epoch (see :func:`train`).
    best_epoch : int
        The (1-based) epoch whose parameters were kept.
    best_val_loss : float
        Its validation loss.
    stopped_early : bool
        Whether training stopped before ``epochs`` for lack of improvement.
    """

    model_dir: Path
    history: list[dict[str, float]]
    best_epoch: int
    best_val_loss: float
    stopped_early: bool


@dataclass
class EnsembleResult:
    """The outcome of :func:`train` for an ensemble.

    Attributes
    ----------
    model_dir : pathlib.Path
        The ensemble's model directory (every member's parameters).
    members : list of TrainResult
        Each member's training, in member order.
    """

    model_dir: Path
    members: list[TrainResult]


@dataclass
class _Progress:
    """What a checkpoint holds: the training state, the best parameters so far and the history."""

    state: Any
    best_params: Any
    history: list[dict[str, float]]

    @property
    def best_index(self) -> int:
        return int(np.argmin([entry["val_loss"] for entry in self.history]))


def train(store_path: str | os.PathLike, out_dir: str | os.PathLike, config: Mapping[str, Any],
          training: Mapping[str, Any] | None = None,
          checkpoint_dir: str | os.PathLike | None = None) -> TrainResult | EnsembleResult:
    """Train the model of ``config`` on a data-set store, resuming from a checkpoint in ``out_dir`` if any.

    With ``ensemble_size`` above 1 the members are trained one after the other, each a complete training run with
    its own seed (:func:`bayesrb.model.methods.member_settings`) on the same rows, in ``out_dir/members/NN/``; the
    ensemble's ``model/`` then holds every member's kept parameters, and ``history.json`` is
    ``{"members": [history, ...]}``.

    Parameters
    ----------
    store_path : str or os.PathLike
        Data-set store with ``train`` and ``val`` splits (:mod:`bayesrb.dataset.store`).
    out_dir : str or os.PathLike
        The training directory (see the module docstring).
    config : mapping
        The ``model:`` config section (:class:`bayesrb.model.methods.ModelSettings`).
    training : mapping, optional
        The ``training:`` config section (:class:`bayesrb.model.selection.TrainingData`): which rows and channels
        are trained on; all by default.
    checkpoint_dir : str or os.PathLike, optional
        Where the per-epoch checkpoints go (default ``out_dir/checkpoints``; an ensemble's members use
        ``memberNN/`` inside it). The workflow keeps them beside its output directory, which Snakemake deletes
        before rerunning a killed job, so that the rerun resumes.

    Returns
    -------
    TrainResult or EnsembleResult
        For one network, the history entries hold ``epoch`` (1-based), ``train_loss`` (mean per-stamp training
        loss of the epoch; for ``bayesian`` the negative ELBO per training stamp), ``train_elbo`` (``bayesian``
        only), ``val_loss``, ``val_accuracy``, ``seconds`` (training and validation) and ``stamps_per_second``
        (training). An ensemble gives each member's.

    Raises
    ------
    bayesrb.errors.BadInputError
        If the store is unusable (missing, an empty or one-class split, NaN stamps, non-square stamps), or
        ``out_dir`` holds a checkpoint of another config or store (saying what differs).
    ValueError
        If ``config`` is invalid.
    """
    settings = settings_from(ModelSettings, config, "model")
    data = settings_from(TrainingData, training, "training")
    out_dir = Path(out_dir)
    checkpoint_dir = Path(checkpoint_dir or out_dir / CHECKPOINT_DIR)
    if settings.ensemble_size == 1:
        return _train_network(store_path, out_dir, settings, data, checkpoint_dir, rows_seed=settings.seed).result
    members = [_train_network(store_path, out_dir / MEMBERS_DIR / f"{member:02d}", member_settings(settings, member),
                              data, checkpoint_dir / f"member{member:02d}", rows_seed=settings.seed)
               for member in range(settings.ensemble_size)]
    return _save_ensemble(out_dir, settings, members)


@dataclass
class _Trained:
    """One network's :class:`TrainResult` with what an ensemble gathers from it."""

    result: TrainResult
    params: Any
    meta: dict[str, Any]


def _train_network(store_path: str | os.PathLike, out_dir: Path, settings: ModelSettings, data: TrainingData,
                   checkpoint_dir: Path, rows_seed: int) -> _Trained:
    """Train one network into ``out_dir`` (``rows_seed`` picks the training rows, shared by ensemble members)."""
    source = StampSource(store_path)
    channels = data.model_channels(source)
    normalised = partial(normalise_on_host, mode=settings.normalisation)
    streams = {split: BatchStream(store_path, split, settings.batch_size, seed=settings.seed,
                                  shuffle=split == "train", class_weighting=settings.class_weighting,
                                  channels=channels, keep=selected_rows(source, split, data, rows_seed),
                                  transform=normalised)
               for split in ("train", "val")}
    spec = input_spec(source.path, channels, source.stamp_shape)
    n_train = streams["train"].n_rows
    method = build_method(settings, n_train=n_train, total_steps=settings.epochs * len(streams["train"]))
    root = jax.random.PRNGKey(settings.seed)
    example = jnp.zeros((1, spec["stamp_size"], spec["stamp_size"], len(spec["channels"])), jnp.float32)
    state = method.init(named_key(root, "init"), example)
    meta = {"settings": settings_dict(settings), "training": settings_dict(data), "input_spec": spec,
            "n_train": n_train}
    with TrainingCheckpoints(checkpoint_dir) as checkpoints:
        progress = _resume(checkpoints, meta, _Progress(state, method.params(state), []), root)
        while not _finished(progress, settings):
            progress = _run_epoch(method, streams, progress, settings, root)
            checkpoints.save(len(progress.history), _checkpoint_arrays(progress, root),
                             meta | {"history": progress.history})
            write_json(progress.history, out_dir / HISTORY_FILE)
    best = progress.history[progress.best_index]
    model_dir = out_dir / MODEL_DIR
    save_model(model_dir, progress.best_params, meta | {"kind": settings.kind, "best_epoch": best["epoch"],
                                                          "best_val_loss": best["val_loss"],
                                                          "bayesrb_version": __version__})
    stopped_early = len(progress.history) < settings.epochs
    LOG.info("kept epoch %d (val loss %.4f, accuracy %.4f)%s; model in %s", best["epoch"], best["val_loss"],
             best["val_accuracy"], " after early stopping" if stopped_early else "", model_dir)
    result = TrainResult(model_dir=model_dir, history=progress.history, best_epoch=best["epoch"],
                         best_val_loss=best["val_loss"], stopped_early=stopped_early)
    return _Trained(result, progress.best_params, meta)


def _save_ensemble(out_dir: Path, settings: ModelSettings, members: list[_Trained]) -> EnsembleResult:
    """Write the ensemble's model (every member's parameters) and its members' histories."""
    results = [member.result for member in members]
    meta = members[0].meta | {"settings": settings_dict(settings), "kind": settings.kind,
                              "members": [str(result.model_dir.relative_to(out_dir)) for result in results],
                              "best_epoch": [result.best_epoch for result in results],
                              "best_val_loss": [result.best_val_loss for result in results],
                              "bayesrb_version": __version__}
    model_dir = out_dir / MODEL_DIR
    save_model(model_dir, tuple(member.params for member in members), meta)
    write_json({"members": [result.history for result in results]}, out_dir / HISTORY_FILE)
    LOG.info("ensemble of %d %s networks; model in %s", len(members), settings.kind, model_dir)
    return EnsembleResult(model_dir=model_dir, members=results)


def input_spec(source: Path, channels: tuple[str, ...], stamp_shape: tuple[int, int]) -> dict[str, Any]:
    """The input a model expects: ``{"channels": [...], "stamp_size": S}``.

    Raises
    ------
    bayesrb.errors.BadInputError
        If the stamps of ``source`` are not square (the augmentation needs square stamps).
    """
    if stamp_shape[0] != stamp_shape[1]:
        raise BadInputError(source, f"stamps must be square, found {stamp_shape[0]}x{stamp_shape[1]}")
    return {"channels": list(channels), "stamp_size": int(stamp_shape[0])}


def to_train_batch(batch: Batch, size: int) -> TrainBatch:
    """Pad a streamed batch with zero-weight rows to ``size`` rows."""
    n = len(batch.y)
    return TrainBatch(x=pad_rows(batch.x, size), y=pad_rows(batch.y.astype(np.float32), size),
                      weight=pad_rows(batch.weight.astype(np.float32), size),
                      mask=(np.arange(size) < n).astype(np.float32))


def evaluate(method: Method, params: Any, stream: BatchStream) -> dict[str, float]:
    """Validation loss (class-weighted mean Bernoulli NLL) and accuracy of the posterior-mean prediction.

    Parameters
    ----------
    method : Method
    params : pytree
        ``method.params(state)``.
    stream : BatchStream
        The batches to evaluate (epoch 0 of the stream).

    Returns
    -------
    dict
        ``val_loss`` and ``val_accuracy``.
    """
    totals = None
    for batch in stream:
        sums = method.eval_sums(params, to_train_batch(batch, stream.batch_size))
        totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    return {"val_loss": float(totals["nll"] / totals["weight"]),
            "val_accuracy": float(totals["correct"] / totals["count"])}


def _checkpoint_arrays(progress: _Progress, root: jax.Array) -> dict[str, Any]:
    return {"state": progress.state, "best_params": progress.best_params, "key": root}


def _resume(checkpoints: TrainingCheckpoints, meta: dict[str, Any], fresh: _Progress, root: jax.Array) -> _Progress:
    """Return the progress of the latest checkpoint if there is one (checking it fits), else ``fresh``."""
    done = checkpoints.latest_epoch()
    if done is None:
        return fresh
    saved = checkpoints.read_meta()
    _check_resumable(checkpoints.directory, saved, meta)
    arrays = checkpoints.restore(_checkpoint_arrays(fresh, root))
    LOG.info("resuming from %s after epoch %d", checkpoints.directory, done)
    return _Progress(arrays["state"], arrays["best_params"], saved["history"])


def _check_resumable(source: Path, saved: dict[str, Any], meta: dict[str, Any]) -> None:
    """Raise BadInputError naming ``source`` if the checkpoint's config, input or training set differ."""
    problems = []
    old, new = saved["settings"], meta["settings"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key) and key not in RESUMABLE_KEYS:
            problems.append(f"model.{key} {old.get(key)!r} (checkpoint) != {new.get(key)!r} (config)")
    if old["epochs"] != new["epochs"] and new["lr_schedule"] == "cosine":
        problems.append(f"model.epochs {old['epochs']} (checkpoint) != {new['epochs']} (config), which changes the "
                        f"length of the cosine learning-rate schedule")
    for key in ("training", "input_spec", "n_train"):
        if saved.get(key) != meta[key]:
            problems.append(f"{key} {saved[key]!r} (checkpoint) != {meta[key]!r} (data set)")
    if problems:
        raise BadInputError(source, "checkpoint of a different training run: " + "; ".join(problems)
                            + ". Remove it or train into another directory.")


def _finished(progress: _Progress, settings: ModelSettings) -> bool:
    done = len(progress.history)
    return done >= settings.epochs or (done > 0 and done - 1 - progress.best_index >= settings.patience)


def _run_epoch(method: Method, streams: dict[str, BatchStream], progress: _Progress, settings: ModelSettings,
               root: jax.Array) -> _Progress:
    """Train one epoch, validate, and return the updated progress."""
    epoch = len(progress.history)
    stream = streams["train"]
    train_key = named_key(root, "train")
    start = time.perf_counter()
    state, metrics = progress.state, []
    bar = tqdm(total=len(stream), desc=f"epoch {epoch + 1}/{settings.epochs}", file=sys.stderr, leave=False,
               disable=not sys.stderr.isatty())
    with bar:
        for i, batch in enumerate(stream.epoch(epoch)):
            step_key = jax.random.fold_in(train_key, epoch * len(stream) + i)
            state, step_metrics = method.train_step(state, to_train_batch(batch, stream.batch_size), step_key)
            metrics.append(step_metrics)
            bar.update()
            if not bar.disable:
                bar.set_postfix(loss=f"{float(step_metrics['loss']):.4f}", refresh=False)
    jax.block_until_ready(state)
    train_seconds = time.perf_counter() - start
    entry = {"epoch": epoch + 1}
    entry |= {f"train_{name}": float(np.mean([m[name] for m in metrics])) for name in metrics[0]}
    params = method.params(state)
    entry |= evaluate(method, params, streams["val"])
    entry |= {"seconds": time.perf_counter() - start, "stamps_per_second": stream.n_rows / train_seconds}
    LOG.info("epoch %d/%d: train loss %.4f, val loss %.4f, val accuracy %.4f, %.0f stamps/s", entry["epoch"],
             settings.epochs, entry["train_loss"], entry["val_loss"], entry["val_accuracy"],
             entry["stamps_per_second"])
    history = [*progress.history, entry]
    improved = not progress.history or entry["val_loss"] < min(e["val_loss"] for e in progress.history)
    return _Progress(state, params if improved else progress.best_params, history)




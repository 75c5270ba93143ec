"""Scoring: posterior predictive summaries of every candidate of a stamp store, written to Parquet.

For each candidate, ``S`` posterior predictive probabilities of real ``p_s`` are drawn (one network draw per batch
and sample; :meth:`bayesrb.model.methods.Method.sample_probs`) and summarised (:func:`summarise`) by their mean,
standard deviation, 5/16/50/84/95 percentiles, ``p_real = P(p > 0.5)``, the predictive entropy ``H(p_mean)`` and
BALD, the mutual information ``H(p_mean) - mean_s H(p_s)`` between the label and the weights (entropies in nats).
An ensemble (``model.ensemble_size`` > 1) pools its members' draws: each member draws
:func:`bayesrb.model.methods.samples_per_member` samples, so the summaries describe the ensemble's spread.
Batches are padded to a fixed size, so that the jitted scorer compiles once; batch ``b`` draws with
``fold_in(key(seed), b)``, so the same model, store, seed and batch size give bit-identical scores.
"""

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bayesrb import __version__
from bayesrb.atomic import atomic_path, check_output_path
from bayesrb.errors import BadInputError
from bayesrb.model.checkpoint import MODEL_META, read_model_meta, restore_params
from bayesrb.model.data import check_compatible, iter_stamps
from bayesrb.model.keys import named_key
from bayesrb.model.methods import Method, ModelSettings, build_method, pad_rows, samples_per_member
from bayesrb.model.scoring import ScoringSettings
from bayesrb.model.train import MODEL_DIR
from bayesrb.settings import settings_from

__all__ = ["PERCENTILES", "SCORE_COLUMNS", "Model", "load_model", "summarise", "score_store"]

LOG = logging.getLogger(__name__)
PERCENTILES = (5, 16, 50, 84, 95)
SCORE_COLUMNS = ("candidate_id", "score_mean", "score_std", *(f"score_p{q:02d}" for q in PERCENTILES), "p_real",
                 "entropy", "bald")
PROB_CLIP = 1e-6  # probabilities are clipped to [PROB_CLIP, 1 - PROB_CLIP] in entropies


@dataclass
class Model:
    """A trained model ready to score.

    Attributes
    ----------
    method : Method
    params : pytree
        The parameters ``method`` scores with; a tuple of every member's for an ensemble.
    settings : ModelSettings
    channels : tuple of str
        The channels the model expects, in order.
    stamp_size : int
        The stamp side it expects, in pixels.
    """

    method: Method
    params: Any
    settings: ModelSettings
    channels: tuple[str, ...]
    stamp_size: int

    def sample_probs(self, params: Any, x: jax.Array, key: jax.Array, n_samples: int) -> jax.Array:
        """Posterior predictive probabilities ``(S, B)`` of real for raw stamps ``x`` ``(B, H, W, C)``.

        ``S`` is ``n_samples`` for one network; an ensemble's members each draw
        :func:`~bayesrb.model.methods.samples_per_member` samples (member ``m`` with ``fold_in(key, m)``), pooled.
        Traceable: call it inside :func:`jax.jit` with ``n_samples`` static.
        """
        if self.settings.ensemble_size == 1:
            return self.method.sample_probs(params, x, key, n_samples)
        per_member = samples_per_member(self.settings, n_samples)
        return jnp.concatenate([self.method.sample_probs(member, x, jax.random.fold_in(key, index), per_member)
                                for index, member in enumerate(params)])


def load_model(model_dir: str | os.PathLike) -> Model:
    """Load a model written by :func:`bayesrb.model.train.train`.

    Parameters
    ----------
    model_dir : str or os.PathLike
        The model directory, or the training directory that holds it as ``model/``.

    Returns
    -------
    Model

    Raises
    ------
    bayesrb.errors.BadInputError
        If there is no model, or its description and parameters disagree (naming what was expected and found).
    """
    model_dir = Path(model_dir)
    if not (model_dir / MODEL_META).is_file() and (model_dir / MODEL_DIR / MODEL_META).is_file():
        model_dir = model_dir / MODEL_DIR
    meta = read_model_meta(model_dir)
    try:
        settings = settings_from(ModelSettings, _without_scoring_keys(meta["settings"]), "model")
        channels, stamp_size = tuple(meta["input_spec"]["channels"]), int(meta["input_spec"]["stamp_size"])
        n_train = int(meta["n_train"])
    except (KeyError, TypeError, ValueError) as error:
        raise BadInputError(model_dir / MODEL_META, f"malformed model description ({error!r})") from error
    method = build_method(settings, n_train=n_train, total_steps=1)
    example = jnp.zeros((1, stamp_size, stamp_size, len(channels)), jnp.float32)
    like = method.params(method.init(jax.random.PRNGKey(0), example))
    if settings.ensemble_size > 1:
        like = (like,) * settings.ensemble_size
    params = restore_params(model_dir, like)
    return Model(method=method, params=params, settings=settings, channels=channels, stamp_size=stamp_size)


def _without_scoring_keys(settings: dict) -> dict:
    """A model's settings without the scoring keys that models written before scoring had its own settings hold."""
    return {key: value for key, value in settings.items() if key not in ("n_samples", "score_batch_size")}


def binary_entropy(p: jax.Array) -> jax.Array:
    """Entropy in nats of Bernoulli(p), with ``p`` clipped to ``[PROB_CLIP, 1 - PROB_CLIP]``."""
    p = jnp.clip(p, PROB_CLIP, 1 - PROB_CLIP)
    return -(p * jnp.log(p) + (1 - p) * jnp.log1p(-p))


def sample_mean(values: jax.Array) -> jax.Array:
    """Mean over axis 0, shifted by the first sample: exact for identical samples, less rounding otherwise."""
    return values[0] + jnp.mean(values - values[0], axis=0)


def summarise(probs: jax.Array) -> dict[str, jax.Array]:
    """Summaries of posterior predictive samples.

    Parameters
    ----------
    probs : jax.Array
        ``(S, B)`` probabilities of real: ``S`` samples of ``B`` candidates.

    Returns
    -------
    dict of str to jax.Array
        Each ``(B,)``: ``score_mean``, ``score_std`` (population std), ``score_p05`` ... ``score_p95`` (linear
        interpolation between the sorted samples, as :func:`numpy.percentile`), ``p_real`` (fraction of samples
        above 0.5), ``entropy`` ``H(mean)`` and ``bald`` ``H(mean) - mean_s H(p_s)``, clipped at 0 against
        rounding (natural logs, clipped probabilities).
    """
    mean = sample_mean(probs)
    entropy = binary_entropy(mean)
    percentiles = jnp.percentile(probs, jnp.array(PERCENTILES, jnp.float32), axis=0)
    return {
        "score_mean": mean,
        "score_std": jnp.sqrt(jnp.mean(jnp.square(probs - mean), axis=0)),
        **{f"score_p{q:02d}": value for q, value in zip(PERCENTILES, percentiles, strict=True)},
        "p_real": jnp.mean(probs > 0.5, axis=0),
        "entropy": entropy,
        "bald": jnp.maximum(entropy - sample_mean(binary_entropy(probs)), 0.0),
    }


def score_store(model_dir: str | os.PathLike, stamps_path: str | os.PathLike | Sequence[str | os.PathLike],
                out_path: str | os.PathLike, *,
                n_samples: int = ScoringSettings.n_samples,
                batch_size: int = ScoringSettings.batch_size, seed: int = 0) -> int:
    """Score every candidate of a stamp store and write the summaries to Parquet, atomically.

    Parameters
    ----------
    model_dir : str or os.PathLike
        The model (:func:`load_model`).
    stamps_path : str or os.PathLike, or a sequence of them
        A data-set store or a per-visit stamp shard, or several stores scored one after the other with one compiled
        scorer (the model loaded once; batches run across the stores, so small shards waste no padding).
    out_path : str or os.PathLike
        The Parquet file: one row per candidate in store order (stores in the given order), columns
        :data:`SCORE_COLUMNS` (``candidate_id`` string, the others float32); schema metadata ``model_kind``,
        ``scope``, ``ensemble_size``, ``n_samples``, ``batch_size``, ``seed`` and ``bayesrb_version``.
    n_samples : int
        Posterior (or dropout) samples per candidate; a setting of scoring, not of the model, so it can change
        without retraining.
    batch_size : int
        Candidates per scoring step.
    seed : int
        Seed of the posterior draws.

    Returns
    -------
    int
        Number of candidates scored.

    Raises
    ------
    bayesrb.errors.BadInputError
        If ``out_path`` is refused (:func:`bayesrb.atomic.check_output_path`: a directory, the working directory or
        a parent of it), the model is missing or broken, the store's channels or stamp size differ from the
        model's (checked before any scoring), or a stamp holds NaN or inf.
    ValueError
        If ``n_samples`` or ``batch_size`` is not positive.
    """
    check_output_path(out_path)
    model = load_model(model_dir)
    stores = [stamps_path] if isinstance(stamps_path, str | os.PathLike) else list(stamps_path)
    for store in stores:
        check_compatible(store, model.channels, model.stamp_size)
    if n_samples < 1 or batch_size < 1:
        raise ValueError(f"n_samples and batch_size must be positive, got {n_samples} and {batch_size}")
    metadata = {"model_kind": model.settings.kind, "scope": model.settings.scope,
                "ensemble_size": model.settings.ensemble_size, "n_samples": n_samples,
                "batch_size": batch_size, "seed": seed, "bayesrb_version": __version__}
    schema = pa.schema([("candidate_id", pa.string()), *((name, pa.float32()) for name in SCORE_COLUMNS[1:])],
                       metadata={key: str(value) for key, value in metadata.items()})

    @jax.jit
    def score_batch(params, x, key):
        return summarise(model.sample_probs(params, x, key, n_samples))

    root = named_key(jax.random.PRNGKey(seed), "score")
    start, n_scored = time.perf_counter(), 0
    with atomic_path(out_path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for b, (x, ids) in enumerate(iter_stamps(stores, batch_size, model.channels)):
            summaries = score_batch(model.params, pad_rows(x, batch_size), jax.random.fold_in(root, b))
            columns = {"candidate_id": ids.astype(str)} | {name: np.asarray(value)[:len(ids)]
                                                             for name, value in summaries.items()}
            writer.write_table(pa.table(columns, schema=schema))
            n_scored += len(ids)
    LOG.info("scored %d candidates x %d samples in %.1f s -> %s", n_scored, n_samples,
             time.perf_counter() - start, out_path)
    return n_scored

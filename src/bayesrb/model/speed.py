"""Throughput of the CNN on this machine: training steps and forward passes of a plain deterministic network.

The numbers isolate the network from data loading: one fixed batch of random stamps is reused. Each call times
``steps`` repeats after a compile-and-warm-up call and reports the median step (and the best). FLOP rates count
multiply-adds as 2 (:func:`~bayesrb.model.network.forward_flops`: 29.9 MFLOP per 55x55x4 stamp) and a training
step as 3 forward passes. Compare with :func:`matmul_gflops` measured at the same time: on a shared machine other
jobs halve the numbers.

Measured on the 2-core AMD EPYC of this project with nothing else running (numpy matmul 200-207 GFLOP/s), default
network, 55x55x4 stamps, huge pages on:

============================================  ======================  ======================
                                              ``"matmul"``            ``"xla"``
============================================  ======================  ======================
training, batch 64 / 128 / 256                816 / 789 / 831 st/s    516 / 507 / 467 st/s
training GFLOP/s (batch 128)                  71                      45
training with normalise + augment, batch 128  734 st/s                462 st/s
forward, batch 1024 (128-1024 alike)          2,600 st/s (78 GFLOP/s) 1,730 st/s (52 GFLOP/s)
one core (``taskset -c 1``), training / fwd   530 / 1,550-1,850 st/s  365 / 870 st/s
============================================  ======================  ======================

With ``"onednn"`` (the default on this machine since oneDNN's convolutions were bound, see
:mod:`bayesrb.model.onednn`), the same machine trains at ~1,275 stamps/s (batch 128, with normalise + augment)
and runs the forward pass at ~5,100 stamps/s (batch 1024, ~150 GFLOP/s).

Two environment settings matter for XLA:CPU, and must be set before Python starts:

``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``
    XLA:CPU allocates its large temporary buffers afresh on every call; with 4 KiB pages a training step then
    takes ~40,000 page faults (128 stamps). Transparent huge pages cut them 85-fold and make training ~1.3x faster
    (one core: 415 -> 530 stamps/s). Inference is unaffected.
``XLA_FLAGS``
    None helped: oneDNN (``--xla_cpu_use_onednn``, ``--xla_cpu_experimental_onednn_custom_call``), XNNPACK/YNNPACK
    fusions (``--xla_cpu_experimental_{xnn,ynn}_fusion_type``) all within noise of the default.
"""

import functools
import os
import statistics
import time
from collections.abc import Callable

import jax
import numpy as np
import optax

from bayesrb.model.network import Classifier, NetworkConfig, forward_flops
from bayesrb.model.preprocess import augment, normalise
from bayesrb.seeding import rng_for

STAMP_SHAPE = (55, 55, 4)


def matmul_gflops(size: int = 1024, repeats: int = 10) -> float:
    """Best measured rate of a numpy float32 ``size x size`` matrix product, in GFLOP/s."""
    rng = rng_for(0, "matmul_gflops")
    a, b = rng.random((size, size), dtype=np.float32), rng.random((size, size), dtype=np.float32)
    return 2 * size**3 / min(_call_seconds(lambda: a @ b, repeats + 1)[1:]) / 1e9


def _call_seconds(call: Callable[[], object], repeats: int) -> list[float]:
    """Wall seconds of each of ``repeats`` calls of ``call``, results waited for."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(call())
        seconds.append(time.perf_counter() - start)
    return seconds


def _random_stamps(batch_size: int, input_shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """Sky-like stamps: a constant level plus unit Gaussian noise, float32 ``(batch_size, *input_shape)``."""
    return 100.0 + rng_for(seed, "speed_stamps").standard_normal((batch_size, *input_shape), dtype=np.float32)


def _summary(seconds: list[float], batch_size: int, flops_per_stamp: int, config: NetworkConfig) -> dict:
    """Throughput numbers from per-call seconds."""
    median, best = statistics.median(seconds), min(seconds)
    return {
        "conv_impl": config.conv_impl,
        "batch_size": batch_size,
        "step_ms": 1e3 * median,
        "stamps_per_s": batch_size / median,
        "gflops": batch_size * flops_per_stamp / median / 1e9,
        "best_stamps_per_s": batch_size / best,
        "huge_pages": "glibc.malloc.hugetlb=1" in os.environ.get("GLIBC_TUNABLES", ""),
    }


def training_call(
    config: NetworkConfig,
    batch_size: int = 128,
    *,
    input_shape: tuple[int, int, int] = STAMP_SHAPE,
    preprocess: bool = True,
    seed: int = 0,
) -> Callable[[], jax.Array]:
    """A compiled and warmed-up training step on a fixed batch: forward, backward and an Adam update.

    Parameters
    ----------
    config : NetworkConfig
        The network (a deterministic :class:`Classifier`; dropout on).
    batch_size : int
        Stamps per step.
    input_shape : tuple of int
        Stamp shape ``(H, W, C)``.
    preprocess : bool
        Normalise (``"stamp_channel"``) and augment the raw stamps inside the step, as training does.
    seed : int
        Seed of the random stamps, labels and initial parameters.

    Returns
    -------
    callable
        Each call runs one step (updating the parameters) and returns its loss (not waited for).
    """
    model = Classifier(config)
    optimizer = optax.adam(1e-3)
    stamps = _random_stamps(batch_size, input_shape, seed)
    labels = rng_for(seed, "speed_labels").integers(0, 2, batch_size).astype(np.float32)
    key = jax.random.key(seed)
    params = model.init(key, stamps[:1])
    state = (params, optimizer.init(params), 0)

    def loss(params, x, y, step_key):
        if preprocess:
            x = augment(jax.random.fold_in(step_key, 0), normalise(x, "stamp_channel"))
        logits = model.apply(params, x, deterministic=False, rngs={"dropout": jax.random.fold_in(step_key, 1)})
        return optax.sigmoid_binary_cross_entropy(logits, y).mean()

    @functools.partial(jax.jit, donate_argnums=0)
    def train_step(state, x, y):
        params, opt_state, step = state
        value, grads = jax.value_and_grad(loss)(params, x, y, jax.random.fold_in(key, step))
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, step + 1), value

    def one_step():
        nonlocal state
        state, value = train_step(state, stamps, labels)
        return value

    jax.block_until_ready(one_step())
    return one_step


def forward_call(
    config: NetworkConfig,
    batch_size: int = 1024,
    *,
    input_shape: tuple[int, int, int] = STAMP_SHAPE,
    seed: int = 0,
) -> Callable[[], jax.Array]:
    """A compiled and warmed-up deterministic forward pass on a fixed batch of normalised stamps on the device.

    Parameters are those of :func:`training_call` (whose stamps come from host memory, as in training); each call
    returns the logits (not waited for).
    """
    model = Classifier(config)
    stamps = jax.device_put(_random_stamps(batch_size, input_shape, seed) - 100.0)
    params = model.init(jax.random.key(seed), stamps[:1])
    apply = jax.jit(lambda params, x: model.apply(params, x))  # a fresh function: no stale trace from a cache
    jax.block_until_ready(apply(params, stamps))
    return lambda: apply(params, stamps)


def training_throughput(config: NetworkConfig, batch_size: int = 128, steps: int = 20, **options) -> dict:
    """Time ``steps`` calls of :func:`training_call` (``options`` are its keywords).

    Returns
    -------
    dict
        ``conv_impl``, ``batch_size``, ``step_ms`` (median), ``stamps_per_s`` (median), ``gflops`` (3 forward
        passes per stamp, median), ``best_stamps_per_s`` and ``huge_pages`` (whether the glibc tunable is set).
    """
    flops = 3 * forward_flops(config, options.get("input_shape", STAMP_SHAPE))
    return _summary(_call_seconds(training_call(config, batch_size, **options), steps), batch_size, flops, config)


def forward_throughput(config: NetworkConfig, batch_size: int = 1024, steps: int = 5, **options) -> dict:
    """Time ``steps`` calls of :func:`forward_call`; keys as :func:`training_throughput` (1 forward pass)."""
    flops = forward_flops(config, options.get("input_shape", STAMP_SHAPE))
    return _summary(_call_seconds(forward_call(config, batch_size, **options), steps), batch_size, flops, config)


def format_result(result: dict) -> str:
    """One line: ``conv_impl batch N: S stamps/s (best B), G GFLOP/s, T ms per step``."""
    return (
        f"{result['conv_impl']} batch {result['batch_size']}: {result['stamps_per_s']:.0f} stamps/s "
        f"(best {result['best_stamps_per_s']:.0f}), {result['gflops']:.1f} GFLOP/s, {result['step_ms']:.1f} ms per step"
    )

"""Speed of every model kind on this machine: training steps, and scoring many candidates with many samples.

The stamps are random and held in memory, so the numbers measure the model, not the input pipeline (which the
workflow's own ``train_model`` logs report per epoch, and :mod:`bayesrb.bench.paper_scale` measures). Training speed
is that of the median step. FLOP rates count a multiply-add as 2 and a training step as 3 forward passes
(:func:`bayesrb.model.network.forward_flops`); they are compared with the machine's float32 matrix-product rate
measured at the same time (:func:`matmul_gflops`), since on a shared machine other jobs slow both.

Measurements of the convolution implementations and of the environment settings that matter for XLA:CPU
(``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``; no ``XLA_FLAGS`` helped) are in README.md, *The classifier*.
"""

import re
import statistics
import subprocess
import time
import timeit
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from bayesrb.model.methods import ModelSettings, TrainBatch, build_method, pad_rows
from bayesrb.model.network import NetworkConfig, conv_input_shapes, forward_flops, resolve_conv_impl
from bayesrb.model.onednn import conv_onednn, seconds_in_onednn
from bayesrb.model.preprocess import normalise_on_host
from bayesrb.model.scoring import ScoringSettings
from bayesrb.seeding import rng_for
from bayesrb.settings import settings_from

#: The variants compared: name -> overrides of the default ``model`` settings.
VARIANTS: dict[str, dict] = {
    "bayesian (full)": {"kind": "bayesian", "scope": "full"},
    "bayesian (full, local reparam.)": {"kind": "bayesian", "scope": "full", "local_reparameterisation": True},
    "bayesian (last block)": {"kind": "bayesian", "scope": "last_block"},
    "bayesian (head)": {"kind": "bayesian", "scope": "head"},
    "mc_dropout": {"kind": "mc_dropout"},
    "deterministic": {"kind": "deterministic"},
}


NAME_WIDTH = max(len(name) for name in VARIANTS)

#: The published stack's benchmark (a source checkout's ``benchmarks/``), run by :func:`keras_reference`.
KERAS_SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "keras_reference.py"


@dataclass(frozen=True)
class SpeedResult:
    """Measured speed of one variant.

    ``onednn_share`` is the median fraction of a training step spent in oneDNN's convolutions (None where the
    convolutions are not oneDNN's): the rest is XLA's work (pooling, dense layers, loss, sampling, optimiser).
    """

    name: str
    train_stamps_per_s: float
    train_gflops: float
    score_seconds: float
    onednn_share: float | None = None


def matmul_gflops(size: int = 1024, repeats: int = 10) -> float:
    """Best measured rate of a numpy float32 ``size x size`` matrix product, in GFLOP/s."""
    rng = rng_for(0, "matmul_gflops")
    a, b = rng.random((size, size), dtype=np.float32), rng.random((size, size), dtype=np.float32)
    return 2 * size**3 / min(timeit.repeat(lambda: a @ b, number=1, repeat=repeats + 1)) / 1e9


def _stamps(n: int, shape: tuple[int, int, int], seed: int) -> np.ndarray:
    return 100.0 + rng_for(seed, "benchmark_stamps").standard_normal((n, *shape), dtype=np.float32)


def _train_speed(method, settings: ModelSettings, shape, steps: int):
    """Stamps/s of the median training step, the median fraction of a step in oneDNN, and the state.

    The fraction is None without oneDNN. Steps are timed after one compile-and-warm-up step, each waited for and
    timed on its own: the median ignores the occasional step slowed by other work on the machine (on a shared
    virtual machine whole stretches of steps can run 2-3x slower). The step takes normalised stamps, as training's
    input pipeline serves them (normalised once per stamp, not once per step).
    """
    size = settings.batch_size
    x = normalise_on_host(_stamps(size, shape, 1), settings.normalisation)
    y = (np.arange(size) % 2).astype(np.float32)
    batch = TrainBatch(x, y, np.ones(size, np.float32), np.ones(size, np.float32))
    key = jax.random.PRNGKey(0)
    state = method.init(key, x)
    state, _ = jax.block_until_ready(method.train_step(state, batch, key))
    seconds, shares = [], []
    for step in range(steps):
        start, in_onednn = time.perf_counter(), seconds_in_onednn()
        state, _ = jax.block_until_ready(method.train_step(state, batch, jax.random.fold_in(key, step)))
        seconds.append(time.perf_counter() - start)
        shares.append((seconds_in_onednn() - in_onednn) / seconds[-1])
    share = statistics.median(shares) if max(shares) > 0 else None
    return size / statistics.median(seconds), share, state


def _score_seconds(method, state, shape, n_candidates: int, n_samples: int) -> float:
    """Wall seconds to draw ``n_samples`` posterior probabilities for ``n_candidates`` stamps (compiled first)."""
    size = min(ScoringSettings.batch_size, n_candidates)
    params = method.params(state)
    x = pad_rows(_stamps(min(size, n_candidates), shape, 2), size)
    key = jax.random.PRNGKey(1)
    jax.block_until_ready(method.sample_probs(params, x, key, n_samples))
    start = time.perf_counter()
    for b in range(-(-n_candidates // size)):
        jax.block_until_ready(method.sample_probs(params, x, jax.random.fold_in(key, b), n_samples))
    return time.perf_counter() - start


def measure(name: str, overrides: dict, *, stamp_shape=(55, 55, 4), steps: int = 20, n_candidates: int = 10_000,
            n_samples: int = 50) -> SpeedResult:
    """Measure one variant: training stamps/s and GFLOP/s, and seconds to score the candidates."""
    settings = settings_from(ModelSettings, overrides, "model")
    method = build_method(settings, n_train=10_000, total_steps=1_000)
    stamps_per_s, onednn_share, state = _train_speed(method, settings, stamp_shape, steps)
    gflops = 3 * forward_flops(settings.network, stamp_shape) * stamps_per_s / 1e9
    seconds = _score_seconds(method, state, stamp_shape, n_candidates, n_samples)
    return SpeedResult(name, stamps_per_s, gflops, seconds, onednn_share)


def run(steps: int = 20, n_candidates: int = 10_000, n_samples: int = 50, conv_impl: str = "auto",
        batch_size: int = 128, keras_python: str | None = None, keras_onednn: str = "on",
        rounds: int = 1) -> Iterator[str]:
    """Measure every variant of :data:`VARIANTS`; yield the table line by line as the measurements finish.

    With ``keras_python`` the published stack is measured first (:func:`keras_reference`, same stamp shape, steps,
    batch size, candidates and samples), then every variant, then their ratios (:func:`ratio_lines`), so that
    one command compares the two stacks on the machine as it is. With ``rounds`` above 1 the whole sequence is
    repeated, the stacks alternating, and the medians over the rounds are tabulated and compared: on a shared
    machine whose speed drifts by tens of per cent within minutes, a single pass can favour either stack.

    Parameters
    ----------
    steps : int
        Timed training steps per variant.
    n_candidates, n_samples : int
        Candidates scored, and posterior samples drawn per candidate.
    conv_impl : {"auto", "onednn", "matmul", "xla"}
        Convolution implementation (:class:`bayesrb.model.network.NetworkConfig`).
    batch_size : int
        Training mini-batch size.
    keras_python : str, optional
        Python of an environment with TensorFlow, to compare with the published stack.
    keras_onednn : {"on", "default", "off"}
        TensorFlow's oneDNN operations in that comparison (the script's ``--onednn``): ``on`` measures Keras at its
        fastest on CPUs where TensorFlow leaves them off by default.
    rounds : int
        Times the whole measurement is repeated.

    Yields
    ------
    str
        A line naming the machine, then per round the published stack's line, a header and one line per variant;
        after several rounds the medians; then the ratios.
    """
    shape = (55, 55, 4)
    device = jax.devices()[0]
    yield (f"machine: {device.platform} ({device.device_kind}), conv_impl {resolve_conv_impl(conv_impl)}, training "
           f"batch {batch_size}, numpy float32 matmul {matmul_gflops():.0f} GFLOP/s; default network "
           f"{forward_flops(ModelSettings().network, shape) / 1e6:.1f} MFLOP per forward pass on 55x55x4")
    keras_runs: list[KerasSpeed] = []
    variant_runs: dict[str, list[SpeedResult]] = {name: [] for name in VARIANTS}
    for round_index in range(rounds):
        if rounds > 1:
            yield f"round {round_index + 1} of {rounds}"
        if keras_python is not None:
            keras_runs.append(keras_reference(keras_python, steps=steps, n_candidates=n_candidates,
                                              n_samples=n_samples, batch_size=batch_size, onednn=keras_onednn))
            yield _keras_line(keras_runs[-1], batch_size, n_candidates, n_samples)
        yield _header(n_candidates, n_samples)
        for name, overrides in VARIANTS.items():
            settings = overrides | {"batch_size": batch_size, "network": {"conv_impl": conv_impl}}
            variant_runs[name].append(measure(name, settings, stamp_shape=shape, steps=steps,
                                              n_candidates=n_candidates, n_samples=n_samples))
            yield _result_line(variant_runs[name][-1])
    results = [median_result(runs) for runs in variant_runs.values()]
    if rounds > 1:
        yield f"median over {rounds} rounds"
        if keras_runs:
            yield _keras_line(median_keras(keras_runs), batch_size, n_candidates, n_samples)
        yield _header(n_candidates, n_samples)
        yield from map(_result_line, results)
    if keras_runs:
        yield from ratio_lines(results, median_keras(keras_runs))


def _keras_line(keras: "KerasSpeed", batch_size: int, n_candidates: int, n_samples: int) -> str:
    return (f"published stack: {keras.versions}; training, batch {batch_size}: {keras.train_stamps_per_s:.0f} "
            f"stamps/s; MC dropout {n_candidates}x{n_samples}, compiled: {keras.mc_dropout_seconds:.1f} s")


def _header(n_candidates: int, n_samples: int) -> str:
    score_column = f"score {n_candidates}x{n_samples} (s)"
    return (f"{'variant':<{NAME_WIDTH}} {'train stamps/s':>15} {'train GFLOP/s':>14} {'step in oneDNN':>15} "
            f"{score_column:>24}")


def _result_line(result: SpeedResult) -> str:
    share = "-" if result.onednn_share is None else f"{result.onednn_share:.0%}"
    return (f"{result.name:<{NAME_WIDTH}} {result.train_stamps_per_s:>15.0f} {result.train_gflops:>14.1f} "
            f"{share:>15} {result.score_seconds:>24.1f}")


def median_result(runs: Sequence[SpeedResult]) -> SpeedResult:
    """The median of each measured quantity of one variant over rounds."""
    shares = [run.onednn_share for run in runs if run.onednn_share is not None]
    return SpeedResult(runs[0].name, statistics.median(run.train_stamps_per_s for run in runs),
                       statistics.median(run.train_gflops for run in runs),
                       statistics.median(run.score_seconds for run in runs),
                       statistics.median(shares) if shares else None)


def median_keras(runs: Sequence["KerasSpeed"]) -> "KerasSpeed":
    """The median of the published stack's training speed and scoring time over rounds."""
    return KerasSpeed(runs[0].versions, statistics.median(run.train_stamps_per_s for run in runs),
                      statistics.median(run.mc_dropout_seconds for run in runs))


def convolution_lines(batch_size: int = 128, repeats: int = 20) -> Iterator[str]:
    """Wall milliseconds of oneDNN's three calls for each convolution of the default network, one line per layer.

    The forward pass (with bias and ReLU), the input gradient and the kernel (and bias) gradient, each jitted alone
    on random arrays of the layer's shapes at ``batch_size`` and timed by its median call; the lines have the form
    that ``benchmarks/keras_reference.py --convolutions`` prints for TensorFlow, so the two stacks' kernels compare
    layer by layer.
    """
    rng = rng_for(0, "convolution_lines")
    for rows, cols, channels, features in conv_input_shapes(NetworkConfig(), (55, 55, 4)):
        x = rng.standard_normal((batch_size, rows, cols, channels), dtype=np.float32)
        kernel = 0.1 * rng.standard_normal((3, 3, channels, features), dtype=np.float32)
        bias = np.zeros(features, np.float32)
        y_grad = rng.standard_normal((batch_size, rows - 2, cols - 2, features), dtype=np.float32)
        calls = {
            "forward": jax.jit(lambda x, k, b, g: conv_onednn(x, k, b, relu=True)),
            "input gradient": jax.jit(lambda x, k, b, g: jax.vjp(lambda x: conv_onednn(x, k, b), x)[1](g)),
            "kernel gradient": jax.jit(lambda x, k, b, g: jax.vjp(lambda k, b: conv_onednn(x, k, b), k, b)[1](g)),
        }
        args = jax.device_put((x, kernel, bias, y_grad))
        times = {name: _median_call_ms(call, args, repeats) for name, call in calls.items()}
        yield (f"conv {rows}x{cols}x{channels}->{features}: "
               + ", ".join(f"{name} {ms:.1f} ms" for name, ms in times.items()))


def keras_convolution_lines(python: str, batch_size: int = 128, onednn: str = "on") -> list[str]:
    """What ``benchmarks/keras_reference.py --convolutions`` prints with ``python`` (its header line first).

    Raises
    ------
    RuntimeError
        As :func:`keras_reference`.
    """
    options = ["--convolutions", "--batch-sizes", str(batch_size), "--onednn", onednn]
    return _run_keras_script(python, options).splitlines()


def _median_call_ms(function, args, repeats: int) -> float:
    jax.block_until_ready(function(*args))
    return 1e3 * statistics.median(timeit.repeat(lambda: jax.block_until_ready(function(*args)), number=1,
                                                 repeat=repeats))


@dataclass(frozen=True)
class KerasSpeed:
    """What ``benchmarks/keras_reference.py`` measured: the published stack on the same stamps.

    Attributes
    ----------
    versions : str
        Its first line (TensorFlow and Keras versions, threads).
    train_stamps_per_s : float
        Training speed of the median step at the compared batch size.
    mc_dropout_seconds : float
        Seconds to score the candidates with the compared number of compiled Monte Carlo dropout samples.
    """

    versions: str
    train_stamps_per_s: float
    mc_dropout_seconds: float


def parse_keras_output(text: str, batch_size: int) -> KerasSpeed:
    """Read the numbers of ``benchmarks/keras_reference.py`` from what it printed.

    Raises
    ------
    ValueError
        If the training line of ``batch_size`` or the compiled MC-dropout line is missing.
    """
    training = re.search(rf"^training, batch {batch_size}: ([0-9.]+) stamps/s", text, re.MULTILINE)
    scoring = re.search(r"^MC dropout \d+ x \d+, tf\.function: ([0-9.]+) s", text, re.MULTILINE)
    if training is None or scoring is None:
        raise ValueError(f"no training speed at batch {batch_size} or no compiled MC-dropout time in the Keras "
                         f"benchmark's output:\n{text}")
    return KerasSpeed(text.splitlines()[0], float(training.group(1)), float(scoring.group(1)))


def keras_reference(python: str, *, steps: int, n_candidates: int, n_samples: int, batch_size: int,
                    onednn: str = "on") -> KerasSpeed:
    """Run ``benchmarks/keras_reference.py`` with the interpreter of an environment that has TensorFlow.

    Parameters
    ----------
    python : str
        That environment's Python (TensorFlow is not a dependency of bayesrb).
    steps, n_candidates, n_samples, batch_size : int
        As for :func:`run`; the eager-mode loop is skipped.
    onednn : {"on", "default", "off"}
        TensorFlow's oneDNN operations (the script's ``--onednn``).

    Raises
    ------
    RuntimeError
        If the script is not there (not a source checkout) or fails, with the last line it wrote.
    """
    options = ["--steps", str(steps), "--candidates", str(n_candidates), "--samples", str(n_samples),
               "--batch-sizes", str(batch_size), "--eager-samples", "0", "--onednn", onednn]
    return parse_keras_output(_run_keras_script(python, options), batch_size)


def _run_keras_script(python: str, options: list[str]) -> str:
    """The standard output of ``benchmarks/keras_reference.py`` run by ``python`` with ``options``."""
    if not KERAS_SCRIPT.is_file():
        raise RuntimeError(f"{KERAS_SCRIPT} not found: --compare-keras needs a source checkout of bayesrb")
    done = subprocess.run([python, str(KERAS_SCRIPT), *options], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"{python} {KERAS_SCRIPT.name} failed: {last} (install tensorflow-cpu in that "
                           "environment, see the script's docstring)")
    return done.stdout


def ratio_lines(results: Sequence[SpeedResult], keras: KerasSpeed) -> Iterator[str]:
    """The table of every variant against the published stack: training speed ratio and scoring time ratio.

    Above 1 in the training column, bayesrb trains faster; below 1 in the scoring column, it scores faster than
    Keras's compiled Monte Carlo dropout (every sample a whole forward pass).
    """
    yield f"{'variant':<{NAME_WIDTH}} {'train / Keras':>14} {'score time / Keras MC dropout':>30}"
    for result in results:
        yield (f"{result.name:<{NAME_WIDTH}} {result.train_stamps_per_s / keras.train_stamps_per_s:>14.2f} "
               f"{result.score_seconds / keras.mc_dropout_seconds:>30.2f}")

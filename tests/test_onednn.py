"""The guard of bayesrb.model.onednn (versions, self-test), its fallback for conv_impl 'auto', and freed primitives."""

import logging
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesrb.model import network, onednn
from bayesrb.model.network import Classifier, NetworkConfig


def onednn_skip_reason() -> str | None:
    """Why oneDNN's convolutions cannot run here (not x86-64 Linux, library missing, not the CPU), or None."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return f"oneDNN's wheel is for x86-64 Linux, not {sys.platform} on {platform.machine()}"
    if jax.default_backend() != "cpu":
        return f"oneDNN's convolutions run on the CPU, and JAX's default backend is {jax.default_backend()!r}"
    try:
        onednn._OneDnn._load()
    except onednn.OneDnnError as error:
        return str(error)
    return None


SKIP_REASON = onednn_skip_reason()
#: For tests that run oneDNN: skipped (with the reason) where it cannot run, failing where it runs but is broken.
NEEDS_ONEDNN = pytest.mark.skipif(SKIP_REASON is not None, reason=str(SKIP_REASON))
NEEDS_CPU = pytest.mark.skipif(jax.default_backend() != "cpu", reason="off the CPU, 'auto' picks 'xla'")


def forget_guard() -> None:
    """Forget every per-process decision of the guard, and free the cached primitives."""
    with onednn._LOCK:
        while onednn._PLANS:
            onednn._PLANS.popitem()[1].destroy()
    onednn._guard.cache_clear()
    onednn._onednn.cache_clear()
    network._auto_cpu_conv_impl.cache_clear()


@pytest.fixture
def fresh_guard(monkeypatch):
    """The guard runs again in the test (after its monkeypatches), and again after it (without them)."""
    forget_guard()
    yield
    monkeypatch.undo()
    forget_guard()


def _stamps(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape).astype(np.float32))


def _loss_and_gradient(conv_impl: str, x, labels, params):
    model = Classifier(NetworkConfig(filters=(4, 8), dense_units=16, conv_impl=conv_impl))

    def loss(p):
        logits = model.apply(p, x)
        return jnp.mean(nn.softplus(logits) - labels * logits)

    return jax.jit(jax.value_and_grad(loss))(params)


def assert_auto_falls_back_to_matmul(caplog, reason_pattern: str) -> None:
    """'auto' gives 'matmul', one warning line names the reason, results are the matmul path's; 'onednn' raises."""
    x, labels = _stamps((3, 17, 17, 4)), jnp.array([0.0, 1.0, 1.0])
    params = Classifier(NetworkConfig(filters=(4, 8), dense_units=16, conv_impl="xla")).init(jax.random.key(2), x)
    with caplog.at_level(logging.WARNING):
        assert network.resolve_conv_impl("auto") == "matmul"
        auto = _loss_and_gradient("auto", x, labels, params)  # four convolutions resolve 'auto' again
        assert network.resolve_conv_impl("auto") == "matmul"
    (warning,) = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert warning.startswith("conv_impl 'auto' falls back to 'matmul'") and "\n" not in warning
    assert onednn.unusable_reason() in warning and re.search(reason_pattern, warning), warning
    matmul = _loss_and_gradient("matmul", x, labels, params)
    assert jax.tree.all(jax.tree.map(np.array_equal, auto, matmul))
    assert np.isfinite(auto[0]) and float(jnp.abs(auto[1]["params"]["trunk"]["conv0_0"]["kernel"]).max()) > 1e-6
    with pytest.raises(onednn.OneDnnError, match=f"cannot be used here: .*{reason_pattern}"):
        network.resolve_conv_impl("onednn")
    with pytest.raises(onednn.OneDnnError, match="cannot be used here"):
        onednn.conv_onednn(x, params["params"]["trunk"]["conv0_0"]["kernel"], jnp.zeros(4))


def test_check_version_accepts_the_stated_ranges_and_rejects_versions_outside():
    onednn.check_version("oneDNN", (3, 0, 0), onednn.ONEDNN_VERSIONS)
    onednn.check_version("oneDNN", (3, 11, 2), onednn.ONEDNN_VERSIONS)
    onednn.check_version("XLA FFI API", (0, 1), onednn.XLA_FFI_VERSIONS)
    onednn.check_version("XLA FFI API", (0, 3), onednn.XLA_FFI_VERSIONS)
    for what, version, versions in [("oneDNN", (4, 0, 0), onednn.ONEDNN_VERSIONS),
                                    ("oneDNN", (2, 7, 5), onednn.ONEDNN_VERSIONS),
                                    ("XLA FFI API", (0, 0), onednn.XLA_FFI_VERSIONS),
                                    ("XLA FFI API", (1, 0), onednn.XLA_FFI_VERSIONS)]:
        version_text = re.escape(".".join(map(str, version)))
        with pytest.raises(onednn.OneDnnError, match=f"^{what} {version_text} is outside .* <= version < "):
            onednn.check_version(what, version, versions)
    assert onednn.ONEDNN_VERSIONS == ((3, 0), (4, 0)) and onednn.XLA_FFI_VERSIONS == ((0, 1), (1, 0))


@NEEDS_CPU
def test_missing_library_makes_auto_fall_back_to_matmul_with_one_warning(fresh_guard, monkeypatch, caplog):
    monkeypatch.setattr(onednn, "_library_candidates", lambda: [Path("/nonexistent/libdnnl.so.3")])
    monkeypatch.setattr(onednn, "_SONAME", "libdnnl-missing.so.3")
    assert "onednn-cpu-gomp" in onednn.unusable_reason() and not onednn.available()
    assert_auto_falls_back_to_matmul(caplog, r"libdnnl\.so\.3\) not found")


@NEEDS_ONEDNN
def test_guard_passes_here_and_auto_picks_onednn(fresh_guard, caplog):
    with caplog.at_level(logging.WARNING):
        assert onednn.unusable_reason() is None
        assert network.resolve_conv_impl("auto") == "onednn" and network.resolve_conv_impl("onednn") == "onednn"
    assert not caplog.records
    onednn.check_version("oneDNN", onednn._onednn().version, onednn.ONEDNN_VERSIONS)
    onednn.check_version("XLA FFI API", onednn._XLA_FFI_SEEN["version"], onednn.XLA_FFI_VERSIONS)


@NEEDS_ONEDNN
def test_guard_rejects_an_out_of_range_onednn_version(fresh_guard, monkeypatch, caplog):
    monkeypatch.setattr(onednn, "ONEDNN_VERSIONS", ((99, 0), (100, 0)))
    assert_auto_falls_back_to_matmul(caplog, r"oneDNN 3\.\d+\.\d+ is outside .*\(99\.0 <= version < 100\.0\)")


@NEEDS_ONEDNN
def test_guard_rejects_an_out_of_range_xla_ffi_version(fresh_guard, monkeypatch, caplog):
    assert onednn.available()  # XLA has reported its FFI API version
    forget_guard()
    monkeypatch.setattr(onednn, "XLA_FFI_VERSIONS", ((0, 99), (1, 0)))
    assert_auto_falls_back_to_matmul(caplog, r"XLA FFI API 0\.\d+ is outside .*\(0\.99 <= version < 1\.0\)")


@NEEDS_ONEDNN
def test_guard_reads_xla_ffi_version_from_a_call_frame(fresh_guard, monkeypatch):
    assert onednn.available()  # the handlers are registered and their metadata queried, once per process
    forget_guard()
    monkeypatch.setattr(onednn, "_XLA_FFI_SEEN", {})
    assert onednn.unusable_reason() is None  # the probe target ran and showed XLA's FFI API
    seen = onednn._XLA_FFI_SEEN
    onednn.check_version("XLA FFI API", seen["version"], onednn.XLA_FFI_VERSIONS)
    assert seen["api_size"] >= 56 and seen["frame_size"] >= 168  # XLA_FFI_Api up to Error_Create; XLA_FFI_CallFrame


@NEEDS_ONEDNN
def test_self_test_catches_a_wrong_declaration(fresh_guard, monkeypatch, caplog):
    monkeypatch.setattr(onednn, "_ELTWISE_RELU", 0x24)  # dnnl_eltwise_abs: a wrong enum value for the fused ReLU
    assert_auto_falls_back_to_matmul(
        caplog, r"self-test: the output \(ReLU\) of oneDNN's convolution differs from the patch-matmul one by [\d.]+")


@NEEDS_ONEDNN
def test_self_test_case_is_close_to_the_reference_well_within_its_tolerance(fresh_guard):
    case = onednn._self_test_case()
    ours = jax.jit(lambda *a: onednn._values_and_gradients(onednn._conv, *a))(*case)
    reference = jax.jit(lambda *a: onednn._values_and_gradients(onednn._conv_matmul_reference, *a))(*case)
    errors = [float(jnp.abs(a - r).max() / jnp.abs(r).max()) for a, r in zip(ours, reference, strict=True)]
    assert max(errors) < onednn.SELF_TEST_RTOL / 10, errors
    assert float((reference[4] == 0).mean()) > 0.3  # the ReLU masks many outputs


@NEEDS_ONEDNN
def test_plans_own_their_primitives_and_the_least_recently_used_is_destroyed(fresh_guard, monkeypatch):
    monkeypatch.setattr(onednn, "MAX_PLANS", 2)
    kernel, bias = _stamps((3, 3, 2, 4), seed=1), _stamps((4,), seed=2)
    images = [_stamps((n, 7, 6, 2), seed=n) for n in (1, 2, 3)]
    first = np.asarray(onednn.conv_onednn(images[0], kernel, bias, True))
    plan = onednn._PLANS[((1, 7, 6, 2), (3, 3, 2, 4), True)]
    kinds = [kind for kind, _ in plan._owned]
    assert (kinds.count("memory_desc"), kinds.count("primitive"), kinds.count("primitive_desc")) == (4 + 3, 3 + 3, 1)
    assert len(kinds) == 14 and kinds.index("primitive_desc") < kinds.index("primitive")  # the hint outlives them
    for x in images[1:]:
        jax.block_until_ready(onednn.conv_onednn(x, kernel, bias, True))
    assert list(onednn._PLANS) == [((n, 7, 6, 2), (3, 3, 2, 4), True) for n in (2, 3)]
    assert plan._owned == []  # destroyed on eviction
    np.testing.assert_array_equal(onednn.conv_onednn(images[0], kernel, bias, True), first)  # rebuilt
    expected = jax.nn.relu(network.conv_xla(images[0], kernel) + bias)
    np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-5)


@NEEDS_ONEDNN
def test_guard_runs_inside_a_jit_trace(fresh_guard):
    x = _stamps((2, 9, 9, 4))
    model = Classifier(NetworkConfig(filters=(4,), convs_per_block=1, dense_units=8))  # conv_impl 'auto'
    params = jax.jit(model.init)(jax.random.key(0), x)  # the guard first runs while this is traced
    assert network.resolve_conv_impl("auto") == "onednn"
    reference = Classifier(NetworkConfig(filters=(4,), convs_per_block=1, dense_units=8, conv_impl="xla"))
    np.testing.assert_allclose(model.apply(params, x), reference.apply(params, x), rtol=1e-5, atol=1e-5)


@NEEDS_ONEDNN
def test_time_in_onednn_counts_the_convolutions_it_runs(fresh_guard):
    assert onednn.seconds_in_onednn() == 0.0  # not loaded yet
    convolve = jax.jit(lambda x: onednn.conv_onednn(x, jnp.ones((3, 3, 4, 8)), jnp.zeros(8)))
    x = _stamps((16, 40, 40, 4))
    convolve(x).block_until_ready()
    before, start = onednn.seconds_in_onednn(), time.perf_counter()
    convolve(x).block_until_ready()
    spent, wall = onednn.seconds_in_onednn() - before, time.perf_counter() - start
    assert 0 < spent <= wall


_SPIN_PROBE = """
import os, time
import jax, jax.numpy as jnp
from bayesrb.model import onednn
assert onednn.unusable_reason() is None
convolve = jax.jit(lambda x: onednn.conv_onednn(x, jnp.ones((3, 3, 16, 32)), jnp.zeros(32)))
x = jnp.ones((64, 30, 30, 16))
convolve(x).block_until_ready()
convolve(x).block_until_ready()
start = time.process_time()
time.sleep(0.5)
print(os.environ.get("OMP_WAIT_POLICY"), time.process_time() - start)
"""


def _after_conv(env: dict[str, str]) -> tuple[str, float]:
    """OMP_WAIT_POLICY in a fresh process after oneDNN convolutions, and the CPU seconds of its next 0.5 s asleep."""
    run = subprocess.run([sys.executable, "-c", _SPIN_PROBE], env=env, capture_output=True, text=True, check=True)
    policy, cpu_seconds = run.stdout.split()
    return policy, float(cpu_seconds)


@NEEDS_ONEDNN
def test_omp_wait_policy_is_set_only_while_libgomp_loads_and_a_users_value_is_kept():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    policy, idle_cpu = _after_conv(env)
    assert policy == "None" and idle_cpu < 0.05  # passive: oneDNN's threads sleep between calls
    policy, spinning_cpu = _after_conv(env | {"OMP_WAIT_POLICY": "ACTIVE"})
    assert policy == "ACTIVE" and spinning_cpu > 0.1  # the user's choice: a thread spins through the sleep

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_onednn import NEEDS_ONEDNN

from bayesrb.model import network, onednn
from bayesrb.model.network import (
    Classifier,
    Conv,
    NetworkConfig,
    Trunk,
    conv_matmul,
    conv_xla,
    forward_flops,
    trunk_output_shape,
)
from bayesrb.model.onednn import conv_onednn
from bayesrb.model.preprocess import IQR_PER_SIGMA, augment, normalise, normalise_on_host, quantiles

#: The CPU implementations; "onednn" only where it can run (else its tests are skipped, naming why).
CPU_IMPLS = [pytest.param("onednn", marks=NEEDS_ONEDNN), "matmul"]


def _stamps(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape).astype(np.float32))


@pytest.mark.parametrize(("size", "features"), [(55, 10 * 10 * 32), (31, 4 * 4 * 32), (21, 2 * 2 * 32)])
@pytest.mark.parametrize("impl", [*CPU_IMPLS, "xla"])
def test_output_shapes(size, features, impl):
    config = NetworkConfig(conv_impl=impl)
    x = jax.ShapeDtypeStruct((3, size, size, 4), jnp.float32)
    params = jax.eval_shape(Classifier(config).init, jax.random.key(0), x)
    assert jax.eval_shape(Classifier(config).apply, params, x).shape == (3,)
    trunk_params = {"params": params["params"]["trunk"]}
    assert jax.eval_shape(Trunk(config).apply, trunk_params, x).shape == (3, features)
    assert np.prod(trunk_output_shape(config, (size, size, 4))) == features


def test_too_small_stamps_raise():
    with pytest.raises(ValueError, match="too small"):
        trunk_output_shape(NetworkConfig(), (11, 11, 4))


def test_bad_config_raises():
    with pytest.raises(ValueError, match="conv_impl"):
        NetworkConfig(conv_impl="fft")
    with pytest.raises(ValueError, match="dropout_rate"):
        NetworkConfig(dropout_rate=1.0)


def test_forward_flops_of_default_network():
    # multiply-adds per output pixel k*k*C*F: convs 53^2*(3*3*4*16) + 51^2*(3*3*16*16) + 23^2*(3*3*16*32) +
    # 21^2*(3*3*32*32) after 2x2 pooling, dense 10*10*32*256 + 256; times 2
    assert forward_flops(NetworkConfig(), (55, 55, 4)) == 29_864_064


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("impl", [*CPU_IMPLS, "xla"])
def test_conv_is_parameterised_and_initialised_like_flax_conv(impl, relu):
    x = _stamps((2, 9, 9, 4))
    flax_conv = nn.Conv(8, (3, 3), padding="VALID")
    params = flax_conv.init(jax.random.key(0), x)
    ours = Conv(8, 3, impl, relu=relu)
    assert jax.tree.all(jax.tree.map(jnp.array_equal, ours.init(jax.random.key(0), x), params))
    params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias
    expected = flax_conv.apply(params, x)
    np.testing.assert_allclose(ours.apply(params, x), nn.relu(expected) if relu else expected, rtol=1e-5, atol=1e-5)


def _assert_trees_close(actual, desired, rtol):
    for a, d in zip(jax.tree.leaves(actual), jax.tree.leaves(desired), strict=True):
        np.testing.assert_allclose(a, d, rtol=rtol, atol=rtol * float(jnp.abs(d).max()))


def test_conv_matmul_equals_xla_over_several_padded_micro_batches(monkeypatch):
    x, kernel = _stamps((7, 12, 11, 5)), _stamps((3, 3, 5, 6), seed=1)
    y_grad = _stamps((7, 10, 9, 6), seed=2)
    monkeypatch.setattr(network, "MICRO_BATCH_BYTES", 3 * 10 * 9 * 45 * 4)  # 3 stamps: micro-batches 3 + 3 + 1
    values = {f: jax.vjp(f, x, kernel) for f in (conv_matmul, conv_xla)}
    np.testing.assert_allclose(values[conv_matmul][0], values[conv_xla][0], rtol=1e-5, atol=1e-5)
    _assert_trees_close(values[conv_matmul][1](y_grad), values[conv_xla][1](y_grad), rtol=1e-5)


@NEEDS_ONEDNN
@pytest.mark.parametrize("relu", [False, True])
def test_conv_onednn_equals_xla_in_value_and_all_gradients(relu):
    x, kernel, bias = _stamps((7, 12, 11, 5)), _stamps((3, 3, 5, 6), seed=1), _stamps((6,), seed=3)
    y_grad = _stamps((7, 10, 9, 6), seed=2)

    def reference(x, kernel, bias):
        y = conv_xla(x, kernel) + bias
        return jax.nn.relu(y) if relu else y

    values = {name: jax.vjp(f, x, kernel, bias) for name, f in
              (("onednn", lambda *a: conv_onednn(*a, relu)), ("xla", reference))}
    np.testing.assert_allclose(values["onednn"][0], values["xla"][0], rtol=1e-5, atol=1e-5)
    assert not relu or (values["xla"][0] == 0).mean() > 0.3  # the ReLU masks many outputs
    _assert_trees_close(values["onednn"][1](y_grad), values["xla"][1](y_grad), rtol=1e-5)


@NEEDS_ONEDNN
def test_conv_onednn_is_bit_reproducible_and_vmaps():
    x, kernel, bias = _stamps((2, 4, 12, 12, 3)), _stamps((3, 3, 3, 8), seed=1), _stamps((8,), seed=2)
    loss = lambda x, k, b: jnp.sum(jnp.sin(conv_onednn(x, k, b, True)))  # noqa: E731
    gradient = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    first, second = gradient(x[0], kernel, bias), gradient(x[0], kernel, bias)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    mapped = jax.vmap(conv_onednn, in_axes=(0, None, None))(x, kernel, bias)
    np.testing.assert_array_equal(mapped.reshape(8, 10, 10, 8), conv_onednn(x.reshape(8, 12, 12, 3), kernel, bias))


def test_conv_onednn_rejects_bfloat16():  # before the guard: anywhere (see test_onednn.py for the guard)
    with pytest.raises(TypeError, match="float32"):
        conv_onednn(jnp.zeros((1, 5, 5, 2), jnp.bfloat16), jnp.zeros((3, 3, 2, 4), jnp.bfloat16),
                    jnp.zeros(4, jnp.bfloat16))


@NEEDS_ONEDNN
def test_conv_onednn_failure_inside_xla_is_raised_with_its_cause(monkeypatch):
    def no_plan(*shapes):
        raise RuntimeError(f"no plan for {shapes}")

    onednn.require()  # the guard's self-test has run, with the real plans
    monkeypatch.setattr(onednn, "_plan", no_plan)  # looked up by the FFI handler when XLA runs it
    with pytest.raises(Exception, match="oneDNN convolution failed: RuntimeError.*no plan for"):
        jax.block_until_ready(conv_onednn(_stamps((1, 6, 6, 2)), _stamps((3, 3, 2, 4)), _stamps((4,)), True))


@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_cpu_classifiers_agree_with_xla_in_values_and_gradients(impl):
    x = _stamps((4, 25, 25, 4))
    labels = jnp.array([0.0, 1.0, 1.0, 0.0])
    models = {name: Classifier(NetworkConfig(conv_impl=name)) for name in (impl, "xla")}
    params = jax.jit(models["xla"].init)(jax.random.key(1), x)

    def loss(p, model):
        logits = model.apply(p, x)
        return jnp.mean(nn.softplus(logits) - labels * logits)

    results = {impl: jax.jit(jax.value_and_grad(loss), static_argnums=1)(params, m) for impl, m in models.items()}
    np.testing.assert_allclose(results[impl][0], results["xla"][0], rtol=1e-5)
    _assert_trees_close(results[impl][1], results["xla"][1], rtol=1e-4)


def test_classifier_from_a_later_block_continues_a_trunk_that_stops_before_it():
    """The network split at its last block (scope ``last_block``): the first blocks' trunk returns its feature map,
    the rest of the classifier maps it to the whole classifier's logits with the same parameters."""
    config = NetworkConfig(filters=(4, 6, 8), convs_per_block=1, dense_units=8, conv_impl="xla")
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 30, 30, 2))
    params = Classifier(config).init(jax.random.PRNGKey(1), x)["params"]
    first = {name: value for name, value in params["trunk"].items() if name != "conv2_0"}
    feature_map = Trunk(config, stop_block=2).apply({"params": first}, x)
    assert feature_map.shape == (3, 6, 6, 6)
    end = {"trunk": {"conv2_0": params["trunk"]["conv2_0"]}, "head": params["head"]}
    logits = Classifier(config, first_block=2).apply({"params": end}, feature_map)
    assert np.allclose(logits, Classifier(config).apply({"params": params}, x), atol=1e-5)


def test_dropout_only_when_not_deterministic():
    x = _stamps((5, 9, 9, 4))
    model = Classifier(NetworkConfig(filters=(4,), convs_per_block=1, dense_units=64))
    params = jax.jit(model.init)(jax.random.key(0), x)
    apply = jax.jit(model.apply, static_argnames="deterministic")
    np.testing.assert_array_equal(apply(params, x), apply(params, x, deterministic=True))
    first, second, repeat = (
        apply(params, x, deterministic=False, rngs={"dropout": jax.random.key(seed)}) for seed in (1, 2, 1)
    )
    assert np.abs(first - second).max() > 1e-3
    np.testing.assert_array_equal(first, repeat)


def test_quantiles_equal_numpy_exactly():
    x = np.asarray(_stamps((3, 8, 9, 2))) * 1e3
    x[0, :4, :, 0] = -0.0  # ties, signed zeros
    x[1, ..., 1] = 2.5  # constant
    qs = (0.0, 0.1, 0.25, 0.5, 0.75, 0.99, 1.0)
    expected = np.moveaxis(np.quantile(x.reshape(3, -1, 2), qs, axis=1), 0, 1)
    np.testing.assert_allclose(quantiles(jnp.asarray(x), qs), expected, rtol=1e-6, atol=1e-4)


def test_normalise_gives_zero_median_and_unit_robust_scale():
    x = _stamps((3, 21, 20, 4)) * jnp.array([1.0, 5.0, 0.1, 100.0]) + jnp.array([10.0, -3.0, 0.0, 1e4])
    out = np.asarray(normalise(x, "stamp_channel"))
    flat = out.transpose(0, 3, 1, 2).reshape(3, 4, -1)  # an even number of pixels: interpolated quantiles
    np.testing.assert_allclose(np.median(flat, axis=-1), 0.0, atol=1e-5)
    q25, q75 = np.percentile(flat, [25, 75], axis=-1)
    np.testing.assert_allclose((q75 - q25) / IQR_PER_SIGMA, 1.0, rtol=1e-4)


def test_normalise_clips_and_keeps_constant_stamps_finite():
    x = jnp.zeros((2, 21, 21, 4)).at[0].set(7.0)
    x = x.at[1].set(_stamps((21, 21, 4))).at[1, 10, 10, 0].set(1e6)
    out = np.asarray(normalise(x, "stamp_channel", clip=20.0))
    np.testing.assert_array_equal(out[0], 0.0)
    assert out[1, 10, 10, 0] == 20.0
    np.testing.assert_array_equal(normalise(x, "none"), x)
    with pytest.raises(ValueError, match="normalisation"):
        normalise(x, "minmax")


@pytest.mark.parametrize("rows", [1, 37, 64, 100])
def test_normalise_on_host_equals_normalise_of_a_whole_batch_bit_for_bit(rows):
    x = np.asarray(_stamps((128, 21, 21, 4))) * 30.0 + 500.0
    whole = np.asarray(jax.jit(normalise)(jnp.asarray(x)))
    block = normalise_on_host(x[5:5 + rows])
    assert block.shape == (rows, 21, 21, 4) and block.dtype == np.float32
    np.testing.assert_array_equal(block, whole[5:5 + rows])
    np.testing.assert_array_equal(normalise_on_host(x[:3], "none"), x[:3])


def _dihedral_transforms(stamp):
    rotations = [np.rot90(stamp, k, axes=(0, 1)) for k in range(4)]
    return rotations + [r[::-1] for r in rotations]


def test_augment_applies_one_dihedral_transform_per_stamp():
    x = _stamps((64, 7, 7, 2))
    out = np.asarray(augment(jax.random.key(3), x))
    seen = set()
    for stamp, result in zip(np.asarray(x), out, strict=True):
        matches = [i for i, t in enumerate(_dihedral_transforms(stamp)) if np.array_equal(t, result)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == set(range(8))
    np.testing.assert_array_equal(out, augment(jax.random.key(3), x))
    assert not np.array_equal(out, augment(jax.random.key(4), x))


def test_augment_rejects_rectangular_stamps():
    with pytest.raises(ValueError, match="square"):
        augment(jax.random.key(0), jnp.zeros((2, 5, 7, 1)))

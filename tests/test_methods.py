"""Tests for bayesrb.model.methods: one interface for the three kinds, and the SVI machinery on a toy problem."""

import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bayesrb.bench.model import VARIANTS, convolution_lines, measure
from bayesrb.model.keys import named_key
from bayesrb.model.methods import (
    MeanFieldSVI,
    ModelSettings,
    TrainBatch,
    build_method,
    learning_rate_schedule,
    member_settings,
    pad_rows,
    samples_per_member,
    weight_prior,
)
from bayesrb.model.network import Classifier, NetworkConfig, conv_input_shapes, forward_flops, resolve_conv_impl

NETWORK = NetworkConfig(filters=(4, 8), convs_per_block=1, dense_units=16, dropout_rate=0.3)
VARIANTS_OF_KINDS = [{"kind": "bayesian"}, {"kind": "bayesian", "local_reparameterisation": True},
                     {"kind": "bayesian", "scope": "last_block"}, {"kind": "bayesian", "scope": "head"},
                     {"kind": "bayesian", "scope": "head", "local_reparameterisation": True},
                     {"kind": "mc_dropout"}, {"kind": "deterministic"}]


def random_batch(n: int = 12, size: int = 15, channels: int = 2) -> TrainBatch:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(n, size, size, channels)).astype(np.float32)
    y = (np.arange(n) % 3 == 0).astype(np.float32)
    mask = (np.arange(n) < n - 2).astype(np.float32)  # the last two rows are padding
    return TrainBatch(jnp.asarray(x), jnp.asarray(y), jnp.asarray(mask * (1 + y)), jnp.asarray(mask))


def all_finite(tree) -> bool:
    return all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(tree))


@pytest.mark.parametrize("variant", VARIANTS_OF_KINDS, ids=lambda variant: "-".join(map(str, variant.values())))
def test_every_kind_samples_trains_and_evaluates(variant):
    settings = ModelSettings(**variant, network=NETWORK, warmup_steps=0)  # the first step moves
    kind = settings.kind
    method = build_method(settings, n_train=100, total_steps=10)
    batch = random_batch()
    state = method.init(jax.random.PRNGKey(0), batch.x[:1])
    before = method.params(state)
    probs = np.asarray(method.sample_probs(before, batch.x, jax.random.PRNGKey(1), n_samples=7))
    assert probs.shape == (7, 12) and np.all((probs >= 0) & (probs <= 1))
    if kind == "deterministic":
        assert np.all(probs == probs[0])
    else:
        assert np.all(probs.std(axis=0) > 0)
    state, metrics = method.train_step(state, batch, jax.random.PRNGKey(2))
    after = method.params(state)
    assert np.isfinite(float(metrics["loss"])) and all_finite(after)
    changed = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True)]
    assert all(changed)  # every parameter received a finite, non-zero gradient
    sums = {name: float(value) for name, value in method.eval_sums(after, batch).items()}
    assert sums["count"] == 10 and sums["weight"] == pytest.approx(float(jnp.sum(batch.weight)))
    assert 0 <= sums["correct"] <= 10 and sums["nll"] > 0


def test_same_key_same_samples_and_head_scope_shares_the_trunk():
    method = build_method(ModelSettings(scope="head", network=NETWORK), n_train=100, total_steps=10)
    batch = random_batch()
    params = method.params(method.init(jax.random.PRNGKey(0), batch.x[:1]))
    assert "trunk$params" in params
    assert not any(name.startswith("head/") and "conv" in name for name in params)
    key = jax.random.PRNGKey(9)
    first = method.sample_probs(params, batch.x, key, n_samples=5)
    assert np.array_equal(first, method.sample_probs(params, batch.x, key, n_samples=5))
    assert not np.array_equal(first, method.sample_probs(params, batch.x, jax.random.PRNGKey(10), n_samples=5))


def test_head_scoring_by_local_reparameterisation_matches_weight_sampling():
    """Logits of every candidate, 4000 draws each way: means within 5 standard errors, stds within 5 %."""
    method = build_method(ModelSettings(scope="head", network=NETWORK), n_train=100, total_steps=10)
    batch = random_batch()
    params = method.params(method.init(jax.random.PRNGKey(0), batch.x[:1]))
    params = {name: jnp.full_like(value, 0.3) if name.endswith("_scale") else value for name, value in params.items()}
    x = method.prepare(batch.x)
    keys = jax.random.split(jax.random.PRNGKey(1), 4000)
    moments, trunk_features = method.features(params, x), method.svi.features(params, x)
    reparameterised = np.asarray(jax.vmap(lambda key: method.sample_logits(params, moments, key))(keys))
    weight_sampled = np.asarray(jax.vmap(lambda key: method.svi.sample_logits(params, trunk_features, key))(keys))
    std = weight_sampled.std(axis=0)
    assert np.all(std > 1.0)  # a real spread to compare
    assert np.all(np.abs(reparameterised.mean(axis=0) - weight_sampled.mean(axis=0)) < 5 * np.sqrt(2 / 4000) * std)
    assert np.allclose(reparameterised.std(axis=0), std, rtol=0.05)


def test_bayesian_guide_starts_at_the_flax_initialisation():
    settings = ModelSettings(network=NETWORK, guide_init_scale=0.003)
    method = build_method(settings, n_train=100, total_steps=10)
    params = method.params(method.init(jax.random.PRNGKey(0), random_batch().x[:1]))
    (site,) = [name[:-len("_loc")] for name in params if name.endswith("conv0_0.kernel_loc")]
    assert site.startswith("net/trunk.")
    kernel = np.asarray(params[f"{site}_loc"])
    assert kernel.shape == (3, 3, 2, 4) and 0.15 < kernel.std() < 0.35  # lecun normal: std 1/sqrt(18) = 0.24
    assert np.allclose(params[f"{site}_scale"], 0.003)


@pytest.mark.parametrize("scope", ["full", "head"])
def test_scale_learning_rate_factor_speeds_up_only_the_variational_scales(scope):
    """One Adam step moves every parameter by about its learning rate: with ``scale_learning_rate_factor: 10`` the
    guide's standard deviations and the learned prior scales move 10 times as far (within 2 %: the constraint's
    curvature over the step), every other parameter exactly as far as with 1."""
    batch = random_batch()
    moves = []
    for factor in (1.0, 10.0):
        settings = ModelSettings(scope=scope, network=NETWORK, prior="learned", warmup_steps=0, learning_rate=1e-4,
                                 scale_learning_rate_factor=factor)
        method = build_method(settings, n_train=100, total_steps=10)
        state = method.init(jax.random.PRNGKey(0), batch.x[:1])
        before = method.params(state)
        after = method.params(method.train_step(state, batch, jax.random.PRNGKey(1))[0])
        moves.append(jax.tree.map(lambda a, b: np.abs(np.asarray(a) - np.asarray(b)), after, before))
    for name in moves[0]:
        if name.endswith(("_scale", "$prior")):
            assert np.allclose(moves[1][name], 10 * moves[0][name], rtol=0.02), name
        else:
            assert all(np.array_equal(a, b) for a, b in zip(*map(jax.tree.leaves, (moves[0][name], moves[1][name])),
                                                             strict=True)), name
    assert any(name.endswith("$prior") for name in moves[0]) and any(name.endswith("_scale") for name in moves[0])


def test_learning_rate_schedules():
    cosine = learning_rate_schedule(ModelSettings(learning_rate=0.1, warmup_steps=10), total_steps=110)
    assert [float(cosine(s)) for s in (0, 5, 10, 60, 110)] == pytest.approx([0, 0.05, 0.1, 0.05, 0], abs=1e-6)
    constant = learning_rate_schedule(ModelSettings(learning_rate=0.1, lr_schedule="constant", warmup_steps=4), 50)
    assert [float(constant(s)) for s in (0, 2, 4, 40)] == pytest.approx([0, 0.05, 0.1, 0.1])


def test_model_settings_reject_bad_values():
    with pytest.raises(ValueError, match="model.kind must be one of"):
        ModelSettings(kind="ensemble")
    with pytest.raises(ValueError, match="model.prior_scale must be positive"):
        ModelSettings(prior_scale=0)


def test_helpers():
    padded = pad_rows(np.ones((2, 3), np.float32), 4)
    assert padded.shape == (4, 3) and padded[2:].sum() == 0 and padded.dtype == np.float32
    key = jax.random.PRNGKey(0)
    assert np.array_equal(named_key(key, "train"), named_key(key, "train"))
    assert not np.array_equal(named_key(key, "train"), named_key(key, "init"))


class Logistic(nn.Module):
    """Logistic regression as a Flax module: features (N, D) -> logits (N,)."""

    @nn.compact
    def __call__(self, x):
        return nn.Dense(1, name="dense")(x)[:, 0]


def logistic_regression_data(n: int = 5000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` examples ``(x, y)`` of a known logistic regression, and its true (weights, bias)."""
    weights, bias = np.array([1.5, -2.0, 0.5]), 0.3
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(x @ weights + bias)))).astype(np.float32)
    return x, y, np.append(weights, bias)


def fit_logistic(x: np.ndarray, y: np.ndarray, prior, kl_weight: float = 1.0, steps: int = 3000,
                 local_reparameterisation: bool = False) -> dict:
    """Minibatch SVI (batches of 500) of :class:`Logistic` on ``(x, y)``; returns the fitted parameters."""
    n, batch_size = len(x), 500
    svi = MeanFieldSVI(Logistic(), name="net", prior=prior, guide_init_scale=0.01, n_train=n, kl_weight=kl_weight,
                       optimizer=optax.adam(optax.exponential_decay(0.02, steps, 0.05)),
                       local_reparameterisation=local_reparameterisation)
    state = svi.init(jax.random.PRNGKey(0), jnp.asarray(x[:batch_size]))
    ones = jnp.ones(batch_size)
    update = jax.jit(svi.update)
    rng = np.random.default_rng(1)
    for step in range(steps):
        rows = rng.choice(n, batch_size, replace=False)
        state, _ = update(state, x[rows], y[rows], ones, ones, jax.random.PRNGKey(step))
    return svi.params(state)


def guide_moments(params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and standard deviations of (weights, bias) of a fitted :class:`Logistic`."""
    mean = np.append(np.asarray(params["net/dense.kernel_loc"])[:, 0], params["net/dense.bias_loc"])
    std = np.append(np.asarray(params["net/dense.kernel_scale"])[:, 0], params["net/dense.bias_scale"])
    return mean, std


@pytest.mark.parametrize("local_reparameterisation", [False, True])
def test_svi_recovers_logistic_regression_coefficients(local_reparameterisation):
    """Minibatch SVI with the CNN's code path (MeanFieldSVI, random_flax_module, likelihood scaled by
    n_train / batch; the ELBO of TraceMeanField_ELBO or its locally reparameterised estimate, the logistic
    regression being one dense layer) on 5,000 examples of a known logistic regression. Tolerances: every posterior
    mean within 0.15 (absolute) of the true coefficient and within 0.5 Laplace std of the maximum-likelihood
    estimate (the prior N(0, 10^2) is negligible); every posterior std within a factor 1.5 of the Laplace std at the
    MLE (a wrong minibatch scale would be off by sqrt(n_train / batch) = 3.2)."""
    x, y, truth = logistic_regression_data()
    mean, std = guide_moments(fit_logistic(x, y, weight_prior("fixed", 10.0),
                                           local_reparameterisation=local_reparameterisation))
    assert np.all(np.abs(mean - truth) < 0.15), mean
    mle, laplace_std = logistic_mle(x, y)
    assert np.all(np.abs(mean - mle) < 0.5 * laplace_std), (mean, mle, laplace_std)
    assert np.all((std > laplace_std / 1.5) & (std < 1.5 * laplace_std)), (std, laplace_std)


def elbo_draws(prior: str, local_reparameterisation: bool) -> tuple[np.ndarray, float]:
    """2,000 draws of the CNN's negative ELBO estimate at one guide (every std 0.3, so that the weights' noise
    matters), and the mean variance over 400 draws of its gradient with respect to the hidden kernel's means."""
    x = random_batch(n=64, size=9).x
    y = jnp.asarray((np.arange(64) % 2).astype(np.float32))
    network = NetworkConfig(filters=(4,), convs_per_block=1, dense_units=16, conv_impl="xla")  # vmapped
    svi = MeanFieldSVI(Classifier(network), name="net", prior=weight_prior(prior, 1.0), guide_init_scale=0.3,
                       n_train=64, optimizer=optax.adam(1e-3), local_reparameterisation=local_reparameterisation)
    params = svi.params(svi.init(jax.random.PRNGKey(0), x))

    def loss(p, key):
        return svi.svi.loss.loss(key, p, svi.model, svi.guide, x, y, jnp.ones(64))

    keys = jax.random.split(jax.random.PRNGKey(1), 2000)
    losses = np.asarray(jax.vmap(lambda key: loss(params, key))(keys))
    gradients = jax.vmap(lambda key: jax.grad(loss)(params, key)["net/head.hidden.kernel_loc"])(keys[:400])
    return losses, float(np.mean(np.var(np.asarray(gradients), axis=0)))


@pytest.mark.parametrize("prior", ["fixed", "learned"])
def test_local_reparameterisation_estimates_the_same_elbo_with_less_noisy_gradients(prior):
    """Weight draws against locally reparameterised draws: mean negative ELBOs within 4 standard errors of their
    difference; the gradient variance at least 4 times lower with local reparameterisation (about 20 times here)."""
    (sampled, sampled_variance), (local, local_variance) = (elbo_draws(prior, flag) for flag in (False, True))
    standard_error = np.sqrt(np.var(sampled) / len(sampled) + np.var(local) / len(local))
    assert abs(sampled.mean() - local.mean()) < 4 * standard_error, (sampled.mean(), local.mean())
    assert local_variance < sampled_variance / 4, (local_variance, sampled_variance)


def test_kl_weight_tempers_the_posterior_by_its_square_root():
    """KL weight 1/4 fits the posterior of the likelihood squared: the same means (the prior is negligible) and
    standard deviations half those of the untempered fit (within 15 %: the mean-field stds scale as 1/sqrt of the
    likelihood's curvature; 8,000 steps, as the stds converge slower than the means)."""
    x, y, _ = logistic_regression_data()
    prior = weight_prior("fixed", 10.0)
    mean, std = guide_moments(fit_logistic(x, y, prior, steps=8000))
    tempered_mean, tempered_std = guide_moments(fit_logistic(x, y, prior, kl_weight=0.25, steps=8000))
    _, laplace_std = logistic_mle(x, y)
    assert np.all(np.abs(tempered_mean - mean) < 0.5 * laplace_std), (tempered_mean, mean, laplace_std)
    ratio = tempered_std / std
    assert np.all((ratio > 0.5 / 1.15) & (ratio < 0.5 * 1.15)), ratio


def test_learned_prior_scale_reaches_the_empirical_bayes_optimum():
    """``prior: learned`` fits one prior scale per weight tensor by maximising the ELBO; at the optimum the prior
    variance of a tensor equals the mean of its posterior second moments (mean² + std²), the analytic maximiser of
    the KL term. Checked for the kernel (3 weights) to 10 %, starting from a prior scale of 10."""
    x, y, _ = logistic_regression_data()
    params = fit_logistic(x, y, weight_prior("learned", 10.0), steps=4000)
    kernel_mean = np.asarray(params["net/dense.kernel_loc"])
    kernel_std = np.asarray(params["net/dense.kernel_scale"])
    optimum = np.sqrt(np.mean(kernel_mean**2 + kernel_std**2))
    learned = float(params["net/dense.kernel$prior"])
    assert learned == pytest.approx(optimum, rel=0.1), (learned, optimum)
    assert learned < 5.0


def logistic_mle(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood (weights, bias) of a logistic regression by Newton's method, and its Laplace std."""
    design = np.column_stack([x, np.ones(len(x))]).astype(np.float64)
    beta = np.zeros(design.shape[1])
    for _ in range(25):
        p = 1 / (1 + np.exp(-design @ beta))
        hessian = design.T @ (design * (p * (1 - p))[:, None])
        beta += np.linalg.solve(hessian, design.T @ (y - p))
    return beta, np.sqrt(np.diag(np.linalg.inv(hessian)))


def test_fan_in_prior_matches_the_initialisation_scale_of_each_kernel():
    prior = weight_prior("fan_in", 2.0)
    assert prior("net/trunk/conv0_0.kernel", (3, 3, 4, 16)).scale == pytest.approx(2.0 / 6.0)  # fan_in 36
    assert prior("net/head/hidden.kernel", (3200, 256)).scale == pytest.approx(2.0 / np.sqrt(3200))
    assert prior("net/head/hidden.bias", (256,)).scale == pytest.approx(2.0)
    assert weight_prior("fixed", 0.5).scale == pytest.approx(0.5)
    with pytest.raises(ValueError, match="model.kl_weight must be positive"):
        ModelSettings(kl_weight=0)
    with pytest.raises(ValueError, match="model.prior must be one of"):
        ModelSettings(prior="flat")


@pytest.mark.parametrize("name", list(VARIANTS))
def test_speed_benchmark_times_training_and_scoring_of_every_variant(name):
    overrides = VARIANTS[name] | {"batch_size": 8, "network": {"filters": [4], "dense_units": 8}}
    result = measure(name, overrides, stamp_shape=(11, 11, 2), steps=3, n_candidates=40, n_samples=3)
    flops = forward_flops(NetworkConfig(filters=(4,), dense_units=8), (11, 11, 2))
    assert result.name == name
    assert result.train_stamps_per_s > 0 and result.score_seconds > 0
    assert result.train_gflops == pytest.approx(3 * flops * result.train_stamps_per_s / 1e9)
    if resolve_conv_impl("auto") == "onednn":
        assert 0 < result.onednn_share < 1  # the convolutions, and XLA's work around them


def test_convolution_inputs_are_listed_layer_by_layer():
    assert conv_input_shapes(NetworkConfig(), (55, 55, 4)) == [(55, 55, 4, 16), (53, 53, 16, 16), (25, 25, 16, 32),
                                                                 (23, 23, 32, 32)]


@pytest.mark.skipif(resolve_conv_impl("auto") != "onednn", reason="oneDNN's convolutions cannot run here")
def test_each_convolution_of_the_network_is_timed_in_its_three_calls():
    lines = list(convolution_lines(batch_size=2, repeats=1))
    assert [line.split(":")[0] for line in lines] == ["conv 55x55x4->16", "conv 53x53x16->16", "conv 25x25x16->32",
                                                      "conv 23x23x32->32"]
    for line in lines:
        times = re.findall(r"(forward|input gradient|kernel gradient) ([0-9.]+) ms", line)
        assert [name for name, _ in times] == ["forward", "input gradient", "kernel gradient"]
        assert all(float(ms) > 0 for _, ms in times)


def test_the_share_of_a_training_step_in_onednn_is_none_without_onednn():
    overrides = {"kind": "deterministic", "batch_size": 8,
                 "network": {"filters": [4], "dense_units": 8, "conv_impl": "matmul"}}
    result = measure("deterministic", overrides, stamp_shape=(11, 11, 2), steps=2, n_candidates=8, n_samples=1)
    assert result.onednn_share is None and result.train_stamps_per_s > 0


def test_ensemble_members_get_their_own_seeds_and_share_the_samples():
    settings = ModelSettings(kind="bayesian", ensemble_size=3, seed=3)
    members = [member_settings(settings, member) for member in range(3)]
    assert len({member.seed for member in members}) == 3 and all(member.ensemble_size == 1 for member in members)
    assert members[0] == member_settings(settings, 0) and members[0].kind == "bayesian"
    assert samples_per_member(settings, 10) == 4  # 12 draws in all, at least the 10 asked for
    assert samples_per_member(ModelSettings(kind="deterministic", ensemble_size=5), 100) == 1
    with pytest.raises(ValueError, match="ensemble_size"):
        ModelSettings(ensemble_size=0)

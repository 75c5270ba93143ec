"""Local reparameterisation (Kingma, Salimans & Welling 2015) of the dense layers of a mean-field Normal network.

With independent Normal weights ``W ~ N(mu, sigma^2)`` and ``b ~ N(mu_b, sigma_b^2)``, the pre-activations
``x @ W + b`` of a dense layer, given its input ``x``, are exactly Normal and independent across units: mean
``x @ mu + mu_b``, variance ``x**2 @ sigma**2 + sigma_b**2``. Drawing them instead of the weights gives every example
the same distribution, with draws independent between the examples of a batch instead of shared by them: a Monte
Carlo estimate of the expected log-likelihood with the same expectation and a lower variance, for two matrix
products per layer instead of one weight draw and one product. (Convolutions are not treated this way: their
pre-activations at different pixels of one stamp share weights, so independent draws per pixel would change the
estimate's expectation.)

:class:`LocalReparameterisedELBO` is the ELBO of :class:`bayesrb.model.methods.MeanFieldSVI` estimated this way:
its loss is the same function of the guide parameters as :class:`numpyro.infer.TraceMeanField_ELBO`'s (analytic
KL; likelihood scaled per example), so a model trained with it is the same kind of posterior and is scored the
same way.
"""

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
import optax
from numpyro.infer.elbo import ELBO

from bayesrb.model.keys import named_key


class GaussianActivations(NamedTuple):
    """Mean and standard deviation ``(..., U)`` of Normal pre-activations of a layer, per example and unit."""

    mean: jax.Array
    std: jax.Array

    def draw(self, key: jax.Array) -> jax.Array:
        """One independent draw per example and unit."""
        return self.mean + self.std * jax.random.normal(key, self.mean.shape)


def dense_moments(params: Mapping[str, jax.Array], site: str, x: jax.Array) -> GaussianActivations:
    """Moments of the pre-activations of the mean-field Normal dense layer ``site`` for inputs ``x`` ``(..., D)``.

    Parameters
    ----------
    params : mapping
        Guide parameters: ``"{site}.kernel_loc"``, ``"{site}.kernel_scale"`` ``(D, U)``, ``"{site}.bias_loc"`` and
        ``"{site}.bias_scale"`` ``(U,)``.
    site : str
        The layer's site prefix, e.g. ``"net/head.hidden"``.
    x : jax.Array
        The layer's inputs.
    """
    mean = x @ params[f"{site}.kernel_loc"] + params[f"{site}.bias_loc"]
    variance = jnp.square(x) @ jnp.square(params[f"{site}.kernel_scale"]) + jnp.square(params[f"{site}.bias_scale"])
    return GaussianActivations(mean, jnp.sqrt(variance))


def _dense_path(context: nn.module.InterceptorContext) -> str | None:
    """The dot-joined path (``"head.hidden"``) of an intercepted :class:`flax.linen.Dense` call, else None."""
    if isinstance(context.module, nn.Dense) and context.method_name == "__call__":
        return ".".join(context.module.path)
    return None


def dense_layer_paths(module: nn.Module, params: Any, x: jax.Array) -> frozenset[str]:
    """Paths (``"head.hidden"``) of the :class:`flax.linen.Dense` layers that ``module.apply`` calls on ``x``.

    Found by tracing shapes only; nothing is computed.
    """
    paths = set()

    def record(next_fun, args, kwargs, context):
        path = _dense_path(context)
        if path is not None:
            paths.add(path)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        jax.eval_shape(lambda p, inputs: module.apply({"params": p}, inputs), params, x)
    return frozenset(paths)


class LocalReparameterisedELBO(ELBO):
    """The negative ELBO of a :class:`~bayesrb.model.methods.MeanFieldSVI`, with dense pre-activations drawn.

    Convolution weights are drawn from the guide once per call (shared by the batch, as
    :class:`numpyro.infer.TraceMeanField_ELBO` does); the dense layers' pre-activations are drawn per example
    (module docstring); the KL term of every weight tensor is analytic and weighted by the network's
    ``kl_weight``. Called by :class:`numpyro.infer.SVI` with the model's arguments ``(x, y, obs_scale)``; the model
    and guide themselves are not run.

    Parameters
    ----------
    network : MeanFieldSVI
        The variational network (read at every call, so that it may be initialised after this is built).
    """

    def __init__(self, network):
        super().__init__()
        self.network = network

    def loss(self, rng_key, param_map, model, guide, x, y, obs_scale):
        """The negative ELBO estimate for one batch (the signature of :meth:`numpyro.infer.elbo.ELBO.loss`)."""
        net = self.network
        logits = self.sample_logits(param_map, net.features(param_map, x), rng_key)
        log_likelihood = -jnp.sum(obs_scale * optax.sigmoid_binary_cross_entropy(logits, y))
        return net.kl_weight * self.kl_divergence(param_map) - log_likelihood

    def sample_logits(self, params: Mapping[str, Any], features: jax.Array, key: jax.Array) -> jax.Array:
        """Logits with convolution weights drawn once and dense pre-activations drawn per example."""
        net = self.network
        weights = {}
        for site, shape in net.site_shapes.items():
            loc = params[f"{site}_loc"]
            if _layer(site) in self._dense_sites():
                weights[site] = loc  # unused: the interceptor below draws the layer's output
            else:
                weights[site] = loc + params[f"{site}_scale"] * jax.random.normal(named_key(key, site), shape)

        def local_dense(next_fun, args, kwargs, context):
            path = _dense_path(context)
            if path is None:
                return next_fun(*args, **kwargs)
            site = f"{net.name}/{path}"
            return dense_moments(params, site, args[0]).draw(named_key(key, site))

        with nn.intercept_methods(local_dense):
            return net.body.apply({"params": net.body_params(weights)}, features)

    def kl_divergence(self, params: Mapping[str, Any]) -> jax.Array:
        """Sum over every weight of KL(guide || prior), the prior's parameters taken from ``params``."""
        net = self.network
        total = jnp.zeros((), jnp.float32)
        with numpyro.handlers.substitute(data=params), numpyro.handlers.scope(prefix=net.name):
            for site, shape in net.site_shapes.items():
                prior = _prior_of(net.prior, site.removeprefix(f"{net.name}/"), shape)
                guide = dist.Normal(params[f"{site}_loc"], params[f"{site}_scale"])
                total = total + jnp.sum(dist.kl_divergence(guide, prior.expand(shape)))
        return total

    def _dense_sites(self) -> frozenset[str]:
        return frozenset(f"{self.network.name}/{path}" for path in self.network.dense_paths)


def _layer(site: str) -> str:
    """``"net/head.hidden"`` of the site ``"net/head.hidden.kernel"``."""
    return site.rsplit(".", 1)[0]


def _prior_of(prior: dist.Distribution | Callable, name: str, shape: tuple[int, ...]) -> dist.Distribution:
    """The prior of one weight tensor, as :func:`numpyro.contrib.module.random_flax_module` resolves it."""
    return prior if isinstance(prior, dist.Distribution) else prior(name, shape)

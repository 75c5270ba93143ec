"""The three model kinds behind one interface, so that one training loop and one scorer serve them all.

``bayesian``
    Mean-field Normal variational inference (NumPyro SVI, :class:`MeanFieldSVI`) over the
    weights of the network (scope ``"full"``), or over the weights of its last convolution block and dense head
    (``"last_block"``) or of the head only (``"head"``), after the other layers trained as point estimates.
``mc_dropout``
    The method of gotorb: the plain network trained with dropout, scored with dropout switched on.
``deterministic``
    The plain network without dropout; its "samples" are all the same prediction.

Every method is a :class:`Method`: ``init`` builds the training state, the jitted ``train_step`` takes one
optimisation step, ``params`` extracts what scoring needs from the state, the jitted ``eval_sums`` measures the
validation loss and accuracy of the posterior-mean (or deterministic) prediction, and the jitted ``sample_probs``
draws posterior predictive probabilities (one ``lax.scan`` step per sample; whatever does not depend on the draw,
such as the trunk features when only the head is random, is computed once per batch). Stamps are
``(B, H, W, C)`` indexed ``[stamp, row, col, channel]``. ``sample_probs`` takes them raw and normalises them
(:meth:`Method.prepare`); ``train_step`` and ``eval_sums`` take them normalised, as the training input pipeline
serves them (:func:`bayesrb.model.preprocess.normalise_on_host`, once per stamp, not once per epoch), and
``train_step`` augments them.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from numpyro.contrib.module import flax_module, random_flax_module
from numpyro.distributions import constraints
from numpyro.infer import SVI, TraceMeanField_ELBO

from bayesrb.model.keys import named_key
from bayesrb.model.local_reparam import GaussianActivations, LocalReparameterisedELBO, dense_layer_paths, dense_moments
from bayesrb.model.network import Classifier, Head, NetworkConfig, Trunk
from bayesrb.model.preprocess import NORMALISATIONS, augment, normalise

__all__ = [
    "KINDS",
    "SCOPES",
    "PRIORS",
    "weight_prior",
    "ModelSettings",
    "TrainBatch",
    "Method",
    "PointEstimateMethod",
    "BayesianMethod",
    "BayesianHeadMethod",
    "bayesian_split",
    "MeanFieldSVI",
    "build_method",
    "learning_rate_schedule",
    "variational_optimizer",
    "member_settings",
    "samples_per_member",
    "pad_rows",
]

KINDS = ("bayesian", "mc_dropout", "deterministic")
SCOPES = ("full", "last_block", "head")
PRIORS = ("fixed", "fan_in", "learned")
LR_SCHEDULES = ("cosine", "constant")
TRUNK_SITE = "trunk"  # NumPyro name of the point-estimated part (scopes "last_block", "head"): "trunk$params"


@dataclass(frozen=True)
class ModelSettings:
    """The ``model:`` section of the config.

    Parameters
    ----------
    kind : {"bayesian", "mc_dropout", "deterministic"}
        Which method.
    scope : {"full", "last_block", "head"}
        For ``bayesian``: variational posterior over all weights, over the last convolution block and the head, or
        over the head only; the layers before are point estimates (:func:`bayesian_split`). Ignored by the other
        kinds.
    network : NetworkConfig
        The architecture.
    normalisation : str
        Stamp normalisation mode (:func:`bayesrb.model.preprocess.normalise`).
    augment_flips : bool
        Whether training steps apply random flips and 90-degree rotations.
    prior : {"fixed", "fan_in", "learned"}
        The zero-mean Normal prior on the Bayesian weights: standard deviation ``prior_scale`` for every weight
        (``fixed``), or ``prior_scale / sqrt(fan_in)`` for kernels, the scale of their initialisation, and
        ``prior_scale`` for biases (``fan_in``), or one standard deviation per weight tensor, starting at
        ``prior_scale`` and fitted with the guide by maximising the ELBO (``learned``: empirical Bayes;
        :func:`weight_prior`).
    prior_scale : float
        Standard deviation of the prior (see ``prior``).
    kl_weight : float
        Weight of the KL term of the ELBO (``bayesian`` only). Below 1 the posterior is tempered: the fitted
        posterior is that of the likelihood raised to ``1 / kl_weight`` (the data counted ``1 / kl_weight``
        times), narrower than the Bayesian one, a modelling choice to be reported with the results.
    guide_init_scale : float
        Initial standard deviation of every weight in the variational guide.
    scale_learning_rate_factor : float
        ``bayesian`` only: the learning rate of the guide's standard deviations and of the learned prior scales, as
        a multiple of ``learning_rate`` (:func:`variational_optimizer`).
    local_reparameterisation : bool
        ``bayesian`` only: training draws the dense layers' pre-activations per stamp instead of their weights per
        batch (:mod:`bayesrb.model.local_reparam`): the same ELBO with lower-variance gradients; scoring is
        unchanged.
    seed : int
        Root of every random stream of training (weights, data order, augmentation, SVI draws).
    ensemble_size : int
        Networks trained from different seeds and scored together (a deep ensemble when above 1;
        :func:`member_settings`).
    batch_size : int
        Stamps per training (and validation) step.
    epochs : int
        Maximum number of epochs.
    learning_rate : float
        Peak learning rate of Adam.
    lr_schedule : {"cosine", "constant"}
        Cosine decay to zero over all ``epochs``, or constant; both after a linear warm-up.
    warmup_steps : int
        Steps of linear warm-up from zero.
    patience : int
        Epochs without a lower validation loss before training stops.
    class_weighting : bool
        Whether the loss weights the classes to balance them.
    """

    kind: str = "bayesian"
    scope: str = "full"
    network: NetworkConfig = field(default_factory=NetworkConfig)
    normalisation: str = "stamp_channel"
    augment_flips: bool = True
    prior: str = "fixed"
    prior_scale: float = 1.0
    kl_weight: float = 1.0
    guide_init_scale: float = 0.01
    scale_learning_rate_factor: float = 1.0
    local_reparameterisation: bool = False
    seed: int = 3
    ensemble_size: int = 1
    batch_size: int = 128
    epochs: int = 30
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    warmup_steps: int = 100
    patience: int = 10
    class_weighting: bool = True

    def __post_init__(self):
        choices = {"kind": KINDS, "scope": SCOPES, "normalisation": NORMALISATIONS, "lr_schedule": LR_SCHEDULES,
                   "prior": PRIORS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"model.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        positive = ("prior_scale", "kl_weight", "guide_init_scale", "batch_size", "epochs", "learning_rate",
                    "ensemble_size", "scale_learning_rate_factor")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"model.{name} must be positive, got {getattr(self, name)!r}")
        if self.warmup_steps < 0 or self.patience < 1:
            raise ValueError(f"model.warmup_steps must be >= 0 and model.patience >= 1, got {self.warmup_steps} "
                             f"and {self.patience}")


class TrainBatch(NamedTuple):
    """A labelled batch padded to a fixed size (a pytree, so that jitted steps never re-trace).

    Attributes
    ----------
    x : jax.Array
        ``float32`` ``(B, H, W, C)`` normalised stamps (:meth:`Method.prepare`), ``[stamp, row, col,
        channel]``; padding rows are zeros.
    y : jax.Array
        ``float32`` ``(B,)`` labels, 1 real, 0 bogus.
    weight : jax.Array
        ``float32`` ``(B,)`` class weights; 0 on padding rows.
    mask : jax.Array
        ``float32`` ``(B,)``: 1 on data rows, 0 on padding rows.
    """

    x: jax.Array
    y: jax.Array
    weight: jax.Array
    mask: jax.Array


def member_settings(settings: ModelSettings, member: int) -> ModelSettings:
    """The settings of one member of an ensemble: a single network with the member's own seed.

    The seed is drawn from ``SeedSequence([settings.seed, member])``, so members differ in initialisation,
    mini-batch order, augmentation and sampling, and no member shares the seed of another experiment by accident.
    """
    member_seed = int(np.random.SeedSequence([settings.seed, member]).generate_state(1)[0] >> 1)
    return replace(settings, seed=member_seed, ensemble_size=1)


def samples_per_member(settings: ModelSettings, n_samples: int) -> int:
    """Posterior samples each member of an ensemble draws for ``n_samples`` in all: one for deterministic nets."""
    return 1 if settings.kind == "deterministic" else math.ceil(n_samples / settings.ensemble_size)


def pad_rows(array: np.ndarray, size: int) -> np.ndarray:
    """Pad ``array`` with zero rows along axis 0 up to ``size`` rows.

    Raises
    ------
    ValueError
        If ``array`` has more than ``size`` rows.
    """
    if len(array) > size:
        raise ValueError(f"cannot pad {len(array)} rows to {size}")
    if len(array) == size:
        return array
    return np.concatenate([array, np.zeros((size - len(array), *array.shape[1:]), array.dtype)])


def learning_rate_schedule(settings: ModelSettings, total_steps: int) -> optax.Schedule:
    """Linear warm-up from 0 over ``warmup_steps``, then constant or cosine decay to 0 at ``total_steps``."""
    peak, warmup = settings.learning_rate, settings.warmup_steps
    if settings.lr_schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, max(total_steps, warmup + 1), end_value=0.0)
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), optax.constant_schedule(peak)], [warmup])


def variational_optimizer(settings: ModelSettings, total_steps: int) -> optax.GradientTransformation:
    """Adam on the schedule of :func:`learning_rate_schedule`, faster on the variational scales if configured.

    The guide's standard deviations (NumPyro params ``*_scale``) and the learned prior scales (``*$prior``) get
    ``scale_learning_rate_factor`` times the learning rate. Adam moves every parameter by about the learning rate
    per step whatever its gradient, so at the default rate the scales move by at most a few tenths (in softplus
    space) over a few hundred steps, while the KL term keeps pulling them (README, "The variational posterior").
    With a factor of 1 this is plain Adam.
    """
    schedule = learning_rate_schedule(settings, total_steps)
    factor = settings.scale_learning_rate_factor
    if factor == 1:
        return optax.adam(schedule)
    transforms = {"scale": optax.adam(lambda step: factor * schedule(step)), "other": optax.adam(schedule)}
    return optax.multi_transform(transforms, param_labels=_scale_labels)


def _scale_labels(params: Mapping[str, Any]) -> dict[str, Any]:
    """``"scale"`` for the variational scales and prior scales among NumPyro params, ``"other"`` for the rest."""
    return {name: jax.tree.map(lambda _, name=name: "scale" if name.endswith(("_scale", "$prior")) else "other", value)
            for name, value in params.items()}


def weighted_nll_sums(logits: jax.Array, batch: TrainBatch) -> dict[str, jax.Array]:
    """Sums over a batch for the class-weighted Bernoulli NLL and the accuracy (threshold logit 0).

    Returns
    -------
    dict
        ``nll`` (sum of weight x NLL), ``weight`` (sum of weights), ``correct`` and ``count`` (data rows).
    """
    nll = optax.sigmoid_binary_cross_entropy(logits, batch.y)
    correct = (logits > 0) == (batch.y > 0.5)
    return {"nll": jnp.sum(batch.weight * nll), "weight": jnp.sum(batch.weight),
            "correct": jnp.sum(batch.mask * correct), "count": jnp.sum(batch.mask)}


class Method:
    """The interface shared by the three kinds (a base class; see the module docstring).

    Parameters
    ----------
    settings : ModelSettings
        The model settings.

    Attributes
    ----------
    train_step : callable
        Jitted ``(state, batch: TrainBatch, key) -> (state, metrics)`` on normalised stamps (the batch is
        augmented as configured); ``metrics["loss"]`` is the per-stamp
        training loss (for ``bayesian``: the negative ELBO divided by the number of training stamps; the
        ``elbo`` metric is the ELBO itself).
    eval_sums : callable
        Jitted ``(params, batch: TrainBatch) -> sums`` (:func:`weighted_nll_sums`) of the posterior-mean
        (or deterministic) prediction for normalised stamps.
    sample_probs : callable
        Jitted ``(params, x, key, n_samples) -> (n_samples, B)`` posterior predictive probabilities of real for raw
        stamps ``x`` ``(B, H, W, C)``; ``n_samples`` is static.
    """

    def __init__(self, settings: ModelSettings):
        self.settings = settings
        self.train_step = jax.jit(self._train_step)
        self.eval_sums = jax.jit(self._eval_sums)
        self.sample_probs = jax.jit(self._sample_probs, static_argnames="n_samples")

    def init(self, key: jax.Array, example_x: jax.Array) -> Any:
        """Return the initial training state; normalised stamps ``example_x`` ``(B, H, W, C)`` fix the input shape."""
        raise NotImplementedError

    def params(self, state: Any) -> Any:
        """Return the parameters that scoring and validation need from a training state."""
        raise NotImplementedError

    def features(self, params: Any, x: jax.Array) -> jax.Array:
        """Return what :meth:`sample_logits` takes from normalised stamps: computed once for all samples."""
        raise NotImplementedError

    def sample_logits(self, params: Any, features: jax.Array, key: jax.Array) -> jax.Array:
        """Return the logits ``(B,)`` of one posterior sample drawn with ``key``."""
        raise NotImplementedError

    def mean_logits(self, params: Any, x: jax.Array) -> jax.Array:
        """Return the logits ``(B,)`` of the posterior-mean (or deterministic) network for normalised stamps."""
        raise NotImplementedError

    def _train_step(self, state: Any, batch: TrainBatch, key: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
        raise NotImplementedError

    def prepare(self, x: jax.Array) -> jax.Array:
        """Normalise raw stamps as configured."""
        return normalise(x, self.settings.normalisation)

    def training_inputs(self, x: jax.Array, key: jax.Array) -> jax.Array:
        """Apply random flips and rotations drawn with ``key`` to normalised stamps, if configured."""
        return augment(key, x) if self.settings.augment_flips else x

    def _eval_sums(self, params: Any, batch: TrainBatch) -> dict[str, jax.Array]:
        return weighted_nll_sums(self.mean_logits(params, batch.x), batch)

    def _sample_probs(self, params: Any, x: jax.Array, key: jax.Array, n_samples: int) -> jax.Array:
        features = self.features(params, self.prepare(x))

        def draw(carry, sample_key):
            return carry, jax.nn.sigmoid(self.sample_logits(params, features, sample_key))

        return jax.lax.scan(draw, None, jax.random.split(key, n_samples))[1]


class OptaxState(NamedTuple):
    """Training state of the point-estimate methods."""

    params: Any
    opt_state: Any


class PointEstimateMethod(Method):
    """``deterministic`` (``dropout=False``) or ``mc_dropout`` (``dropout=True``): Adam on the class-weighted NLL.

    Parameters
    ----------
    settings : ModelSettings
        The model settings.
    optimizer : optax.GradientTransformation
        Adam with the learning-rate schedule.
    dropout : bool
        Whether dropout acts in training and in the posterior samples (Monte Carlo dropout).
    """

    def __init__(self, settings: ModelSettings, optimizer: optax.GradientTransformation, *, dropout: bool):
        super().__init__(settings)
        self.optimizer, self.dropout = optimizer, dropout
        self.classifier = Classifier(settings.network)
        self.trunk, self.head = Trunk(settings.network), Head(settings.network)

    def init(self, key: jax.Array, example_x: jax.Array) -> OptaxState:
        """Flax initialisation of the network and the optimiser state."""
        params = self.classifier.init(key, example_x[:1])["params"]
        return OptaxState(params, self.optimizer.init(params))

    def params(self, state: OptaxState) -> Any:
        """The network parameters."""
        return state.params

    def features(self, params: Any, x: jax.Array) -> jax.Array:
        """Trunk features (dropout acts only in the head)."""
        return self.trunk.apply({"params": params["trunk"]}, x)

    def sample_logits(self, params: Any, features: jax.Array, key: jax.Array) -> jax.Array:
        """Head logits with a dropout mask drawn with ``key`` (no dropout for ``deterministic``)."""
        return self.head.apply({"params": params["head"]}, features, deterministic=not self.dropout,
                               rngs={"dropout": key})

    def mean_logits(self, params: Any, x: jax.Array) -> jax.Array:
        """Logits without dropout."""
        return self.classifier.apply({"params": params}, x)

    def _train_step(self, state: OptaxState, batch: TrainBatch, key: jax.Array):
        x = self.training_inputs(batch.x, named_key(key, "augment"))

        def loss(params):
            logits = self.classifier.apply({"params": params}, x, deterministic=not self.dropout,
                                           rngs={"dropout": named_key(key, "dropout")})
            sums = weighted_nll_sums(logits, batch)
            return sums["nll"] / sums["weight"]

        value, grads = jax.value_and_grad(loss)(state.params)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        return OptaxState(optax.apply_updates(state.params, updates), opt_state), {"loss": value}


def weight_prior(kind: str, scale: float):
    """The prior of :class:`MeanFieldSVI`: a Normal, or a callable ``(name, shape) -> Normal`` per parameter.

    Parameters
    ----------
    kind : {"fixed", "fan_in", "learned"}
        ``fixed``: Normal(0, ``scale``) for every weight. ``fan_in``: Normal(0, ``scale / sqrt(fan_in)``) for a
        kernel of shape ``(..., fan_out)`` with ``fan_in`` the product of the other axes, so that with
        ``scale = 1`` the prior is the distribution of the LeCun initialisation; Normal(0, ``scale``) for biases.
        ``learned``: Normal(0, ``s``) with one positive NumPyro param ``s`` per weight tensor (``"{name}$prior"``
        in the model's scope), initialised at ``scale``; the optimiser fits it with the guide (empirical Bayes).
    scale : float

    Returns
    -------
    numpyro.distributions.Normal or callable
    """
    if kind == "fixed":
        return dist.Normal(0.0, scale)
    if kind == "learned":
        return lambda name, shape: dist.Normal(
            0.0, numpyro.param(f"{name}$prior", jnp.asarray(scale, jnp.float32), constraint=constraints.positive))

    def by_fan_in(name: str, shape: tuple[int, ...]) -> dist.Normal:
        fan_in = math.prod(shape[:-1]) if len(shape) > 1 else 1
        return dist.Normal(0.0, scale / math.sqrt(fan_in))

    return by_fan_in


class MeanFieldSVI:
    """Mean-field Normal variational inference over the weights of a Flax module, with a minibatch likelihood.

    The NumPyro model is: optional deterministic ``trunk`` (its parameters point estimates, NumPyro param
    ``"trunk$params"``), then ``body`` with every weight drawn from ``Normal(0, prior_scale)``
    (:func:`~numpyro.contrib.module.random_flax_module`, sites ``"{name}/{module path}.{param}"``), then a
    Bernoulli likelihood on the body's logits ``(B,)``. Each example's log-likelihood is scaled by its class weight
    times ``n_train / (data rows in the batch)``, so that a minibatch gives an unbiased estimate of the full-data
    ELBO; padding rows have weight 0.

    The guide (:meth:`guide`) is the mean-field Normal of :class:`~numpyro.infer.autoguide.AutoNormal`: per site a
    ``"{site}_loc"`` and a ``"{site}_scale"`` parameter (softplus-positive), initialised at the Flax initialisation
    of the module and at ``guide_init_scale``. It is written out rather than built by ``AutoNormal`` so that the
    SVI initialisation compiles as one program: ``AutoNormal`` traces the model eagerly, op by op, which costs
    many seconds of compilation for the CNN at every start of training or scoring. The loss is
    :class:`~numpyro.infer.TraceMeanField_ELBO` (analytic KL between the Normal guide and the Normal prior, far
    less noisy than a sampled KL over ~10^6 weights).

    Parameters
    ----------
    body : flax.linen.Module
        Maps ``features`` (the trunk's output, or the inputs without a trunk) to logits ``(B,)``.
    name : str
        NumPyro name of the Bayesian module.
    prior : numpyro.distributions.Distribution or callable
        The prior of every weight, or a callable ``(name, shape) -> prior`` (:func:`weight_prior`).
    guide_init_scale : float
        Initial guide standard deviation.
    kl_weight : float
        Weight of the KL term (the scale of every guide site; 1 is the ELBO).
    n_train : int
        Number of training examples (the likelihood scale).
    optimizer : optax.GradientTransformation
        The optimiser of the guide parameters (and trunk parameters).
    trunk : flax.linen.Module, optional
        Deterministic feature extractor in front of ``body``.
    local_reparameterisation : bool
        Estimate the ELBO with the dense layers' pre-activations drawn per example instead of their weights drawn
        per batch (:class:`bayesrb.model.local_reparam.LocalReparameterisedELBO`): the same objective, lower-variance
        gradients.
    """

    def __init__(self, body: nn.Module, *, name: str, prior, guide_init_scale: float, n_train: int,
                 optimizer: optax.GradientTransformation, trunk: nn.Module | None = None, kl_weight: float = 1.0,
                 local_reparameterisation: bool = False):
        self.body, self.name, self.trunk, self.n_train = body, name, trunk, n_train
        self.prior = prior
        self.guide_init_scale, self.kl_weight = guide_init_scale, kl_weight
        elbo = LocalReparameterisedELBO(self) if local_reparameterisation else TraceMeanField_ELBO()
        self.svi = SVI(self.model, self.guide, optimizer, elbo)
        self.local_reparameterisation = local_reparameterisation
        self.site_shapes: dict[str, tuple[int, ...]] = {}
        self.dense_paths: frozenset[str] = frozenset()
        self._treedef = None

    def model(self, x: jax.Array, y: jax.Array | None = None, obs_scale: jax.Array | None = None) -> jax.Array:
        """The NumPyro model; returns the logits. Without ``y`` there is no likelihood term."""
        features = flax_module(TRUNK_SITE, self.trunk, x)(x) if self.trunk is not None else x
        logits = random_flax_module(self.name, self.body, self.prior, features)(features)
        if y is not None:
            with numpyro.plate("data", x.shape[0]), numpyro.handlers.scale(scale=obs_scale):
                numpyro.sample("obs", dist.Bernoulli(logits=logits), obs=y)
        return logits

    def guide(self, *args, **kwargs) -> None:
        """The mean-field Normal guide (its arguments, those of the model, are unused).

        The means' own initial value 0 is never used: :meth:`init` supplies the Flax initialisation. The sites are
        scaled by ``kl_weight``, which :class:`~numpyro.infer.TraceMeanField_ELBO` applies to their KL terms.
        """
        with numpyro.handlers.scale(scale=self.kl_weight):
            for site, shape in self.site_shapes.items():
                loc = numpyro.param(f"{site}_loc", jnp.zeros(shape))
                scale = numpyro.param(f"{site}_scale", jnp.full(shape, self.guide_init_scale),
                                      constraint=constraints.softplus_positive)
                numpyro.sample(site, dist.Normal(loc, scale).to_event(len(shape)))

    def init(self, key: jax.Array, x: jax.Array):
        """Return the initial :class:`numpyro.infer.svi.SVIState` for inputs like ``x``.

        The guide means (and trunk parameters) start at the Flax initialisation of the modules drawn with ``key``.
        """
        trunk_params, body_params = jax.jit(self._flax_init)(key, x)
        paths, self._treedef = jax.tree_util.tree_flatten_with_path(body_params)
        sites = [f"{self.name}/" + ".".join(str(part.key) for part in path) for path, _ in paths]
        self.site_shapes = {site: value.shape for site, (_, value) in zip(sites, paths, strict=True)}
        if self.local_reparameterisation:
            features = jax.eval_shape(self.features, {f"{TRUNK_SITE}$params": trunk_params}, x)
            self.dense_paths = dense_layer_paths(self.body, body_params, features)
        init_params = {f"{site}_loc": value for site, (_, value) in zip(sites, paths, strict=True)}
        if trunk_params is not None:
            init_params[f"{TRUNK_SITE}$params"] = trunk_params
        ones = jnp.ones(x.shape[0], jnp.float32)
        return jax.jit(self.svi.init)(named_key(key, "svi"), x, ones, ones, init_params=init_params)

    def update(self, state, x: jax.Array, y: jax.Array, weight: jax.Array, mask: jax.Array, key: jax.Array):
        """One SVI step on a batch; returns the new state and the negative ELBO estimate (full-data scale)."""
        obs_scale = self.n_train * weight / jnp.maximum(jnp.sum(mask), 1.0)
        return self.svi.update(state._replace(rng_key=key), x, y, obs_scale)

    def params(self, state) -> dict[str, Any]:
        """The constrained guide parameters (and trunk parameters)."""
        return self.svi.get_params(state)

    def features(self, params: dict[str, Any], x: jax.Array) -> jax.Array:
        """The trunk features of ``x`` (``x`` itself without a trunk)."""
        if self.trunk is None:
            return x
        return self.trunk.apply({"params": params[f"{TRUNK_SITE}$params"]}, x)

    def sample_logits(self, params: dict[str, Any], features: jax.Array, key: jax.Array) -> jax.Array:
        """Logits of the body with one draw of its weights from the guide."""
        guide = numpyro.handlers.substitute(numpyro.handlers.seed(self.guide, key), data=params)
        trace = numpyro.handlers.trace(guide).get_trace()
        return self._body_logits({site: trace[site]["value"] for site in self.site_shapes}, features)

    def mean_logits(self, params: dict[str, Any], features: jax.Array) -> jax.Array:
        """Logits of the body with the guide means as weights."""
        return self._body_logits({site: params[f"{site}_loc"] for site in self.site_shapes}, features)

    def _flax_init(self, key: jax.Array, x: jax.Array) -> tuple[Any, Any]:
        """Flax initial parameters of the trunk (None without one) and of the body."""
        trunk_params, features = None, x
        if self.trunk is not None:
            trunk_params = self.trunk.init(named_key(key, "trunk"), x)["params"]
            features = self.trunk.apply({"params": trunk_params}, x)
        return trunk_params, self.body.init(named_key(key, "body"), features)["params"]

    def body_params(self, weights: Mapping[str, jax.Array]) -> Any:
        """The Flax parameter tree of the body from the weight of every site."""
        return jax.tree.unflatten(self._treedef, [weights[site] for site in self.site_shapes])

    def _body_logits(self, weights: Mapping[str, jax.Array], features: jax.Array) -> jax.Array:
        """Logits of the body with the given weight of every site."""
        return self.body.apply({"params": self.body_params(weights)}, features)


def bayesian_split(network: NetworkConfig, scope: str) -> tuple[nn.Module, str, nn.Module | None]:
    """The Bayesian part of the network for ``scope``, its NumPyro name, and the point-estimated part before it.

    ``"full"``: the whole :class:`Classifier` (``"net"``), nothing before it. ``"last_block"``: the last
    convolution block and the head (``"net"``), after the other blocks. ``"head"``: the :class:`Head`
    (``"head"``), after the whole :class:`Trunk`.
    """
    if scope == "head":
        return Head(network), "head", Trunk(network)
    if scope == "last_block" and len(network.filters) > 1:
        last = len(network.filters) - 1
        return Classifier(network, first_block=last), "net", Trunk(network, stop_block=last)
    return Classifier(network), "net", None


class BayesianMethod(Method):
    """``bayesian``: :class:`MeanFieldSVI` over the whole :class:`Classifier` or its end (:func:`bayesian_split`).

    Scope ``"full"`` puts the variational posterior on every weight; scopes ``"last_block"`` and ``"head"`` on the
    weights of the last convolution block and the head, or of the head only, after a part trained as point
    estimates, whose features are then computed once per batch and shared by all posterior samples.

    Parameters
    ----------
    settings : ModelSettings
        The model settings.
    optimizer : optax.GradientTransformation
        Adam with the learning-rate schedule.
    n_train : int
        Number of training stamps (the likelihood scale of a minibatch).
    """

    def __init__(self, settings: ModelSettings, optimizer: optax.GradientTransformation, n_train: int):
        super().__init__(settings)
        body, name, trunk = bayesian_split(settings.network, settings.scope)
        self.svi = MeanFieldSVI(
            body, name=name, prior=weight_prior(settings.prior, settings.prior_scale),
            guide_init_scale=settings.guide_init_scale, n_train=n_train, optimizer=optimizer, trunk=trunk,
            kl_weight=settings.kl_weight, local_reparameterisation=settings.local_reparameterisation)
        self.n_train = n_train

    def init(self, key: jax.Array, example_x: jax.Array):
        """The initial SVI state (guide means at the Flax initialisation)."""
        return self.svi.init(key, example_x)

    def params(self, state) -> dict[str, Any]:
        """The constrained guide parameters (and trunk parameters)."""
        return self.svi.params(state)

    def features(self, params: dict[str, Any], x: jax.Array) -> jax.Array:
        """Features of the point-estimated part, or the stamps themselves (scope ``"full"``)."""
        return self.svi.features(params, x)

    def sample_logits(self, params: dict[str, Any], features: jax.Array, key: jax.Array) -> jax.Array:
        """Logits with one draw of the Bayesian weights."""
        return self.svi.sample_logits(params, features, key)

    def mean_logits(self, params: dict[str, Any], x: jax.Array) -> jax.Array:
        """Logits with the guide means as weights."""
        return self.svi.mean_logits(params, self.svi.features(params, x))

    def _train_step(self, state, batch: TrainBatch, key: jax.Array):
        x = self.training_inputs(batch.x, named_key(key, "augment"))
        state, neg_elbo = self.svi.update(state, x, batch.y, batch.weight, batch.mask, named_key(key, "svi"))
        return state, {"loss": neg_elbo / self.n_train, "elbo": -neg_elbo}


class BayesianHeadMethod(BayesianMethod):
    """``bayesian`` with scope ``"head"``, scored by local reparameterisation (:mod:`bayesrb.model.local_reparam`).

    The trunk features are deterministic, so the hidden pre-activations of a candidate are exactly Normal given
    them, and the logit is Normal given the hidden activations: drawing these instead of the 3200 x 256 hidden
    weights gives every candidate the same predictive distribution as weight sampling, for two matrix products per
    batch instead of one per sample. Relies on the layout of :class:`Head`: dense layers ``hidden`` (ReLU) and
    ``logit``, dropout inactive.
    """

    def features(self, params: dict[str, Any], x: jax.Array) -> GaussianActivations:
        """Moments of the hidden pre-activations, from the trunk features (computed once for all samples)."""
        return dense_moments(params, f"{self.svi.name}/hidden", self.svi.features(params, x))

    def sample_logits(self, params: dict[str, Any], features: GaussianActivations, key: jax.Array) -> jax.Array:
        """Logits of one posterior predictive draw per candidate."""
        hidden = jax.nn.relu(features.draw(named_key(key, "hidden")))
        return dense_moments(params, f"{self.svi.name}/logit", hidden).draw(named_key(key, "logit"))[:, 0]


def build_method(settings: ModelSettings, *, n_train: int, total_steps: int) -> Method:
    """Return the :class:`Method` of ``settings.kind``.

    Parameters
    ----------
    settings : ModelSettings
        The model settings.
    n_train : int
        Number of training stamps (scales the Bayesian likelihood; any positive value when only scoring).
    total_steps : int
        Training steps over all epochs (length of the cosine schedule; any positive value when only scoring).

    Returns
    -------
    Method
    """
    if settings.kind == "bayesian":
        method = BayesianHeadMethod if settings.scope == "head" else BayesianMethod
        return method(settings, variational_optimizer(settings, total_steps), n_train)
    optimizer = optax.adam(learning_rate_schedule(settings, total_steps))
    return PointEstimateMethod(settings, optimizer, dropout=settings.kind == "mc_dropout")

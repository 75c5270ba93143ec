"""The VGG6-like real-bogus CNN of the GOTO classifier as pure Flax (linen) modules.

Stamps enter as ``(N, H, W, C)`` arrays indexed ``[stamp, row, col, channel]`` (row = pixel y, col = pixel x),
already normalised (see :mod:`bayesrb.model.preprocess`). A :class:`Trunk` of convolution blocks maps them to
flat features, a :class:`Head` maps features to one real-bogus logit per stamp, and :class:`Classifier` chains
the two. Every convolution is 'VALID' and every block ends in a 2x2 max pool that drops an odd last row/column.

Convolutions have three interchangeable implementations with identical parameters (``kernel`` of shape
``(k, k, C, F)`` and ``bias`` of shape ``(F,)``, stored like :class:`flax.linen.Conv`), selected by
``NetworkConfig.conv_impl`` (default ``"auto"``: ``"onednn"`` where JAX's default backend is the CPU and oneDNN
passes its guard, :func:`bayesrb.model.onednn.unusable_reason`, else ``"matmul"`` with one warning; ``"xla"`` on
GPUs and TPUs; so one config trains fast everywhere and its checkpoints move between machines):

``"onednn"`` (:func:`bayesrb.model.onednn.conv_onednn`, for x86-64 Linux CPUs)
    oneDNN's convolution with the bias and ReLU fused, forward pass and gradients, called through XLA's FFI on
    XLA's own buffers: the fastest on CPUs (README.md, *The classifier*, compares the three).
``"matmul"`` (:func:`conv_matmul`, for other CPUs)
    The k*k shifted views of the input are concatenated along the channel axis into patches, which are contracted
    with the kernel in one matrix product. On CPU the batch is processed in micro-batches whose patches stay in
    the cache, and a custom gradient computes the weight gradient as one matrix product per micro-batch and the
    input gradient as (patch gradient) pads and adds; XLA:CPU's own weight gradient of a convolution is far
    slower for these shapes.
``"xla"`` (:func:`conv_xla`, for GPUs)
    :func:`jax.lax.conv_general_dilated`, the reference implementation; use it on GPUs (cuDNN).

Forward-mode autodiff (``jax.jvp``) is not available through the custom gradients of ``"onednn"`` and
``"matmul"``.

Max pooling is written as the maximum of four strided slices, whose gradient is a cheap select (the gradient of
:func:`flax.linen.max_pool` is a select-and-scatter, many times slower on CPU).
"""

import functools
import logging
import os
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp

from bayesrb.model import onednn

CONV_IMPLS = ("auto", "onednn", "matmul", "xla")
POOL = 2
LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture of the CNN.

    Parameters
    ----------
    filters : tuple of int
        Number of filters of each convolution block.
    convs_per_block : int
        Convolutions (each followed by ReLU) per block, before its 2x2 max pool.
    kernel_size : int
        Side of the square convolution kernels, in pixels.
    dense_units : int
        Units of the hidden dense layer of the head.
    dropout_rate : float
        Dropout rate before the output layer, applied only with ``deterministic=False`` (Monte Carlo dropout).
    conv_impl : {"auto", "onednn", "matmul", "xla"}
        How convolutions are computed; all give the same result with the same parameters (``"auto"``: see
        :func:`resolve_conv_impl`).
    """

    filters: tuple[int, ...] = (16, 32)
    convs_per_block: int = 2
    kernel_size: int = 3
    dense_units: int = 256
    dropout_rate: float = 0.5
    conv_impl: str = "auto"

    def __post_init__(self):
        object.__setattr__(self, "filters", tuple(int(f) for f in self.filters))
        if not self.filters or min(self.filters) < 1:
            raise ValueError(f"filters must be a non-empty sequence of positive ints, got {self.filters}")
        for name in ("convs_per_block", "kernel_size", "dense_units"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate}")
        if self.conv_impl not in CONV_IMPLS:
            raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {self.conv_impl!r}")


def conv_patches(x: jax.Array, kernel_size: int) -> jax.Array:
    """The 'VALID' convolution patches of ``x``, ordered like a flattened ``(k, k, C)`` kernel.

    Parameters
    ----------
    x : jax.Array
        Images ``(N, H, W, C)``.
    kernel_size : int
        Side ``k`` of the square kernel.

    Returns
    -------
    jax.Array
        ``(N, H - k + 1, W - k + 1, k * k * C)``; channel ``(i * k + j) * C + c`` of output pixel ``[row, col]``
        is ``x[:, row + i, col + j, c]``.
    """
    out_rows, out_cols = x.shape[1] - kernel_size + 1, x.shape[2] - kernel_size + 1
    shifted = [x[:, i : i + out_rows, j : j + out_cols, :] for i in range(kernel_size) for j in range(kernel_size)]
    return jnp.concatenate(shifted, axis=-1)


# Convolution patches per micro-batch on CPU, in bytes: 2 MiB per core, about what a core's L2 cache holds (the
# micro-batch sizes tried are in README.md, *The classifier*).
CPU_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
MICRO_BATCH_BYTES = 2 * 2**20 * CPU_CORES


def _micro_batch_size(x_shape: tuple[int, ...], kernel_size: int) -> int:
    """Stamps per micro-batch: patches of about ``MICRO_BATCH_BYTES`` on CPU, the whole batch on other devices."""
    n, h, w, c = x_shape
    if jax.default_backend() != "cpu":
        return n
    patch_bytes = (h - kernel_size + 1) * (w - kernel_size + 1) * kernel_size**2 * c * 4
    return min(n, max(1, MICRO_BATCH_BYTES // patch_bytes))


def _split(x: jax.Array, size: int) -> jax.Array:
    """``(N, ...)`` -> ``(ceil(N / size), size, ...)``, zero-padding the last micro-batch."""
    x = jnp.pad(x, [(0, -x.shape[0] % size)] + [(0, 0)] * (x.ndim - 1))
    return x.reshape(-1, size, *x.shape[1:])


def _merge(chunks: jax.Array, n: int) -> jax.Array:
    """Inverse of :func:`_split` for ``n`` stamps."""
    return chunks.reshape(-1, *chunks.shape[2:])[:n]


def conv_xla(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """'VALID' convolution of ``x`` ``(N, H, W, C)`` with ``kernel`` ``(k, k, C, F)`` by XLA."""
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


@jax.custom_vjp
def conv_matmul(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """'VALID' convolution of ``x`` ``(N, H, W, C)`` with ``kernel`` ``(k, k, C, F)`` as patches times kernel.

    Equal to :func:`conv_xla` up to float rounding, in value and gradient; see the module docstring.
    """
    k, _, c, f = kernel.shape
    flat_kernel = kernel.reshape(k * k * c, f)
    chunks = _split(x, _micro_batch_size(x.shape, k))
    return _merge(jax.lax.map(lambda chunk: conv_patches(chunk, k) @ flat_kernel, chunks), x.shape[0])


def _conv_matmul_forward(x, kernel):
    return conv_matmul(x, kernel), (x, kernel)


def _conv_matmul_backward(residuals, y_grad):
    """Gradients micro-batch by micro-batch: patches recomputed, ``kernel_grad += y_grad^T patches``."""
    x, kernel = residuals
    k, _, c, f = kernel.shape
    flat_kernel = kernel.reshape(k * k * c, f)
    contract_pixels = (((0, 1, 2), (0, 1, 2)), ((), ()))

    def accumulate(kernel_grad, chunk):
        x_chunk, y_grad_chunk = chunk
        patches, patches_transpose = jax.vjp(lambda xc: conv_patches(xc, k), x_chunk)
        kernel_grad = kernel_grad + jax.lax.dot_general(y_grad_chunk, patches, contract_pixels)
        (x_grad_chunk,) = patches_transpose(y_grad_chunk @ flat_kernel.T)
        return kernel_grad, x_grad_chunk

    size = _micro_batch_size(x.shape, k)
    kernel_grad, x_grad = jax.lax.scan(
        accumulate, jnp.zeros((f, k * k * c), kernel.dtype), (_split(x, size), _split(y_grad, size))
    )
    return _merge(x_grad, x.shape[0]), kernel_grad.T.reshape(kernel.shape)


conv_matmul.defvjp(_conv_matmul_forward, _conv_matmul_backward)


def resolve_conv_impl(impl: str) -> str:
    """The convolution implementation to use: ``impl``, or for ``"auto"`` the fast one on JAX's default backend.

    Parameters
    ----------
    impl : {"auto", "onednn", "matmul", "xla"}

    Returns
    -------
    str
        ``"onednn"``, ``"matmul"`` or ``"xla"``: ``"auto"`` gives ``"onednn"`` on the CPU backend where oneDNN
        passes its guard (:func:`bayesrb.model.onednn.unusable_reason`, run once per process), else ``"matmul"``
        and one logged warning naming why; ``"xla"`` on any other backend.

    Raises
    ------
    bayesrb.model.onednn.OneDnnError
        For ``"onednn"`` where the guard fails, naming why.
    """
    if impl == "onednn":
        onednn.require()
    if impl != "auto":
        return impl
    if jax.default_backend() != "cpu":
        return "xla"
    return _auto_cpu_conv_impl()


@functools.cache
def _auto_cpu_conv_impl() -> str:
    """``"onednn"`` where its guard passes, else ``"matmul"``, warning once per process."""
    reason = onednn.unusable_reason()
    if reason is None:
        return "onednn"
    LOG.warning("conv_impl 'auto' falls back to 'matmul' (slower): oneDNN's convolutions are unusable here: %s",
                reason)
    return "matmul"


class Conv(nn.Module):
    """A square 'VALID' convolution with bias, parameterised exactly like :class:`flax.linen.Conv`.

    Attributes
    ----------
    features : int
        Number of output channels ``F``.
    kernel_size : int
        Side ``k`` of the square kernel.
    impl : {"auto", "onednn", "matmul", "xla"}
        Implementation (see the module docstring).
    relu : bool
        Apply a ReLU to the output (fused into the convolution by ``"onednn"``).
    """

    features: int
    kernel_size: int
    impl: str = "auto"
    relu: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Convolve ``x`` ``(N, H, W, C)`` into ``(N, H - k + 1, W - k + 1, F)``."""
        k = self.kernel_size
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        impl = resolve_conv_impl(self.impl)
        if impl == "onednn":
            return onednn.conv_onednn(x, kernel, bias, self.relu)
        y = (conv_xla if impl == "xla" else conv_matmul)(x, kernel) + bias
        return nn.relu(y) if self.relu else y


def max_pool(x: jax.Array) -> jax.Array:
    """2x2 max pool with stride 2 of ``(N, H, W, C)``; an odd last row or column is dropped."""
    rows, cols = x.shape[1] // POOL * POOL, x.shape[2] // POOL * POOL
    corners = [x[:, i:rows:POOL, j:cols:POOL, :] for i in range(POOL) for j in range(POOL)]
    return functools.reduce(jnp.maximum, corners)


class Trunk(nn.Module):
    """Convolution blocks then flattening: normalised stamps ``(N, H, W, C)`` -> features ``(N, F)``.

    Attributes
    ----------
    config : NetworkConfig
        The architecture.
    first_block, stop_block : int or None
        The blocks ``first_block`` to ``stop_block - 1`` (None: to the last) of ``config.filters``, named by
        their index in the whole network (``conv{block}_{layer}``). A trunk that stops before the last block
        returns its feature map ``(N, H', W', F)``, unflattened, for the next blocks.
    """

    config: NetworkConfig
    first_block: int = 0
    stop_block: int | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Features of ``x``: stamps, or the feature map of the blocks before ``first_block``."""
        cfg = self.config
        blocks = range(len(cfg.filters))[self.first_block:self.stop_block]
        for block in blocks:
            for layer in range(cfg.convs_per_block):
                x = Conv(cfg.filters[block], cfg.kernel_size, cfg.conv_impl, relu=True, name=f"conv{block}_{layer}")(x)
            x = max_pool(x)
        if self.stop_block is not None and self.stop_block < len(cfg.filters):
            return x
        return x.reshape(x.shape[0], -1)


class Head(nn.Module):
    """Dense ReLU layer, dropout and one output unit: features ``(N, F)`` -> logits ``(N,)``."""

    config: NetworkConfig

    @nn.compact
    def __call__(self, features: jax.Array, *, deterministic: bool = True) -> jax.Array:
        """Real-bogus logits; dropout (rng stream ``"dropout"``) acts only when ``deterministic`` is False."""
        x = nn.relu(nn.Dense(self.config.dense_units, name="hidden")(features))
        x = nn.Dropout(self.config.dropout_rate, deterministic=deterministic)(x)
        return nn.Dense(1, name="logit")(x)[:, 0]


class Classifier(nn.Module):
    """:class:`Trunk` then :class:`Head`: normalised stamps ``(N, H, W, C)`` -> logits ``(N,)``.

    With ``first_block`` > 0 it is the end of the network: the blocks from ``first_block`` on, then the head,
    applied to the feature map of the blocks before (:class:`Trunk` with ``stop_block=first_block``).
    """

    config: NetworkConfig
    first_block: int = 0

    @nn.compact
    def __call__(self, x: jax.Array, *, deterministic: bool = True) -> jax.Array:
        """Real-bogus logits of the stamps ``x`` (or of the feature maps before ``first_block``)."""
        features = Trunk(self.config, first_block=self.first_block, name="trunk")(x)
        return Head(self.config, name="head")(features, deterministic=deterministic)


def _conv_layers(config: NetworkConfig, input_shape: tuple[int, int, int]):
    """Yield ``(out_rows, out_cols, in_channels, features)`` per convolution, then the final map's shape.

    The last item is ``(rows, cols, channels, None)`` of the final pooled feature map.

    Raises
    ------
    ValueError
        If the stamps are too small for the convolutions and pools of ``config``.
    """
    rows, cols, channels = input_shape
    for features in config.filters:
        for _ in range(config.convs_per_block):
            rows, cols = rows - config.kernel_size + 1, cols - config.kernel_size + 1
            if min(rows, cols) < 1:
                raise ValueError(f"stamps of shape {input_shape} are too small for the network {config}")
            yield rows, cols, channels, features
            channels = features
        rows, cols = rows // POOL, cols // POOL
    if min(rows, cols) < 1:
        raise ValueError(f"stamps of shape {input_shape} are too small for the network {config}")
    yield rows, cols, channels, None


def conv_input_shapes(config: NetworkConfig, input_shape: tuple[int, int, int]) -> list[tuple[int, int, int, int]]:
    """``(rows, cols, in_channels, features)`` of the input of every convolution, in order, for stamps ``(H, W, C)``.

    Raises
    ------
    ValueError
        If the stamps are too small for the convolutions and pools of ``config``.
    """
    *convs, _ = _conv_layers(config, input_shape)
    grow = config.kernel_size - 1
    return [(rows + grow, cols + grow, channels, features) for rows, cols, channels, features in convs]


def trunk_output_shape(config: NetworkConfig, input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """Shape ``(rows, cols, channels)`` of the last pooled feature map for stamps of ``input_shape`` ``(H, W, C)``.

    Raises
    ------
    ValueError
        If the stamps are too small for the convolutions and pools of ``config``.
    """
    *_, (rows, cols, channels, _) = _conv_layers(config, input_shape)
    return rows, cols, channels


def forward_flops(config: NetworkConfig, input_shape: tuple[int, int, int]) -> int:
    """Floating-point operations of one forward pass of one stamp (a multiply-add counts 2).

    Counts the products of convolutions and dense layers; biases, ReLUs and pools are ignored.

    Parameters
    ----------
    config : NetworkConfig
        The architecture.
    input_shape : tuple of int
        Stamp shape ``(H, W, C)``.

    Returns
    -------
    int
        FLOPs per stamp: 29,864,064 for the default network on 55x55x4 stamps.
    """
    *convs, (rows, cols, channels, _) = _conv_layers(config, input_shape)
    k2 = config.kernel_size**2
    conv_flops = sum(2 * r * c * k2 * cin * cout for r, c, cin, cout in convs)
    return conv_flops + 2 * rows * cols * channels * config.dense_units + 2 * config.dense_units

"""Stamp preprocessing inside JAX: per-stamp normalisation and random dihedral augmentation.

Stamps are ``(N, H, W, C)`` float32 arrays indexed ``[stamp, row, col, channel]``. :func:`normalise` and
:func:`augment` are pure ``jax.numpy`` and can be called inside ``jax.jit`` on any device;
:func:`normalise_on_host` runs the same normalisation on NumPy blocks on the CPU, for the input pipeline's threads.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

NORMALISATIONS = ("stamp_channel", "none")
IQR_PER_SIGMA = 1.3489795  # inter-quartile range of a unit normal distribution
DEFAULT_CLIP = 50.0
QUARTILES = (0.25, 0.5, 0.75)
_SIGN_BIT = np.uint32(1 << 31)


def _from_ordered_key(key: jax.Array) -> jax.Array:
    """The float32 whose order-preserving uint32 key is ``key``.

    The key of a float is its bit pattern with the sign bit flipped if it is positive, and all bits flipped if it
    is negative, so that unsigned integer order equals float order.
    """
    bits = jnp.where(key >= _SIGN_BIT, key & ~_SIGN_BIT, ~key)
    return jax.lax.bitcast_convert_type(bits, jnp.float32)


def order_statistics(x: jax.Array, ranks: tuple[int, ...]) -> jax.Array:
    """Exact order statistics of each stamp and channel, without sorting.

    The value of rank ``k`` (0-based, ascending) is found bit by bit, most significant first, from its
    order-preserving uint32 key: 32 passes that each count the pixels below a candidate value. On CPU this is
    many times faster than ``jnp.sort`` (README.md, *The classifier*, gives the measurement).

    Parameters
    ----------
    x : jax.Array
        Stamps ``(N, H, W, C)``, float32, finite.
    ranks : tuple of int
        Ranks in ``[0, H * W)``.

    Returns
    -------
    jax.Array
        ``(N, len(ranks), C)``: the ``ranks[j]``-th smallest pixel of stamp ``n``, channel ``c`` at ``[n, j, c]``.
    """
    n, h, w, c = x.shape
    pixels = x.astype(jnp.float32).reshape(n, 1, h * w, c)
    ranks = jnp.asarray(ranks, jnp.int32)[None, :, None]

    def set_next_bit(bit, prefix):
        candidate = prefix | (_SIGN_BIT >> bit.astype(jnp.uint32))
        below = (pixels < _from_ordered_key(candidate)[:, :, None, :]).sum(axis=2, dtype=jnp.int32)
        return jnp.where(below <= ranks, candidate, prefix)

    keys = jax.lax.fori_loop(0, 32, set_next_bit, jnp.zeros((n, ranks.shape[1], c), jnp.uint32))
    return _from_ordered_key(keys)


def quantiles(x: jax.Array, qs: tuple[float, ...]) -> jax.Array:
    """Quantiles of each stamp and channel, interpolated linearly between order statistics like ``numpy.quantile``.

    Parameters
    ----------
    x : jax.Array
        Stamps ``(N, H, W, C)``.
    qs : tuple of float
        Quantiles in ``[0, 1]``.

    Returns
    -------
    jax.Array
        ``(N, len(qs), C)``.
    """
    last = x.shape[1] * x.shape[2] - 1
    brackets = [(int(q * last), min(int(q * last) + 1, last), q * last - int(q * last)) for q in qs]
    ranks = sorted({below for below, _, _ in brackets} | {above for _, above, frac in brackets if frac > 0})
    values = order_statistics(x, tuple(ranks))
    out = []
    for below, above, frac in brackets:
        low = values[:, ranks.index(below)]
        out.append(low if frac == 0 else low + (values[:, ranks.index(above)] - low) * frac)
    return jnp.stack(out, axis=1)


def robust_location_scale(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Median and inter-quartile sigma (IQR / 1.349) of each stamp and channel.

    Parameters
    ----------
    x : jax.Array
        Stamps ``(N, H, W, C)``.

    Returns
    -------
    median, scale : jax.Array
        Each ``(N, C)``; ``scale`` is the standard deviation for normally distributed pixels.
    """
    q25, median, q75 = jnp.unstack(quantiles(x, QUARTILES), axis=1)
    return median, (q75 - q25) / IQR_PER_SIGMA


def normalise(x: jax.Array, mode: str = "stamp_channel", *, clip: float = DEFAULT_CLIP) -> jax.Array:
    """Normalise stamps per stamp and channel.

    Parameters
    ----------
    x : jax.Array
        Stamps ``(N, H, W, C)``.
    mode : {"stamp_channel", "none"}
        ``"stamp_channel"``: subtract the median of each stamp and channel, divide by its robust scale
        (:func:`robust_location_scale`) and clip to ``[-clip, clip]``. Where the scale is zero (a constant or mostly
        constant stamp) the stamp is only median-subtracted, so constant stamps become zeros.
        ``"none"``: return ``x`` unchanged.
    clip : float
        Bound of the normalised values, in robust sigmas.

    Returns
    -------
    jax.Array
        The normalised stamps, same shape, float32.
    """
    if mode == "none":
        return x
    if mode != "stamp_channel":
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {mode!r}")
    median, scale = robust_location_scale(x)
    scale = jnp.where(scale > 0, scale, 1.0)
    return jnp.clip((x - median[:, None, None, :]) / scale[:, None, None, :], -clip, clip)


#: Rows of the blocks that :func:`normalise_on_host` compiles for (smaller blocks are padded with zero stamps).
HOST_BLOCK_ROWS = 64


@partial(jax.jit, static_argnames="mode")
def _normalise_compiled(x: jax.Array, mode: str) -> jax.Array:
    return normalise(x, mode)


def normalise_on_host(stamps: np.ndarray, mode: str = "stamp_channel") -> np.ndarray:
    """:func:`normalise` a NumPy block of stamps on the CPU, whatever the default device.

    Each stamp is normalised on its own, so blocks of any size give the values that :func:`normalise` gives for the
    same stamps inside a batch. Blocks are padded with zero stamps to a multiple of :data:`HOST_BLOCK_ROWS`, so
    that one compilation serves them all.

    Parameters
    ----------
    stamps : numpy.ndarray
        ``float32`` ``(n, H, W, C)``, finite.
    mode : {"stamp_channel", "none"}
        As for :func:`normalise`.

    Returns
    -------
    numpy.ndarray
        ``float32`` ``(n, H, W, C)``.
    """
    if mode == "none":
        return stamps
    rows = len(stamps)
    padded = np.zeros((-(-rows // HOST_BLOCK_ROWS) * HOST_BLOCK_ROWS, *stamps.shape[1:]), np.float32)
    padded[:rows] = stamps
    on_cpu = jax.device_put(padded, jax.devices("cpu")[0])
    return np.asarray(_normalise_compiled(on_cpu, mode))[:rows]


def augment(key: jax.Array, x: jax.Array) -> jax.Array:
    """Apply one of the 8 flips/90-degree rotations (the dihedral group), drawn at random, to each square stamp.

    Each stamp is independently transposed (rows <-> columns), flipped up-down and flipped left-right, each with
    probability 1/2; the 8 combinations are exactly the 8 symmetries of the square, equally likely.

    Parameters
    ----------
    key : jax.Array
        PRNG key; the same key gives the same transforms.
    x : jax.Array
        Square stamps ``(N, S, S, C)``.

    Returns
    -------
    jax.Array
        The transformed stamps, same shape.
    """
    if x.ndim != 4 or x.shape[1] != x.shape[2]:
        raise ValueError(f"augment needs square stamps (N, S, S, C), got shape {x.shape}")
    transpose, flip_rows, flip_cols = jax.random.bernoulli(key, 0.5, (3, x.shape[0], 1, 1, 1))
    x = jnp.where(transpose, jnp.swapaxes(x, 1, 2), x)
    x = jnp.where(flip_rows, x[:, ::-1], x)
    return jnp.where(flip_cols, x[:, :, ::-1], x)

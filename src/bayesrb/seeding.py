"""Explicit, job-count-independent random streams.

Every random draw in bayesrb comes from a generator built here from the stage's integer seed and a
tuple of keys (a stream name, a field or visit index, ...). The same keys give the same stream no
matter how many jobs run or in which order, so results never depend on parallelism.
"""

import zlib

import numpy as np


def _key_to_int(key: int | str) -> int:
    if isinstance(key, str):
        return zlib.crc32(key.encode())
    if int(key) < 0:
        raise ValueError(f"stream keys must be non-negative, got {key}")
    return int(key)


def rng_for(seed: int, *keys: int | str) -> np.random.Generator:
    """Return the NumPy generator of the stream ``keys`` under ``seed``.

    Parameters
    ----------
    seed : int
        The stage's seed from the config.
    *keys : int or str
        Names the stream, e.g. ``("visit", 12)``. Strings are hashed with CRC-32.

    Returns
    -------
    numpy.random.Generator
        A PCG64 generator seeded by ``SeedSequence(seed, spawn_key=keys)``.
    """
    spawn_key = tuple(_key_to_int(k) for k in keys)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=spawn_key))

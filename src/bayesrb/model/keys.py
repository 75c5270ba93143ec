"""Named JAX random streams: every random draw of training and scoring comes from a key derived by name."""

import zlib

import jax


def named_key(key: jax.Array, name: str) -> jax.Array:
    """Derive the key of the stream ``name`` from ``key`` (``fold_in`` with a stable CRC-32 tag of the name)."""
    return jax.random.fold_in(key, zlib.crc32(name.encode()) & 0x7FFFFFFF)

"""Stamps: multi-channel cutouts around candidates, and per-visit zarr v3 shards holding them.

Every stamp store (a shard, an augmentation shard, the data set) is opened and checked by :mod:`bayesrb.stamps.store`.
"""

from bayesrb.stamps.extract import (
    CHANNELS_ALL,
    CHANNELS_BASE,
    CHANNELS_EXTRA,
    FLAG_EDGE,
    FLAG_NAN,
    extract_stamps,
)
from bayesrb.stamps.shard import (
    SHARD_META_COLUMNS,
    SHARD_REQUIRED_ATTRS,
    STAMPS_PER_CHUNK,
    Shard,
    read_shard,
    write_shard,
)

__all__ = [
    "CHANNELS_ALL",
    "CHANNELS_BASE",
    "CHANNELS_EXTRA",
    "FLAG_EDGE",
    "FLAG_NAN",
    "SHARD_META_COLUMNS",
    "SHARD_REQUIRED_ATTRS",
    "STAMPS_PER_CHUNK",
    "Shard",
    "extract_stamps",
    "read_shard",
    "write_shard",
]

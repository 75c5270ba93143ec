"""Settings of the data set: the config's ``dataset:`` section.

Light (no NumPy). Defaults equal the schema's (``tests/test_settings.py`` checks).
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DatasetSettings:
    """How the data set is split and stored (see :func:`bayesrb.dataset.store.build_dataset`).

    Parameters
    ----------
    seed : int
        Seed of the field-to-split assignment and of the row order.
    fractions : dict of str to float
        Wanted fraction of the training fields' labelled stamps in ``train``, ``val`` and ``test`` (sum 1).
    chunk_stamps, shard_stamps : int
        Stamps per chunk (the unit of a random mini-batch read) and per shard file (a multiple of the chunk).
    """

    seed: int = 5
    fractions: dict[str, float] = field(default_factory=lambda: {"train": 0.31, "val": 0.23, "test": 0.46})
    chunk_stamps: int = 64
    shard_stamps: int = 1024

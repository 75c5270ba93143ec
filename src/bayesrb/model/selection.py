"""What an experiment trains on: which rows of the data set's ``train`` and ``val`` splits, and which channels.

One consolidated data set serves every experiment (``experiments:`` in the config), so that a variant that only
changes what it trains on shares the data set instead of rebuilding it. :class:`TrainingData` (the config's
``training:`` section, overridden per experiment) selects:

- ``augmentation``: whether the augmentation's rows are used, that is the synthetic transients (real) and the
  galaxy residuals cut at the same kind of hosts (bogus), :data:`AUGMENTED_KINDS`. Without them a model learns from
  minor planets and random bogus detections only, the published classifier's training set before augmentation.
  The choice applies to ``train`` and ``val`` (so that model selection sees the same kind of data); the held-out
  splits are always scored whole, so the variants are compared on the same candidates.
- ``train_fraction``: a seeded random subset of the selected ``train`` rows (a learning-curve ablation).
- ``channels``: the stamp channels the model reads, in order (a channel ablation); scoring reads the same ones.
"""

import math
from dataclasses import dataclass

import numpy as np

from bayesrb.model.data import StampSource
from bayesrb.seeding import rng_for
from bayesrb.vocabulary import AUGMENTED_KINDS

__all__ = ["TrainingData", "selected_rows"]


@dataclass(frozen=True)
class TrainingData:
    """The rows and channels of a data set that an experiment trains on.

    Parameters
    ----------
    augmentation : bool
        Whether rows of :data:`AUGMENTED_KINDS` are trained and validated on.
    train_fraction : float
        Fraction in (0, 1] of the selected ``train`` rows used (a seeded random subset).
    channels : sequence of str or None
        Channels the model reads, in order; None for every channel of the data set.
    """

    augmentation: bool = True
    train_fraction: float = 1.0
    channels: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.channels is not None:
            object.__setattr__(self, "channels", tuple(str(c) for c in self.channels))
            if not self.channels or len(set(self.channels)) != len(self.channels):
                raise ValueError(f"channels must be distinct names, at least one, got {list(self.channels)}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise ValueError(f"train_fraction must be in (0, 1], got {self.train_fraction}")

    def model_channels(self, source: StampSource) -> tuple[str, ...]:
        """The channels the model reads from ``source``: :attr:`channels`, or all of the store's."""
        return source.channels if self.channels is None else self.channels


def selected_rows(source: StampSource, split: str, training: TrainingData, seed: int) -> np.ndarray:
    """The rows of a split that an experiment uses.

    Parameters
    ----------
    source : StampSource
        The data set.
    split : str
        ``train`` or ``val`` (augmentation applies to both, ``train_fraction`` to ``train`` only).
    training : TrainingData
    seed : int
        Seed of the ``train_fraction`` subset.

    Returns
    -------
    numpy.ndarray
        ``bool`` per row of the split.

    Raises
    ------
    bayesrb.errors.BadInputError
        If the data set has no ``kind`` column but augmentation is switched off.
    """
    rows = source.rows(split)
    keep = np.ones(rows.stop - rows.start, dtype=bool)
    if not training.augmentation:
        keep &= ~np.isin(source.column("kind", rows).astype(str), AUGMENTED_KINDS)
    if split == "train" and training.train_fraction < 1.0:
        keep = _random_subset(keep, training.train_fraction, rng_for(seed, "train_fraction"))
    return keep


def _random_subset(keep: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Keep a random ``ceil(fraction * n)`` of the ``n`` rows already kept."""
    candidates = np.flatnonzero(keep)
    chosen = rng.choice(candidates, size=math.ceil(fraction * len(candidates)), replace=False)
    subset = np.zeros_like(keep)
    subset[chosen] = True
    return subset


"""Assign whole fields to the train / val / test splits, and evaluation fields to ``eval``.

Splitting by field keeps each patch of sky on one side of the split, so that a network cannot score well on the
test set by remembering the stars, galaxies and artefact patterns of fields it was trained on.
"""

from collections.abc import Mapping

import numpy as np

from bayesrb.seeding import rng_for

__all__ = ["TRAINING_SPLITS", "SPLITS", "EVAL_SPLIT", "assign_splits", "check_fractions"]

#: Splits drawn from the non-evaluation fields, in data-set order.
TRAINING_SPLITS: tuple[str, ...] = ("train", "val", "test")
#: The split of the evaluation-only fields (held out from training, may hold truth-labelled injections).
EVAL_SPLIT: str = "eval"
#: Every split, in the order its rows appear in a data set.
SPLITS: tuple[str, ...] = (*TRAINING_SPLITS, EVAL_SPLIT)

#: Random field orders tried; the one whose split fractions come closest to the requested ones wins.
_TRIALS = 200


def check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    """Return the split fractions for every training split (missing ones 0), after checking them.

    Parameters
    ----------
    fractions : mapping of str to float
        Fraction of labelled stamps wanted in each of ``train``, ``val``, ``test``.

    Returns
    -------
    dict of str to float
        ``{split: fraction}`` for all of :data:`TRAINING_SPLITS`.

    Raises
    ------
    ValueError
        If a key is not a training split, a fraction is negative, or the fractions do not sum to 1.
    """
    unknown = sorted(set(fractions) - set(TRAINING_SPLITS))
    if unknown:
        raise ValueError(f"split fractions name unknown split(s) {unknown}; use {list(TRAINING_SPLITS)}")
    checked = {split: float(fractions.get(split, 0.0)) for split in TRAINING_SPLITS}
    if any(not np.isfinite(f) or f < 0 for f in checked.values()):
        raise ValueError(f"split fractions must be finite and non-negative, got {checked}")
    if not np.isclose(sum(checked.values()), 1.0, rtol=0, atol=1e-6):
        raise ValueError(f"split fractions must sum to 1, got {checked} (sum {sum(checked.values()):.6g})")
    return checked


def assign_splits(
    field_counts: Mapping[str, int], fractions: Mapping[str, float], seed: int, eval_fields: set[str]
) -> dict[str, str]:
    """Map every field to a split so that no field is in two splits and the fractions are roughly met.

    Non-evaluation fields are dealt out greedily, each to the split furthest below its target number of
    labelled stamps, in a random field order; of :data:`_TRIALS` seeded orders the one whose achieved fractions
    are closest to ``fractions`` (sum of absolute differences) is kept. Every split with a positive fraction gets
    at least one field. Evaluation fields all go to ``eval``.

    Parameters
    ----------
    field_counts : mapping of str to int
        Number of labelled stamps per field (evaluation fields may be included; their counts are ignored).
    fractions : mapping of str to float
        Wanted fraction of the non-evaluation labelled stamps in ``train``, ``val`` and ``test``; must sum to 1.
    seed : int
        Seed of the field orders; the same seed and inputs give the same assignment.
    eval_fields : set of str
        Fields reserved for evaluation.

    Returns
    -------
    dict of str to str
        ``{field: split}`` for every field in ``field_counts`` and ``eval_fields``, sorted by field name.

    Raises
    ------
    ValueError
        If the fractions are invalid, a count is negative, or there are fewer non-evaluation fields than splits
        with a positive fraction.
    """
    targets = check_fractions(fractions)
    fields = sorted(set(field_counts) - set(eval_fields))
    counts = np.array([field_counts[f] for f in fields], dtype=float)
    if np.any(counts < 0):
        raise ValueError(f"field counts must be non-negative, got {dict(field_counts)}")
    wanted = [split for split in TRAINING_SPLITS if targets[split] > 0]
    if len(fields) < len(wanted):
        raise ValueError(f"{len(fields)} non-evaluation field(s) {fields} cannot fill the {len(wanted)} split(s) "
                         f"{wanted} with a positive fraction (a field is never split); add fields or set a "
                         "fraction to 0")
    target = np.array([targets[split] for split in wanted])
    weights = counts if counts.sum() > 0 else np.ones_like(counts)
    rng = rng_for(seed, "field-splits")
    best, best_error = None, np.inf
    for _ in range(_TRIALS):
        choice = _deal_fields(weights, target, rng.permutation(len(fields)))
        achieved = np.bincount(choice, weights=weights, minlength=len(wanted)) / weights.sum()
        error = float(np.abs(achieved - target).sum())
        if error < best_error - 1e-12:
            best, best_error = choice, error
    assignment = {field: wanted[index] for field, index in zip(fields, best, strict=True)}
    assignment |= {field: EVAL_SPLIT for field in eval_fields}
    return dict(sorted(assignment.items()))


def _deal_fields(weights: np.ndarray, target: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Give each field (in ``order``) to the split furthest below its target; return the split index per field.

    Once as many fields remain as splits are still empty, the remaining fields go to empty splits only.
    """
    choice = np.empty(len(weights), dtype=int)
    assigned = np.zeros(len(target))
    n_fields = np.zeros(len(target), dtype=int)
    goal = target * weights.sum()
    for remaining, field in zip(range(len(order), 0, -1), order, strict=True):
        deficit = goal - assigned
        empty = n_fields == 0
        if remaining <= empty.sum():
            deficit = np.where(empty, deficit, -np.inf)
        split = int(np.argmax(deficit))
        choice[field] = split
        assigned[split] += weights[field]
        n_fields[split] += 1
    return choice

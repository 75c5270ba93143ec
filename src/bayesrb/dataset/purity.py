"""Label purity: how often the automatic labels agree with the simulator's truth.

Only simulated surveys have a truth (the meta column ``truth_kind``, ``""`` where a candidate matched no simulated
source). A truth kind is real if it is in :data:`REAL_TRUTH_KINDS`; everything else, the artefacts (cosmic rays, hot
pixels, bad columns, satellite and bleed trails, residuals of bright or saturated stars, galaxies) and no match at all
(noise peaks, faint residuals), is bogus. An automatic label agrees with the truth when label 1 goes with a real truth
kind and label 0 with a bogus one.
"""

from collections import Counter
from collections.abc import Mapping

import numpy as np

from bayesrb.vocabulary import (
    AUGMENTED_KINDS,
    AUTOMATIC_KINDS,
    BOGUS,
    CLASS_NAMES,
    HUMAN,
    INJECTED_PREFIX,
    REAL,
    REAL_TRUTH_KINDS,
)

__all__ = ["EVALUATION_FIELDS", "label_purity", "format_purity", "value_counts"]

_NO_MATCH = "(no truth match)"

#: Key of a report's part for the evaluation-only fields (:func:`bayesrb.dataset.steps.store_purity`).
EVALUATION_FIELDS = "evaluation_fields"


def label_purity(meta: Mapping[str, np.ndarray]) -> dict:
    """Measure the purity of the automatic labels against the simulator's truth.

    Parameters
    ----------
    meta : mapping of str to numpy.ndarray
        Meta columns of a data set or shard: ``kind``, ``label`` (-1 rows are ignored), ``truth_kind`` and, if
        present, ``label_source`` (rows labelled ``"human"`` are excluded).

    Returns
    -------
    dict
        ``kinds``: for each of :data:`AUTOMATIC_KINDS`, and ``classes``: for ``real`` (automatic rows labelled 1)
        and ``bogus`` (labelled 0), a dict with ``n``, ``n_agree``, ``purity`` (``n_agree / n``, None if ``n`` is
        0) and ``impurities`` (``{truth_kind: count}`` of the disagreeing rows). ``excluded``: the labelled rows
        left out, as ``{"synthetic" | "truth-labelled" | "human" | "other": {kind: count}}``.

    Raises
    ------
    ValueError
        If there is no ``truth_kind`` column (not a simulated survey) or ``kind``/``label`` is missing.
    """
    if "truth_kind" not in meta:
        raise ValueError("no 'truth_kind' column: label purity needs the truth of a simulated survey")
    missing = [name for name in ("kind", "label") if name not in meta]
    if missing:
        raise ValueError(f"label purity needs the meta column(s) {missing}")
    kind = np.asarray(meta["kind"], dtype=str)
    label = np.asarray(meta["label"])
    truth = np.asarray(meta["truth_kind"], dtype=str)
    labelled = label >= 0
    source = np.asarray(meta["label_source"], dtype=str) if "label_source" in meta else np.full(len(kind), "")
    human = labelled & ((source == "human") | (kind == HUMAN))
    automatic = labelled & ~human & np.isin(kind, AUTOMATIC_KINDS)
    agree = (label == 1) == np.isin(truth, list(REAL_TRUTH_KINDS))
    synthetic = labelled & ~human & np.isin(kind, AUGMENTED_KINDS)
    injected = labelled & ~human & np.char.startswith(kind, INJECTED_PREFIX)
    return {
        "kinds": {name: _agreement(automatic & (kind == name), agree, truth) for name in AUTOMATIC_KINDS},
        "classes": {CLASS_NAMES[c]: _agreement(automatic & (label == c), agree, truth) for c in (REAL, BOGUS)},
        "excluded": {"synthetic": value_counts(kind[synthetic]), "truth-labelled": value_counts(kind[injected]),
                     "human": value_counts(kind[human]),
                     "other": value_counts(kind[labelled & ~(human | automatic | synthetic | injected)])},
    }


def format_purity(report: dict) -> str:
    """Return a :func:`label_purity` report as a readable table.

    Parameters
    ----------
    report : dict
        As returned by :func:`label_purity`.

    Returns
    -------
    str
        One line per automatic kind and per class (n, agreeing, purity, impurities by truth kind), then the
        excluded rows; then the same for the evaluation-only fields where the report has them
        (:data:`EVALUATION_FIELDS`).
    """
    lines = ["Label purity of the automatic labels against the simulator's truth",
             f"{'group':<16} {'n':>8} {'agree':>8} {'purity':>8}  impurities (truth kind: n)"]
    groups = [(f"kind {name}", row) for name, row in report["kinds"].items()]
    groups += [(f"class {name}", row) for name, row in report["classes"].items()]
    for name, row in groups:
        purity = "-" if row["purity"] is None else f"{row['purity']:.3f}"
        impurities = ", ".join(f"{truth or _NO_MATCH}: {n}" for truth, n in row["impurities"].items()) or "-"
        lines.append(f"{name:<16} {row['n']:>8} {row['n_agree']:>8} {purity:>8}  {impurities}")
    excluded = [f"{group} ({', '.join(f'{kind}: {n}' for kind, n in counts.items())})"
                for group, counts in report["excluded"].items() if counts]
    lines.append("excluded (labels not made automatically): " + ("; ".join(excluded) or "none"))
    if EVALUATION_FIELDS in report:
        table = format_purity(report[EVALUATION_FIELDS]).splitlines()[1:]
        lines += ["", "Evaluation-only fields (never trained on; their labels are the eval split's):", *table]
    return "\n".join(lines)


def _agreement(rows: np.ndarray, agree: np.ndarray, truth: np.ndarray) -> dict:
    """Count the selected rows, those agreeing with the truth, and the truth kinds of the others."""
    n, n_agree = int(rows.sum()), int((rows & agree).sum())
    return {"n": n, "n_agree": n_agree, "purity": n_agree / n if n else None,
            "impurities": value_counts(truth[rows & ~agree])}


def value_counts(values: np.ndarray) -> dict[str, int]:
    """Return ``{value: count}`` sorted by value."""
    return dict(sorted(Counter(values.tolist()).items()))

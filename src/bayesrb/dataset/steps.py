"""File-level data-set steps, one per workflow rule: build the store, measure label purity, draw its figures."""

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bayesrb.atomic import atomic_path, write_json
from bayesrb.dataset.purity import EVALUATION_FIELDS, format_purity, label_purity
from bayesrb.dataset.settings import DatasetSettings
from bayesrb.dataset.splits import EVAL_SPLIT
from bayesrb.dataset.store import VisitSource, build_dataset, open_dataset
from bayesrb.figures.dataset import host_offset_distributions, label_counts, magnitude_distributions, stamp_gallery
from bayesrb.figures.names import DATASET_FIGURES
from bayesrb.figures.style import save_figure
from bayesrb.seeding import rng_for

log = logging.getLogger(__name__)

GALLERY_ROWS_PER_KIND = 4


def build_dataset_step(visits: Sequence[Mapping[str, Any]], out_path: str, summary_path: str, *,
                       settings: DatasetSettings, human_labels: str = "", attrs: Mapping[str, Any]) -> None:
    """Build the data-set store from every visit's shard, labels and augmentation, and write its summary.

    Parameters
    ----------
    visits : sequence of mapping
        Per visit: ``visit``, ``field``, ``shard``, ``labels``, ``augment`` (``""`` for none), ``evaluation`` and
        ``truth`` (the simulator's truth matched to the candidates; ``""`` for real data).
    out_path, summary_path : str
        The store directory and a JSON summary (split ranges and fields, counts per kind and class).
    settings : DatasetSettings
        Seed, split fractions, chunk and shard sizes.
    human_labels : str
        Optional CSV of human labels.
    attrs : mapping
        Extra store attributes (config hash).
    """
    sources = [VisitSource(v["visit"], v["field"], v["shard"], v["labels"], v["augment"] or None, v["evaluation"],
                           v["truth"] or None) for v in visits]
    summary = build_dataset(out_path, sources, fractions=settings.fractions, seed=settings.seed,
                            human_labels=human_labels or None, chunk_stamps=settings.chunk_stamps,
                            shard_stamps=settings.shard_stamps, attrs=attrs)
    write_json(summary, summary_path)
    log.info("data set %s: %d stamps; %s", out_path, summary["n_stamps"], summary["class_counts"])


def store_purity(store_path: str) -> dict:
    """Purity of the automatic labels of a data-set store (:func:`~bayesrb.dataset.purity.label_purity`).

    The report is that of the training fields (splits train, val, test); the evaluation-only fields, packed with
    variables and transients on purpose and never trained on, are reported apart under
    :data:`~bayesrb.dataset.purity.EVALUATION_FIELDS` where the store has any: their labels are the ``eval``
    split's, so their impurities bound what its metrics can show.
    """
    meta = open_dataset(store_path).meta
    evaluation = np.asarray(meta["split"]) == EVAL_SPLIT
    report = label_purity(_rows(meta, ~evaluation))
    if evaluation.any():
        report[EVALUATION_FIELDS] = label_purity(_rows(meta, evaluation))
    return report


def _rows(meta: Mapping[str, np.ndarray], selected: np.ndarray) -> dict[str, np.ndarray]:
    """The selected rows of every meta column."""
    return {name: values[selected] for name, values in meta.items()}


def write_purity(store_path: str, text_path: str, json_path: str) -> None:
    """Compare a data-set store's automatic labels with the simulator's truth; write the report as text and JSON."""
    report = store_purity(store_path)
    text = format_purity(report)
    with atomic_path(text_path) as tmp, open(tmp, "w") as handle:
        handle.write(text + "\n")
    write_json(report, json_path)
    log.info("label purity\n%s", text)


def gallery_rows(kinds: np.ndarray, per_kind: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted row indices of up to ``per_kind`` randomly chosen examples of every kind."""
    picks = [rng.choice(np.flatnonzero(kinds == kind), size=min(per_kind, int((kinds == kind).sum())), replace=False)
             for kind in np.unique(kinds)]
    return np.sort(np.concatenate(picks)) if picks else np.array([], dtype=int)


def write_dataset_figures(store_path: str, outputs: Mapping[str, str], *, seed: int) -> None:
    """Draw the data-set figures (see :data:`DATASET_FIGURES`) and save each to its output path.

    Only the gallery's examples are read from the stamps, so memory does not grow with the data set.
    """
    dataset = open_dataset(store_path)
    meta = dataset.meta
    rows = gallery_rows(np.asarray(meta["kind"]), GALLERY_ROWS_PER_KIND, rng_for(seed, "gallery"))
    stamps = (dataset.stamps.get_orthogonal_selection((rows,)) if len(rows)
              else np.zeros((0, *dataset.stamps.shape[1:]), np.float32))
    figures = {
        "gallery": lambda: stamp_gallery(stamps, dataset.channels, np.asarray(meta["kind"])[rows],
                                         rows_per_kind=GALLERY_ROWS_PER_KIND),
        "label_counts": lambda: label_counts(meta),
        "magnitudes": lambda: magnitude_distributions(meta),
        "host_offsets": lambda: host_offset_distributions(meta),
    }
    for name in DATASET_FIGURES:
        save_figure(figures[name](), outputs[name])

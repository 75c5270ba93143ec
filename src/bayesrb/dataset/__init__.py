"""The consolidated training data set: split by field, human labels, label purity."""

from bayesrb.dataset.human import apply_human_labels, read_human_labels
from bayesrb.dataset.purity import format_purity, label_purity
from bayesrb.dataset.splits import SPLITS, assign_splits
from bayesrb.dataset.store import Dataset, VisitSource, build_dataset, open_dataset

__all__ = [
    "SPLITS",
    "Dataset",
    "VisitSource",
    "apply_human_labels",
    "assign_splits",
    "build_dataset",
    "format_purity",
    "label_purity",
    "open_dataset",
    "read_human_labels",
]

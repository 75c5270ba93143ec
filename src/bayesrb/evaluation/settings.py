"""Settings of evaluation: the config's ``evaluation:`` keys that metrics and figures read.

Light (no NumPy), so that the workflow can read the field names while it builds its graph. Defaults equal the
schema's (``tests/test_settings.py`` checks).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class EvaluationSettings:
    """The ``evaluation:`` keys of metrics and figures (``comparisons`` is the workflow's); see the schema."""

    threshold: float = 0.5
    target_fpr: float = 0.01
    calibration_bins: int = 15
    uncertain_candidates: int = 6
    bootstrap_resamples: int = 1000
    seed: int = 0


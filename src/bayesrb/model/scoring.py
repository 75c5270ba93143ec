"""The settings of scoring, apart from the model: changing them rescores without retraining.

A light module (no JAX), so that the command line can show the defaults without loading the model stack. The
defaults equal those of the config's ``scoring:`` section (``tests/test_settings.py`` checks).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ScoringSettings:
    """How a trained model scores a stamp store.

    Parameters
    ----------
    n_samples : int
        Posterior (or dropout) samples per candidate.
    batch_size : int
        Candidates per scoring step.
    """

    n_samples: int = 100
    batch_size: int = 1024

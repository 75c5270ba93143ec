"""The settings of scoring, apart from the model: changing them rescores without retraining.

A light module (no JAX), so that the command line can show the defaults without loading the model stack. The
config's ``scoring:`` section has the same defaults (a test checks that they agree).
"""

#: Posterior (or dropout) samples per candidate.
DEFAULT_N_SAMPLES = 100
#: Candidates per scoring step.
DEFAULT_BATCH_SIZE = 1024

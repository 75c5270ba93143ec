"""The real-bogus CNN: Flax modules, stamp preprocessing, streaming input, Bayesian training and scoring."""

"""Context-aware classification: catalogue context and Bayesian CNN posteriors to a class.

The classes are bogus, variable star, nuclear transient, supernova, orphan and minor planet
(:data:`bayesrb.vocabulary.CONTEXT_CLASSES`).
"""

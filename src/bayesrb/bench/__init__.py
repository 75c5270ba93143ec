"""Benchmarks: what the workflow and the model cost on this machine. Entry points, never imported by the library.

- :mod:`~bayesrb.bench.workflow`: per-rule tables and stamp throughput of a run, and the scaling with visits
  (``bayesrb benchmark``);
- :mod:`~bayesrb.bench.model`: training and scoring speed of every model kind on stamps in memory
  (``bayesrb benchmark-model``);
- :mod:`~bayesrb.bench.paper_scale`: training and scoring at paper scale with the streaming input
  (``python -m bayesrb.bench.paper_scale``), on a data set resized by :mod:`~bayesrb.bench.resize`.

The published method's stack (Keras/TensorFlow) is measured by ``benchmarks/keras_reference.py``, a standalone
script run in its own environment.
"""

"""Referee-quality figures: each a function from data to a :class:`matplotlib.figure.Figure`.

One module per figure family: :mod:`~bayesrb.figures.dataset` (stamp gallery, label counts, magnitude and host-offset
distributions), :mod:`~bayesrb.figures.training` (training curves), :mod:`~bayesrb.figures.classification`
(confusion matrix, ROC, error rates), :mod:`~bayesrb.figures.recovery` (recovery against magnitude and host offset),
:mod:`~bayesrb.figures.calibration` (reliability) and :mod:`~bayesrb.figures.uncertainty` (uncertain candidates,
uncertainty against magnitude). Figures draw what they are given: the evaluation figures take curves, bins and rates
computed by the ``evaluation`` package, which this package never imports. :mod:`~bayesrb.figures.style` holds the
shared look and :func:`~bayesrb.figures.style.save_figure` (the file extension picks the format: PNG at 150 dpi, PDF,
...); :mod:`~bayesrb.figures.names` the figure names the workflow writes.

The package imports none of its modules, so ``bayesrb.figures.names`` loads without matplotlib.
"""

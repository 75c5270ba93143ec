"""Adapter: rule training_curves -> bayesrb.figures.training.write_training_curves."""

from pathlib import Path

from bayesrb.figures.training import write_training_curves
from bayesrb.logs import log_to
from bayesrb.model.train import HISTORY_FILE

with log_to(snakemake.log[0]):
    write_training_curves(Path(snakemake.input[0]) / HISTORY_FILE, snakemake.output[0],
                          title=snakemake.wildcards.experiment)

"""Adapter: rule dataset_figures -> bayesrb.dataset.steps.write_dataset_figures."""

from pathlib import Path

from bayesrb.dataset.steps import write_dataset_figures
from bayesrb.logs import log_to

with log_to(snakemake.log[0]):
    write_dataset_figures(snakemake.input[0], {Path(p).stem: p for p in snakemake.output}, seed=snakemake.params.seed)

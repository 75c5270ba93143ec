"""Adapter: rule experiment_figures -> bayesrb.evaluation.steps.write_experiment_figures."""

from pathlib import Path

from bayesrb.evaluation.steps import EvaluationSettings, write_experiment_figures
from bayesrb.logs import log_to

with log_to(snakemake.log[0]):
    write_experiment_figures(snakemake.input.table, snakemake.input.store, Path(snakemake.output[0]).parent,
                             EvaluationSettings.from_dict(snakemake.params.evaluation), snakemake.wildcards.experiment)

"""Adapter: rule experiment_figures -> bayesrb.evaluation.steps.write_experiment_figures."""

from pathlib import Path

from bayesrb.evaluation.settings import EvaluationSettings
from bayesrb.evaluation.steps import write_experiment_figures
from bayesrb.logs import log_to
from bayesrb.settings import settings_from

with log_to(snakemake.log[0]):
    write_experiment_figures(snakemake.input.table, snakemake.input.store, Path(snakemake.output[0]).parent,
                             settings_from(EvaluationSettings, snakemake.params.evaluation, "evaluation"),
                             snakemake.wildcards.experiment)

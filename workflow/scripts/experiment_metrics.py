"""Adapter: rule experiment_metrics -> bayesrb.evaluation.steps.write_metrics."""

from bayesrb.evaluation.settings import EvaluationSettings
from bayesrb.evaluation.steps import write_metrics
from bayesrb.logs import log_to
from bayesrb.settings import settings_from

with log_to(snakemake.log[0]):
    write_metrics(snakemake.input[0], snakemake.output[0],
                  settings_from(EvaluationSettings, snakemake.params.evaluation, "evaluation"),
                  snakemake.wildcards.experiment)

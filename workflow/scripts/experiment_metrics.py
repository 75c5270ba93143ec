"""Adapter: rule experiment_metrics -> bayesrb.evaluation.steps.write_metrics."""

from bayesrb.evaluation.steps import EvaluationSettings, write_metrics
from bayesrb.logs import log_to

with log_to(snakemake.log[0]):
    write_metrics(snakemake.input[0], snakemake.output[0], EvaluationSettings.from_dict(snakemake.params.evaluation),
                  snakemake.wildcards.experiment)

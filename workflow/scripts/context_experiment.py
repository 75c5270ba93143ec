"""Adapter: rule context_experiment -> bayesrb.context.steps.write_context_experiment."""

from bayesrb.context.settings import ContextSettings
from bayesrb.context.steps import write_context_experiment
from bayesrb.logs import log_to
from bayesrb.settings import settings_from

with log_to(snakemake.log[0]):
    write_context_experiment(snakemake.input[0], settings_from(ContextSettings, snakemake.params.context, "context"),
                             snakemake.wildcards.context_experiment, snakemake.output.model, snakemake.output.scores,
                             snakemake.output.metrics, threads=snakemake.threads)

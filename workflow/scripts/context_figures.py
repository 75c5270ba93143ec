"""Adapter: rule context_figures -> bayesrb.context.steps.write_context_figures."""

from bayesrb.context.steps import write_context_figures
from bayesrb.logs import log_to

with log_to(snakemake.log[0]):
    shards = dict(zip(snakemake.params.visits, snakemake.input.shards, strict=True))
    write_context_figures(snakemake.input.table, snakemake.input.scores, snakemake.input.metrics,
                          snakemake.input.model, shards, dict(snakemake.output.items()))

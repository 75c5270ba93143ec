"""Adapter: rule context_summary -> bayesrb.context.steps.write_context_summary."""

from bayesrb.context.steps import write_context_summary
from bayesrb.logs import log_to

with log_to(snakemake.log[0]):
    write_context_summary(dict(zip(snakemake.params.experiments, snakemake.input, strict=True)), snakemake.output[0])

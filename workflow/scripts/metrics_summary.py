"""Adapter: rule metrics_summary -> bayesrb.evaluation.steps.write_metrics_summary."""

from bayesrb.evaluation.steps import write_metrics_summary
from bayesrb.logs import log_to

with log_to(snakemake.log[0]):
    write_metrics_summary(dict(zip(snakemake.params.experiments, snakemake.input.metrics, strict=True)),
                          snakemake.output[0],
                          dict(zip(snakemake.params.comparisons, snakemake.input.paired, strict=True)),
                          snakemake.params.comparisons)

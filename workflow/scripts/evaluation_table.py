"""Adapter: rule evaluation_table -> bayesrb.evaluation.steps.write_evaluation_table."""

from bayesrb.evaluation.steps import write_evaluation_table
from bayesrb.logs import log_to

with log_to(snakemake.log[0]):
    write_evaluation_table(snakemake.input.store, snakemake.input.scores, snakemake.output[0])

"""Adapter: rule context_table -> bayesrb.context.steps.write_context_table."""

from bayesrb.context.settings import ContextSettings
from bayesrb.context.steps import write_context_table
from bayesrb.logs import log_to
from bayesrb.settings import settings_from

with log_to(snakemake.log[0]):
    write_context_table(list(snakemake.input.features), snakemake.input.scores, snakemake.input.summary,
                        snakemake.output[0], settings_from(ContextSettings, snakemake.params.context, "context"),
                        truth_paths=list(snakemake.input.truth), labels_path="".join(snakemake.input.labels))

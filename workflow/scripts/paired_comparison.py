"""Adapter: rule paired_comparison -> bayesrb.evaluation.steps.write_paired_comparison."""

from bayesrb.evaluation.settings import EvaluationSettings
from bayesrb.evaluation.steps import write_paired_comparison
from bayesrb.logs import log_to
from bayesrb.settings import settings_from

with log_to(snakemake.log[0]):
    tables = dict(zip(snakemake.params.experiments, snakemake.input, strict=True))
    write_paired_comparison(tables, snakemake.output[0],
                            settings_from(EvaluationSettings, snakemake.params.evaluation, "evaluation"))

"""Adapter: rule comparison_figures -> bayesrb.evaluation.steps.write_comparison_figures."""

from pathlib import Path

from bayesrb.evaluation.settings import EvaluationSettings
from bayesrb.evaluation.steps import write_comparison_figures
from bayesrb.logs import log_to
from bayesrb.settings import settings_from

with log_to(snakemake.log[0]):
    tables = dict(zip(snakemake.params.experiments, snakemake.input, strict=True))
    write_comparison_figures(tables, Path(snakemake.output[0]).parent,
                             settings_from(EvaluationSettings, snakemake.params.evaluation, "evaluation"))

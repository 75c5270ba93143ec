"""Adapter: rule comparison_figures -> bayesrb.evaluation.steps.write_comparison_figures."""

from pathlib import Path

from bayesrb.evaluation.steps import EvaluationSettings, write_comparison_figures
from bayesrb.logs import log_to

with log_to(snakemake.log[0]):
    tables = dict(zip(snakemake.params.experiments, snakemake.input, strict=True))
    write_comparison_figures(tables, Path(snakemake.output[0]).parent,
                             EvaluationSettings.from_dict(snakemake.params.evaluation))

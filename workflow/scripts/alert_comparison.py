"""Adapter: rule alert_comparison -> bayesrb.alerts.steps.compare."""

from bayesrb.alerts.steps import compare
from bayesrb.logs import log_to

with log_to(snakemake.log[0]):
    compare(snakemake.input[0], snakemake.output.json, snakemake.output.markdown,
            survey=snakemake.params.survey, threshold=snakemake.params.threshold,
            n_bootstrap=snakemake.params.n_bootstrap, seed=snakemake.params.seed)

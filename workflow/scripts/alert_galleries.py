"""Adapter: rule alert_galleries -> bayesrb.alerts.steps.galleries."""

from bayesrb.alerts.steps import galleries
from bayesrb.logs import log_to

with log_to(snakemake.log[0]):
    galleries(snakemake.input.scores, snakemake.input.store, dict(snakemake.output.items()),
              survey=snakemake.params.survey, rows=snakemake.params.rows, threshold=snakemake.params.threshold)

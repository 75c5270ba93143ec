"""Adapter: rule ingest_alerts -> bayesrb.alerts.steps.ingest."""

from bayesrb.alerts.steps import ingest
from bayesrb.logs import log_to

with log_to(snakemake.log[0]):
    ingest(list(snakemake.input), snakemake.output[0], survey=snakemake.params.survey)

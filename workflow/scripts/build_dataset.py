"""Adapter: rule build_dataset -> bayesrb.dataset.steps.build_dataset_step."""

from bayesrb.dataset.steps import build_dataset_step
from bayesrb.logs import log_to

with log_to(snakemake.log[0]):
    build_dataset_step(
        snakemake.params.visits,
        snakemake.output.store,
        snakemake.output.summary,
        section=snakemake.params.dataset,
        human_labels=(snakemake.input.human or [""])[0],
        attrs={"config_hash": snakemake.params.config_hash},
    )

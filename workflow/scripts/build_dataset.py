"""Adapter: rule build_dataset -> bayesrb.dataset.steps.build_dataset_step."""

from bayesrb.dataset.settings import DatasetSettings
from bayesrb.dataset.steps import build_dataset_step
from bayesrb.logs import log_to
from bayesrb.settings import settings_from

with log_to(snakemake.log[0]):
    build_dataset_step(
        snakemake.params.visits,
        snakemake.output.store,
        snakemake.output.summary,
        settings=settings_from(DatasetSettings, snakemake.params.dataset, "dataset"),
        human_labels=(snakemake.input.human or [""])[0],
        attrs={"config_hash": snakemake.params.config_hash},
    )

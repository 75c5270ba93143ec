"""Adapter: rule extract_stamps -> bayesrb.stamps.steps.stamp_visit."""

from bayesrb.logs import log_to
from bayesrb.settings import settings_from
from bayesrb.stamps.settings import StampSettings
from bayesrb.stamps.steps import stamp_visit

with log_to(snakemake.log[0]):
    stamp_visit(
        snakemake.wildcards.visit,
        snakemake.input.science,
        snakemake.input.template,
        snakemake.input.difference,
        snakemake.input.candidates,
        snakemake.output[0],
        settings_from(StampSettings, snakemake.params.stamps, "stamps"),
        seed=snakemake.params.seed,
        config_hash=snakemake.params.config_hash,
        external_difference_image=snakemake.params.external,
    )

"""Adapter: rule extract_stamps -> bayesrb.stamps.steps.stamp_visit."""

from bayesrb.logs import log_to
from bayesrb.stamps.steps import stamp_visit

with log_to(snakemake.log[0]):
    stamp_visit(
        snakemake.wildcards.visit,
        snakemake.input.science,
        snakemake.input.template,
        snakemake.input.difference,
        snakemake.input.candidates,
        snakemake.output[0],
        size=snakemake.params.stamps["size"],
        channels=snakemake.params.stamps["channels"],
        seed=snakemake.params.seed,
        config_hash=snakemake.params.config_hash,
        external_difference_image=snakemake.params.external,
    )

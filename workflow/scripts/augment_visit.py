"""Adapter: rule augment_visit -> bayesrb.labels.synthetic.augment_visit."""

from bayesrb.labels.settings import AugmentSettings
from bayesrb.labels.synthetic import augment_visit
from bayesrb.logs import log_to
from bayesrb.settings import settings_from

with log_to(snakemake.log[0]):
    augment_visit(
        snakemake.wildcards.visit,
        snakemake.input.shard,
        snakemake.input.labels,
        (snakemake.input.science, snakemake.input.template, snakemake.input.difference),
        snakemake.output[0],
        galaxies_path=snakemake.input.galaxies[0],
        avoid_paths=tuple(snakemake.input.avoid),
        settings=settings_from(AugmentSettings, snakemake.params.augment, "augment"),
        seed=snakemake.params.seed,
        config_hash=snakemake.params.config_hash,
        external_difference_image=snakemake.params.external,
        stars_path=snakemake.input.stars[0] if snakemake.input.stars else None,
    )

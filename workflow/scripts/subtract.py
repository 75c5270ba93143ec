"""Adapter: rule subtract -> bayesrb.imaging.steps.subtract_visit."""

from bayesrb.imaging.steps import subtract_visit
from bayesrb.logs import log_to

imaging = snakemake.params.imaging
with log_to(snakemake.log[0]):
    subtract_visit(
        snakemake.input.science,
        snakemake.input.template,
        snakemake.output[0],
        tile_size=imaging["tile_size"],
        kernel_half_width=imaging["kernel_half_width"],
        background_order=imaging["background_order"],
        kernel_fit=imaging["kernel_fit"],
        min_template_coverage=imaging["min_template_coverage"],
        min_usable_fraction=imaging["min_usable_fraction"],
        fail_on_low_usable=imaging["low_usable"] == "fail",
        n_threads=snakemake.threads,
    )

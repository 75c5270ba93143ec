"""Adapter: rule detect -> bayesrb.imaging.steps.detect_visit."""

from bayesrb.imaging.steps import detect_visit
from bayesrb.logs import log_to

imaging = snakemake.params.imaging
with log_to(snakemake.log[0]):
    detect_visit(
        snakemake.input.difference,
        snakemake.input.science,
        snakemake.output[0],
        external=snakemake.params.external,
        threshold=imaging["detection_threshold"],
        min_area=imaging["min_area"],
        edge_margin_px=imaging["edge_margin_px"],
        min_usable_fraction=imaging["min_usable_fraction"],
        fail_on_low_usable=imaging["low_usable"] == "fail",
    )

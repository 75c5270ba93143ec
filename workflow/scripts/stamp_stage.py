"""Adapter: rule stamp_stage -> detect and extract in one process.

``bayesrb.imaging.steps.detect_visit``, then ``bayesrb.stamps.steps.stamp_visit``, each logging to its own file.
"""

from bayesrb.imaging.settings import DetectSettings
from bayesrb.imaging.steps import detect_visit
from bayesrb.logs import log_to
from bayesrb.settings import settings_from
from bayesrb.stamps.settings import StampSettings
from bayesrb.stamps.steps import stamp_visit

with log_to(snakemake.log.detect):
    detect_visit(snakemake.input.difference, snakemake.input.science, snakemake.output.candidates,
                 settings_from(DetectSettings, snakemake.params.detect, "imaging"), external=snakemake.params.external)
with log_to(snakemake.log.extract_stamps):
    stamp_visit(snakemake.wildcards.visit, snakemake.input.science, snakemake.input.template,
                snakemake.input.difference, snakemake.output.candidates, snakemake.output.shard,
                settings_from(StampSettings, snakemake.params.stamps, "stamps"), seed=snakemake.params.seed,
                config_hash=snakemake.params.config_hash, external_difference_image=snakemake.params.external)

"""Adapter: rules stamp_stage and stamp_stage_given_difference -> subtract, detect and extract in one process.

``bayesrb.imaging.steps.subtract_visit`` (unless the manifest gives the difference image), then
``detect_visit``, then ``bayesrb.stamps.steps.stamp_visit``, each logging to its own file.
"""

from bayesrb.imaging.settings import DetectSettings, SubtractSettings
from bayesrb.imaging.steps import detect_visit, subtract_visit
from bayesrb.logs import log_to
from bayesrb.settings import settings_from
from bayesrb.stamps.settings import StampSettings
from bayesrb.stamps.steps import stamp_visit

given = "difference" in snakemake.input.keys()
difference = snakemake.input.difference if given else snakemake.output.difference
if not given:
    with log_to(snakemake.log.subtract):
        subtract_visit(snakemake.input.science, snakemake.input.template, difference,
                       settings_from(SubtractSettings, snakemake.params.subtract, "imaging"),
                       n_threads=snakemake.threads)
with log_to(snakemake.log.detect):
    detect_visit(difference, snakemake.input.science, snakemake.output.candidates,
                 settings_from(DetectSettings, snakemake.params.detect, "imaging"), external=given)
with log_to(snakemake.log.extract_stamps):
    stamp_visit(snakemake.wildcards.visit, snakemake.input.science, snakemake.input.template, difference,
                snakemake.output.candidates, snakemake.output.shard,
                settings_from(StampSettings, snakemake.params.stamps, "stamps"), seed=snakemake.params.seed,
                config_hash=snakemake.params.config_hash, external_difference_image=given)

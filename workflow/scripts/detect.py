"""Adapter: rule detect -> bayesrb.imaging.steps.detect_visit."""

from bayesrb.imaging.settings import DetectSettings
from bayesrb.imaging.steps import detect_visit
from bayesrb.logs import log_to
from bayesrb.settings import settings_from

with log_to(snakemake.log[0]):
    detect_visit(snakemake.input.difference, snakemake.input.science, snakemake.output[0],
                 settings_from(DetectSettings, snakemake.params.imaging, "imaging"), external=snakemake.params.external)

"""Adapter: rule subtract -> bayesrb.imaging.steps.subtract_visit."""

from bayesrb.imaging.settings import SubtractSettings
from bayesrb.imaging.steps import subtract_visit
from bayesrb.logs import log_to
from bayesrb.settings import settings_from

with log_to(snakemake.log[0]):
    subtract_visit(snakemake.input.science, snakemake.input.template, snakemake.output[0],
                   settings_from(SubtractSettings, snakemake.params.imaging, "imaging"), n_threads=snakemake.threads)

"""Adapter: rule simulate_survey -> bayesrb.simulate.files.write_survey."""

from bayesrb.logs import log_to
from bayesrb.minorplanets.orientation import earth_orientation_from
from bayesrb.simulate.files import CATALOGUE_NAMES, write_survey

with log_to(snakemake.log[0]), earth_orientation_from(snakemake.input.earth_orientation):
    write_survey(
        snakemake.params.simulate,
        plan_path=snakemake.output.plan,
        orbits_path=snakemake.output.orbits,
        sky_path=snakemake.output.sky,
        catalogue_paths=dict(zip(CATALOGUE_NAMES, snakemake.output.catalogues, strict=True)),
    )

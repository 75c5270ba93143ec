"""Adapter: rule simulate_visit -> bayesrb.simulate.files.write_visit."""

from bayesrb.logs import log_to
from bayesrb.minorplanets.orientation import earth_orientation_from
from bayesrb.simulate.files import write_visit

with log_to(snakemake.log[0]), earth_orientation_from(snakemake.input.earth_orientation):
    write_visit(
        snakemake.params.simulate,
        snakemake.wildcards.visit,
        sky_path=snakemake.input.sky,
        orbits_path=snakemake.input.orbits,
        science_path=snakemake.output.science,
        truth_path=snakemake.output.truth,
    )

"""Adapter: rule simulate_visit -> bayesrb.simulate.files.write_visit."""

from bayesrb.logs import log_to
from bayesrb.simulate.files import write_visit

with log_to(snakemake.log[0]):
    write_visit(
        snakemake.params.simulate,
        snakemake.wildcards.visit,
        sky_path=snakemake.input.sky,
        orbits_path=snakemake.input.orbits,
        science_path=snakemake.output.science,
        truth_path=snakemake.output.truth,
    )

"""Adapter: rule simulate_template -> bayesrb.simulate.files.write_template."""

from bayesrb.logs import log_to
from bayesrb.simulate.files import write_template

with log_to(snakemake.log[0]):
    write_template(snakemake.params.simulate, snakemake.wildcards.field, snakemake.input.sky, snakemake.output[0])

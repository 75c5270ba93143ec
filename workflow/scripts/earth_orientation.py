"""Adapter: rule earth_orientation -> bayesrb.minorplanets.orientation.write_earth_orientation."""

from bayesrb.logs import log_to
from bayesrb.minorplanets.orientation import write_earth_orientation

with log_to(snakemake.log[0]):
    write_earth_orientation(snakemake.output[0])

"""Adapter: rule match_truth -> bayesrb.simulate.files.write_truth_matches."""

from bayesrb.logs import log_to
from bayesrb.simulate.files import write_truth_matches

with log_to(snakemake.log[0]):
    write_truth_matches(snakemake.input.shard, snakemake.input.truth, snakemake.output[0])

"""Adapter: rule label_purity -> bayesrb.dataset.steps.write_purity."""

from bayesrb.dataset.steps import write_purity
from bayesrb.logs import log_to

with log_to(snakemake.log[0]):
    write_purity(snakemake.input[0], snakemake.output.text, snakemake.output.json)

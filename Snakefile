# bayesrb: real-bogus classification of difference-imaging candidates with a Bayesian CNN.
# Run `snakemake --cores all` for the embedded default (a simulated survey); see README.md.

configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/imaging.smk"
include: "workflow/rules/stamps.smk"


rule all:
    input:
        PLAN.shards(),
    default_target: True

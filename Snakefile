# bayesrb: real-bogus classification of difference-imaging candidates with a Bayesian CNN.
# Run `snakemake --cores all` for the embedded default (a simulated survey); see README.md.

configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/imaging.smk"
include: "workflow/rules/stamps.smk"
include: "workflow/rules/labels.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/model.smk"


rule all:
    input:
        rules.build_dataset.output,
        rules.dataset_figures.output,
        purity_reports(),
        expand(rules.score_dataset.output, experiment=EXPERIMENTS),
        expand(rules.training_curves.output, experiment=EXPERIMENTS),
    default_target: True

# bayesrb: real-bogus classification of difference-imaging candidates with a Bayesian CNN.
# Run `snakemake --cores all` for the embedded default (a simulated survey); see README.md.

include: "workflow/rules/common.smk"
include: "workflow/rules/ephemeris.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/imaging.smk"
include: "workflow/rules/stamps.smk"
include: "workflow/rules/truth.smk"
include: "workflow/rules/labels.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/context.smk"
include: "workflow/rules/alerts.smk"


rule all:
    input:
        rules.build_dataset.output,
        rules.dataset_figures.output,
        purity_reports(),
        expand(rules.training_curves.output, experiment=EXPERIMENTS),
        expand(rules.experiment_figures.output, experiment=EXPERIMENTS),
        expand(rules.comparison_figures.output, comparison=COMPARISONS),
        rules.metrics_summary.output,
        context_outputs(),
        alert_outputs(),
    default_target: True

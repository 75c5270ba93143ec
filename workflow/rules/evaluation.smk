# Evaluation of every experiment on the held-out splits: metrics, figures, comparisons and the summary table.
from bayesrb.figures.names import COMPARISON_FIGURES, EXPERIMENT_FIGURES, UNCERTAIN_FIGURE

EVALUATION_FIGURES = [*EXPERIMENT_FIGURES, UNCERTAIN_FIGURE]


rule evaluation_table:
    input:
        scores=rules.score_dataset.output[0],
        store=rules.build_dataset.output.store,
    output:
        f"{RESULTS}/experiments/{{experiment}}/evaluation.parquet",
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/evaluation_table/{{experiment}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluation_table/{{experiment}}.tsv"
    script:
        "../scripts/evaluation_table.py"


rule experiment_metrics:
    input:
        rules.evaluation_table.output[0],
    output:
        f"{RESULTS}/experiments/{{experiment}}/metrics.json",
    params:
        evaluation=rule_settings(config, "evaluation"),
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/experiment_metrics/{{experiment}}.log",
    benchmark:
        f"{BENCHMARKS}/experiment_metrics/{{experiment}}.tsv"
    script:
        "../scripts/experiment_metrics.py"


rule experiment_figures:
    input:
        table=rules.evaluation_table.output[0],
        store=rules.build_dataset.output.store,
    output:
        **figure_reports(
            f"{RESULTS}/experiments/{{experiment}}/figures",
            EVALUATION_FIGURES,
            "Evaluation",
            "{experiment}",
        ),
    params:
        evaluation=rule_settings(config, "evaluation"),
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/experiment_figures/{{experiment}}.log",
    benchmark:
        f"{BENCHMARKS}/experiment_figures/{{experiment}}.tsv"
    script:
        "../scripts/experiment_figures.py"


rule comparison_figures:
    input:
        comparison_tables,
    output:
        **figure_reports(
            f"{RESULTS}/comparisons/{{comparison}}",
            COMPARISON_FIGURES,
            "Comparisons",
            "{comparison}",
        ),
    params:
        experiments=comparison_experiments,
        evaluation=rule_settings(config, "evaluation"),
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/comparison_figures/{{comparison}}.log",
    script:
        "../scripts/comparison_figures.py"


rule paired_comparison:
    input:
        comparison_tables,
    output:
        f"{RESULTS}/comparisons/{{comparison}}/paired.json",
    params:
        experiments=comparison_experiments,
        evaluation=rule_settings(config, "evaluation"),
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/paired_comparison/{{comparison}}.log",
    benchmark:
        f"{BENCHMARKS}/paired_comparison/{{comparison}}.tsv"
    script:
        "../scripts/paired_comparison.py"


rule metrics_summary:
    input:
        metrics=expand(rules.experiment_metrics.output[0], experiment=EXPERIMENTS),
        paired=expand(rules.paired_comparison.output[0], comparison=COMPARISONS),
    output:
        report(f"{RESULTS}/metrics.md", caption="../report/metrics.rst", category="Metrics"),
    params:
        experiments=list(EXPERIMENTS),
        comparisons=COMPARISONS,
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/metrics_summary.log",
    script:
        "../scripts/metrics_summary.py"

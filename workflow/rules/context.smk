# The context classifier: per-visit catalogue features, the CNN's scores of the candidates it never trained on, one
# table of both, and one trained and measured classifier per `context.experiments` entry, its figures and a summary.
from bayesrb.figures.names import CONTEXT_FIGURES


rule context_features:
    input:
        shard=paths.shard(RESULTS),
        science=science_fits,
        template=template_fits,
        difference=difference_fits,
        orbits=orbit_file,
        earth_orientation=earth_orientation,
        catalogues=PLAN.context_catalogue_files(),
    output:
        paths.context_features(RESULTS),
    params:
        catalogues=PLAN.context_catalogues(),
        features=config["context"]["features"],
        field=visit_field,
        max_bad_orbit_fraction=config["labels"]["max_bad_orbit_fraction"],
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/context_features/{{visit}}.log",
    benchmark:
        f"{BENCHMARKS}/context_features/{{visit}}.tsv"
    script:
        "../scripts/context_features.py"


rule score_context_candidates:
    input:
        training=f"{RESULTS}/experiments/{CNN_EXPERIMENT}/training",
        shards=PLAN.shards(),
        summary=rules.build_dataset.output.summary,
    output:
        paths.context_cnn_scores(RESULTS),
    params:
        fields=PLAN.visit_fields(),
        scoring=context_cnn_scoring,
    threads: workflow.cores
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/score_context_candidates.log",
    benchmark:
        f"{BENCHMARKS}/score_context_candidates.tsv"
    script:
        "../scripts/score_context_candidates.py"


rule context_table:
    input:
        features=expand(paths.context_features(RESULTS), visit=PLAN.visit_ids),
        scores=rules.score_context_candidates.output[0],
        summary=rules.build_dataset.output.summary,
        truth=PLAN.truth_matches(),
        labels=PLAN.context_labels(),
    output:
        paths.context_table(RESULTS),
    params:
        context=context_keys("seed", "fractions", "features"),
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/context_table.log",
    benchmark:
        f"{BENCHMARKS}/context_table.tsv"
    script:
        "../scripts/context_table.py"


rule context_experiment:
    input:
        rules.context_table.output[0],
    output:
        model=f"{paths.context_experiment(RESULTS)}/model.joblib",
        model_meta=f"{paths.context_experiment(RESULTS)}/model.joblib.json",
        scores=f"{paths.context_experiment(RESULTS)}/scores.parquet",
        metrics=f"{paths.context_experiment(RESULTS)}/metrics.json",
    params:
        context=context_experiment_settings,
    threads: workflow.cores
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/context_experiment/{{context_experiment}}.log",
    benchmark:
        f"{BENCHMARKS}/context_experiment/{{context_experiment}}.tsv"
    script:
        "../scripts/context_experiment.py"


rule context_figures:
    input:
        table=rules.context_table.output[0],
        model=rules.context_experiment.output.model,
        scores=rules.context_experiment.output.scores,
        metrics=rules.context_experiment.output.metrics,
        shards=PLAN.shards(),
    output:
        **{
            name: report(
                f"{paths.context_experiment(RESULTS)}/figures/{name}.png",
                caption=f"../report/context/{name}.rst",
                category="Context classifier",
                subcategory="{context_experiment}",
            )
            for name in CONTEXT_FIGURES
        },
    params:
        visits=PLAN.visit_ids,
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/context_figures/{{context_experiment}}.log",
    benchmark:
        f"{BENCHMARKS}/context_figures/{{context_experiment}}.tsv"
    script:
        "../scripts/context_figures.py"


rule context_summary:
    input:
        expand(rules.context_experiment.output.metrics, context_experiment=CONTEXT_EXPERIMENTS),
    output:
        report(f"{RESULTS}/context/metrics.md", caption="../report/context/metrics.rst", category="Metrics"),
    params:
        experiments=CONTEXT_EXPERIMENTS,
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/context_summary.log",
    script:
        "../scripts/context_summary.py"

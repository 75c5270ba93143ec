# Real alert packets (config `alerts.files`), scored by one experiment's model: ingest, score, compare, galleries.


rule ingest_alerts:
    input:
        PLAN.alert_files(),
    output:
        directory(paths.alert_store(RESULTS)),
    params:
        survey=config["alerts"]["survey"],
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/ingest_alerts.log",
    benchmark:
        f"{BENCHMARKS}/ingest_alerts.tsv"
    script:
        "../scripts/ingest_alerts.py"


rule score_alerts:
    input:
        training=alert_training,
        store=rules.ingest_alerts.output[0],
    output:
        paths.alert_scores(RESULTS),
    params:
        scoring=alert_scoring,
        seed=config["alerts"]["seed"],
    threads: workflow.cores
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/score_alerts.log",
    benchmark:
        f"{BENCHMARKS}/score_alerts.tsv"
    script:
        "../scripts/score_alerts.py"


rule alert_comparison:
    input:
        rules.score_alerts.output[0],
    output:
        json=paths.alert_comparison(RESULTS, "json"),
        markdown=report(
            paths.alert_comparison(RESULTS, "md"),
            caption="../report/alerts/comparison.rst",
            category="Real alerts",
        ),
    params:
        survey=config["alerts"]["survey"],
        threshold=config["evaluation"]["threshold"],
        n_bootstrap=config["alerts"]["n_bootstrap"],
        seed=config["alerts"]["seed"],
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/alert_comparison.log",
    script:
        "../scripts/alert_comparison.py"


rule alert_galleries:
    input:
        scores=rules.score_alerts.output[0],
        store=rules.ingest_alerts.output[0],
    output:
        **{
            order: report(
                paths.alert_gallery(RESULTS, order),
                caption="../report/alerts/gallery.rst",
                category="Real alerts",
            )
            for order in ALERT_GALLERIES
        },
    params:
        survey=config["alerts"]["survey"],
        rows=config["alerts"]["gallery_rows"],
        threshold=config["evaluation"]["threshold"],
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/alert_galleries.log",
    benchmark:
        f"{BENCHMARKS}/alert_galleries.tsv"
    script:
        "../scripts/alert_galleries.py"

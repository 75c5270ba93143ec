# The consolidated data set, its label purity (simulated surveys) and its figures.


rule build_dataset:
    input:
        shards=PLAN.shards(),
        labels=PLAN.labels(),
        augment=PLAN.augmentations(),
        truth=PLAN.truth_matches(),
        human=PLAN.human_labels(),
    output:
        store=directory(paths.dataset_store(RESULTS)),
        summary=paths.dataset_summary(RESULTS),
    params:
        visits=PLAN.dataset_sources(),
        dataset=config["dataset"],
        config_hash=DATASET_HASH,
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/build_dataset.log",
    benchmark:
        f"{BENCHMARKS}/build_dataset.tsv"
    script:
        "../scripts/build_dataset.py"


rule label_purity:
    input:
        rules.build_dataset.output.store,
    output:
        text=f"{RESULTS}/dataset/purity.txt",
        json=f"{RESULTS}/dataset/purity.json",
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/label_purity.log",
    benchmark:
        f"{BENCHMARKS}/label_purity.tsv"
    script:
        "../scripts/label_purity.py"


rule dataset_figures:
    input:
        rules.build_dataset.output.store,
    output:
        report(
            expand(f"{RESULTS}/figures/dataset/{{name}}.png", name=DATASET_FIGURES),
            caption="../report/dataset.rst",
            category="Data set",
        ),
    params:
        seed=config["dataset"]["seed"],
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/dataset_figures.log",
    benchmark:
        f"{BENCHMARKS}/dataset_figures.tsv"
    script:
        "../scripts/dataset_figures.py"

# Training and scoring of every experiment (config `experiments`, each a variant of `model`).


rule train_model:
    input:
        rules.build_dataset.output.store,
    output:
        directory(f"{RESULTS}/experiments/{{experiment}}/training"),
    params:
        model=experiment_model,
        training=experiment_training,
        checkpoints=experiment_checkpoints,
    threads: workflow.cores
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/train_model/{{experiment}}.log",
    benchmark:
        f"{BENCHMARKS}/train_model/{{experiment}}.tsv"
    script:
        "../scripts/train_model.py"


rule score_dataset:
    input:
        training=experiment_training_dir,
        store=rules.build_dataset.output.store,
    output:
        f"{RESULTS}/experiments/{{experiment}}/scores.parquet",
    params:
        scoring=experiment_scoring,
        seed=experiment_seed,
    threads: workflow.cores
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/score_dataset/{{experiment}}.log",
    benchmark:
        f"{BENCHMARKS}/score_dataset/{{experiment}}.tsv"
    script:
        "../scripts/score_dataset.py"


rule training_curves:
    input:
        experiment_training_dir,
    output:
        report(
            f"{RESULTS}/experiments/{{experiment}}/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training",
            subcategory="{experiment}",
        ),
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/training_curves/{{experiment}}.log",
    script:
        "../scripts/training_curves.py"

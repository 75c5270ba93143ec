# Detection and stamp extraction of a visit in one job (one zarr v3 shard per visit): one process instead of two
# spares a Python start-up and its imports per visit, while each step still writes its own output and its own log
# (results/logs/{detect,extract_stamps}/). Subtraction stays a job of its own (imaging.smk), so that a changed
# detection or stamp setting never reruns it.


rule stamp_stage:
    input:
        science=science_fits,
        template=template_fits,
        difference=difference_fits,
    output:
        candidates=paths.candidates(RESULTS),
        shard=directory(paths.shard(RESULTS)),
    params:
        detect=rule_settings(config, "detect"),
        stamps=config["stamps"],
        seed=config["simulate"]["seed"],
        config_hash=STAMPS_HASH,
        external=has_external_difference,
    conda:
        "../../envs/bayesrb.yaml"
    log:
        detect=f"{LOGS}/detect/{{visit}}.log",
        extract_stamps=f"{LOGS}/extract_stamps/{{visit}}.log",
    benchmark:
        f"{BENCHMARKS}/stamp_stage/{{visit}}.tsv"
    script:
        "../scripts/stamp_stage.py"

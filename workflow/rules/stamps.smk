# The stamp stage of a visit in one job: template alignment + PSF-matched subtraction, detection, stamp extraction
# (one zarr v3 shard per visit). One process instead of three spares two Python start-ups and their imports per
# visit; every step still writes its own output and its own log (results/logs/{subtract,detect,extract_stamps}/).


rule stamp_stage:
    input:
        science=science_fits,
        template=template_fits,
    output:
        difference=paths.difference(RESULTS),
        candidates=paths.candidates(RESULTS),
        shard=directory(paths.shard(RESULTS)),
    params:
        subtract=rule_settings(config, "subtract"),
        detect=rule_settings(config, "detect"),
        stamps=config["stamps"],
        seed=config["simulate"]["seed"],
        config_hash=STAMPS_HASH,
    threads: config["threads"]["subtract"]
    resources:
        mem_mb=1500,
    wildcard_constraints:
        visit=visits_pattern(PLAN.subtracted_visits()),
    conda:
        "../../envs/bayesrb.yaml"
    log:
        subtract=f"{LOGS}/subtract/{{visit}}.log",
        detect=f"{LOGS}/detect/{{visit}}.log",
        extract_stamps=f"{LOGS}/extract_stamps/{{visit}}.log",
    benchmark:
        f"{BENCHMARKS}/stamp_stage/{{visit}}.tsv"
    script:
        "../scripts/stamp_stage.py"


use rule stamp_stage as stamp_stage_given_difference with:
    input:
        science=science_fits,
        template=template_fits,
        difference=difference_fits,
    output:
        candidates=paths.candidates(RESULTS),
        shard=directory(paths.shard(RESULTS)),
    threads: 1
    wildcard_constraints:
        visit=visits_pattern(PLAN.given_difference_visits()),
    log:
        detect=f"{LOGS}/detect/{{visit}}.log",
        extract_stamps=f"{LOGS}/extract_stamps/{{visit}}.log",
    benchmark:
        f"{BENCHMARKS}/stamp_stage_given_difference/{{visit}}.tsv"

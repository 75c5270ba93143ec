# Stamp extraction: one zarr v3 shard per visit.


rule extract_stamps:
    input:
        science=science_fits,
        template=template_fits,
        difference=difference_fits,
        candidates=rules.detect.output[0],
    output:
        directory(paths.shard(RESULTS)),
    params:
        stamps=config["stamps"],
        seed=config["simulate"]["seed"],
        config_hash=STAMPS_HASH,
        external=has_external_difference,
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/extract_stamps/{{visit}}.log",
    benchmark:
        f"{BENCHMARKS}/extract_stamps/{{visit}}.tsv"
    script:
        "../scripts/extract_stamps.py"

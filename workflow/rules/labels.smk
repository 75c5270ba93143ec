# Automatic labels per visit, synthetic transients per training visit.


rule label_visit:
    input:
        shard=paths.shard(RESULTS),
        science=science_fits,
        orbits=orbit_file,
        earth_orientation=earth_orientation,
        avoid=avoid_catalogues,
        stars=star_catalogue,
        field_candidates=field_candidates,
        truth=evaluation_truth,
    output:
        paths.labels(RESULTS),
    params:
        labels=rule_settings(config, "label_visit"),
        seed=config["labels"]["seed"],
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/label_visit/{{visit}}.log",
    benchmark:
        f"{BENCHMARKS}/label_visit/{{visit}}.tsv"
    script:
        "../scripts/label_visit.py"


rule augment_visit:
    input:
        shard=paths.shard(RESULTS),
        labels=rules.label_visit.output[0],
        science=science_fits,
        template=template_fits,
        difference=difference_fits,
        galaxies=galaxy_catalogue,
        avoid=avoid_catalogues,
        stars=star_catalogue,
    output:
        directory(paths.augmentation(RESULTS)),
    params:
        augment=rule_settings(config, "augment_visit"),
        seed=config["labels"]["seed"],
        config_hash=LABELS_HASH,
        external=has_external_difference,
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/augment_visit/{{visit}}.log",
    benchmark:
        f"{BENCHMARKS}/augment_visit/{{visit}}.tsv"
    script:
        "../scripts/augment_visit.py"

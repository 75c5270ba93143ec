# Real imaging steps: template alignment + PSF-matched subtraction, then detection.


rule subtract:
    input:
        science=science_fits,
        template=template_fits,
    output:
        paths.difference(RESULTS),
    params:
        imaging=rule_settings(config, "subtract"),
    threads: config["threads"]["subtract"]
    resources:
        mem_mb=1500,
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/subtract/{{visit}}.log",
    benchmark:
        f"{BENCHMARKS}/subtract/{{visit}}.tsv"
    script:
        "../scripts/subtract.py"


rule detect:
    input:
        difference=difference_fits,
        science=science_fits,
    output:
        paths.candidates(RESULTS),
    params:
        imaging=rule_settings(config, "detect"),
        external=has_external_difference,
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/detect/{{visit}}.log",
    benchmark:
        f"{BENCHMARKS}/detect/{{visit}}.tsv"
    script:
        "../scripts/detect.py"

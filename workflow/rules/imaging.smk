# Real imaging steps: template alignment + PSF-matched subtraction (detection and stamps: stamps.smk).


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

# The simulated survey (survey.source: simulate): plan, orbits, catalogues, templates and visits.


rule simulate_survey:
    output:
        plan=f"{RESULTS}/survey/plan.ecsv",
        orbits=f"{RESULTS}/survey/orbits/MPCORB.DAT",
        sky=f"{RESULTS}/survey/truth/sky.ecsv",
        catalogues=expand(f"{RESULTS}/survey/catalogues/{{name}}.ecsv", name=CATALOGUES),
    params:
        simulate=config["simulate"],
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/simulate_survey.log",
    benchmark:
        f"{BENCHMARKS}/simulate_survey.tsv"
    script:
        "../scripts/simulate_survey.py"


rule simulate_template:
    input:
        sky=rules.simulate_survey.output.sky,
    output:
        f"{RESULTS}/survey/templates/{{field}}.fits",
    params:
        simulate=config["simulate"],
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/simulate_template/{{field}}.log",
    benchmark:
        f"{BENCHMARKS}/simulate_template/{{field}}.tsv"
    script:
        "../scripts/simulate_template.py"


rule simulate_visit:
    input:
        sky=rules.simulate_survey.output.sky,
        orbits=rules.simulate_survey.output.orbits,
    output:
        science=f"{RESULTS}/survey/visits/{{visit}}/science.fits",
        truth=f"{RESULTS}/survey/visits/{{visit}}/truth.ecsv",
    params:
        simulate=config["simulate"],
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/simulate_visit/{{visit}}.log",
    benchmark:
        f"{BENCHMARKS}/simulate_visit/{{visit}}.tsv"
    script:
        "../scripts/simulate_visit.py"


# The simulated survey (survey.source: simulate): plan, orbits, catalogues, templates and visits.


rule simulate_survey:
    input:
        earth_orientation=paths.earth_orientation(RESULTS),
    output:
        plan=paths.survey_plan(RESULTS),
        orbits=paths.orbits(RESULTS),
        sky=paths.sky_truth(RESULTS),
        catalogues=expand(paths.catalogue(RESULTS), name=CATALOGUES),
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
        paths.template(RESULTS),
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
        earth_orientation=paths.earth_orientation(RESULTS),
    output:
        science=paths.science(RESULTS),
        truth=paths.visit_truth(RESULTS),
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


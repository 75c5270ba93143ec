# Simulated surveys only: every candidate matched to the simulator's truth, in a table beside the pipeline's
# outputs, read as data by evaluation-only labels, the data set and label purity.


rule match_truth:
    input:
        shard=paths.shard(RESULTS),
        truth=rules.simulate_visit.output.truth,
    output:
        paths.truth_match(RESULTS),
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/match_truth/{{visit}}.log",
    benchmark:
        f"{BENCHMARKS}/match_truth/{{visit}}.tsv"
    script:
        "../scripts/match_truth.py"

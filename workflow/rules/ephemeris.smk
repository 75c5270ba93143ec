# The Earth-orientation (IERS) table, written once per run: every job that computes a minor-planet ephemeris reads
# it instead of parsing astropy's text tables (the same values, a fraction of the start-up).
from bayesrb.minorplanets.orientation import iers_data_version


rule earth_orientation:
    output:
        paths.earth_orientation(RESULTS),
    params:
        iers_data=iers_data_version(),  # astropy's bundled tables: a new version rewrites the table
    conda:
        "../../envs/bayesrb.yaml"
    log:
        f"{LOGS}/earth_orientation.log",
    benchmark:
        f"{BENCHMARKS}/earth_orientation.tsv"
    script:
        "../scripts/earth_orientation.py"


# A short job: on a cluster it runs where Snakemake runs instead of waiting in the queue.
localrules:
    earth_orientation,

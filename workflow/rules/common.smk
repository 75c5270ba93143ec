# Helpers of the workflow: config validation, the plan of visits and the input functions.
from snakemake.utils import validate

from bayesrb.workflow import WorkflowPlan, config_hash


validate(config, "../schemas/config.schema.yaml")

PLAN = WorkflowPlan(config)
RESULTS = config["results"]
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
CATALOGUES = ("stars", "galaxies", "variables", "agn")
SIMULATE_HASH = config_hash(config, ("simulate",))
STAMPS_HASH = config_hash(config, ("survey", "simulate", "imaging", "stamps"))


wildcard_constraints:
    visit=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",
    field=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",


def science_fits(wildcards):
    """Science FITS of the visit."""
    return PLAN.science(wildcards.visit)


def template_fits(wildcards):
    """Template FITS of the visit's field."""
    return PLAN.template(wildcards.visit)


def difference_fits(wildcards):
    """Difference FITS of the visit (made by the workflow unless the manifest gives one)."""
    return PLAN.difference(wildcards.visit)


def truth_table(wildcards):
    """Truth table of a simulated visit (none for real data)."""
    return PLAN.truth(wildcards.visit)


def has_external_difference(wildcards):
    """Whether the manifest gives this visit's difference image."""
    return PLAN.visits[wildcards.visit].difference is not None

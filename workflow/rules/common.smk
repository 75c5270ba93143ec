# Helpers of the workflow: config validation, the plan of visits and the input functions.
import re
from pathlib import Path

from snakemake.utils import validate

from bayesrb.configuration import canonical, check_config, comparison_groups, load_schema, rule_settings
from bayesrb.figures.names import ALERT_GALLERIES, DATASET_FIGURES
from bayesrb.pipeline import paths
from bayesrb.pipeline.plan import NAME_PATTERN, WorkflowPlan, config_hash

CONFIG_SCHEMA = "../schemas/config.schema.yaml"

validate(config, CONFIG_SCHEMA)
config.update(canonical(config))  # key order never changes a rule's params
EXPERIMENTS = check_config(config, load_schema(Path(workflow.current_basedir) / CONFIG_SCHEMA))
COMPARISONS = comparison_groups(config)
PLAN = WorkflowPlan(config)
RESULTS = config["results"]
LOGS = paths.logs(RESULTS)
BENCHMARKS = paths.benchmarks(RESULTS)
from bayesrb.simulate.files import CATALOGUE_NAMES as CATALOGUES
SIMULATE_HASH = config_hash(config, ("simulate",))
STAMPS_HASH = config_hash(config, ("survey", "simulate", "imaging", "stamps"))
LABELS_HASH = config_hash(config, ("survey", "simulate", "imaging", "stamps", "labels", "augment"))
DATASET_HASH = config_hash(config, ("survey", "simulate", "imaging", "stamps", "labels", "augment", "dataset"))


CONTEXT_EXPERIMENTS = list(config["context"]["experiments"])
CNN_EXPERIMENT = config["context"]["cnn_experiment"]
ALERT_EXPERIMENT = config["alerts"]["experiment"]


wildcard_constraints:
    experiment="|".join(map(re.escape, EXPERIMENTS)),
    context_experiment="|".join(CONTEXT_EXPERIMENTS) or "(?!)",
    comparison="|".join(COMPARISONS) or "(?!)",
    visit=NAME_PATTERN,
    field=NAME_PATTERN,


def science_fits(wildcards):
    """Science FITS of the visit."""
    return PLAN.science(wildcards.visit)


def template_fits(wildcards):
    """Template FITS of the visit's field."""
    return PLAN.template(wildcards.visit)


def difference_fits(wildcards):
    """Difference FITS of the visit (made by the workflow unless the manifest gives one)."""
    return PLAN.difference(wildcards.visit)


def evaluation_truth(wildcards):
    """The truth matched to the candidates of an evaluation-only visit of a simulated survey (else none)."""
    return PLAN.evaluation_truth(wildcards.visit)


def has_external_difference(wildcards):
    """Whether the manifest gives this visit's difference image."""
    return PLAN.visits[wildcards.visit].difference is not None


def orbit_file(wildcards):
    """The MPCORB orbit file for minor-planet labels (empty list: none)."""
    return PLAN.orbit_file()


def earth_orientation(wildcards):
    """The Earth-orientation table that the visit's minor-planet ephemeris reads (empty list: no orbits)."""
    return PLAN.earth_orientation()


def galaxy_catalogue(wildcards):
    """The galaxy catalogue that hosts synthetic transients."""
    return PLAN.galaxy_catalogue()


def field_candidates(wildcards):
    """Candidate tables of the other visits of the visit's field."""
    return PLAN.field_candidates(wildcards.visit)


def star_catalogue(wildcards):
    """The star catalogue (recurrent detections near stars stay eligible as bogus)."""
    return PLAN.star_catalogue()


def avoid_catalogues(wildcards):
    """Catalogues that bogus samples and synthetic hosts stay clear of."""
    return PLAN.avoid_catalogues()


def purity_reports():
    """The label-purity report, which needs the simulator's truth (simulated surveys only)."""
    if PLAN.source != "simulate":
        return []
    return [f"{RESULTS}/dataset/purity.txt"]


def experiment_model(wildcards):
    """The experiment's complete `model` settings."""
    return EXPERIMENTS[wildcards.experiment]["model"]


def experiment_training(wildcards):
    """The experiment's complete `training` settings (rows and channels it trains on)."""
    return EXPERIMENTS[wildcards.experiment]["training"]


def experiment_checkpoints(wildcards):
    """Per-epoch checkpoints of the experiment's training, outside its output (which Snakemake deletes before
    rerunning a killed job), so that a rerun resumes; keyed by the experiment's training settings and the data set."""
    experiment = EXPERIMENTS[wildcards.experiment]
    key = config_hash({"model": experiment["model"], "training": experiment["training"], "dataset": DATASET_HASH},
                      ("model", "training", "dataset"))
    return f"{RESULTS}/experiments/{wildcards.experiment}/checkpoints/{key}"


def training_dir(experiment):
    """The training directory of an experiment: made by rule train_model, or another run's (its `trained` key)."""
    return EXPERIMENTS[experiment]["trained"] or f"{RESULTS}/experiments/{experiment}/training"


def experiment_training_dir(wildcards):
    """The training directory of the experiment whose model is scored (:func:`training_dir`)."""
    return training_dir(wildcards.experiment)


def experiment_scoring(wildcards):
    """The experiment's complete `scoring` settings (samples per candidate, batch size)."""
    return EXPERIMENTS[wildcards.experiment]["scoring"]


def experiment_seed(wildcards):
    """The experiment's seed (also seeds its posterior draws when scoring)."""
    return EXPERIMENTS[wildcards.experiment]["model"]["seed"]


def comparison_experiments(wildcards):
    """The experiments of a comparison group, the reference first."""
    return COMPARISONS[wildcards.comparison]


def comparison_tables(wildcards):
    """The evaluation tables of the experiments of a comparison group."""
    return expand(f"{RESULTS}/experiments/{{experiment}}/evaluation.parquet",
                  experiment=COMPARISONS[wildcards.comparison])


def figure_reports(directory, stems, category, subcategory):
    """Named report outputs, one per figure stem, each with its caption."""
    return {
        stem: report(
            f"{directory}/{stem}.png",
            caption=f"../report/evaluation/{stem}.rst",
            category=category,
            subcategory=subcategory,
        )
        for stem in stems
    }


def visit_field(wildcards):
    """The visit's field."""
    return PLAN.visits[wildcards.visit].field


def context_outputs():
    """Every output of the context classifier, when it runs (see `WorkflowPlan.context_enabled`)."""
    if not PLAN.context_enabled:
        return []
    return [*expand(rules.context_figures.output, context_experiment=CONTEXT_EXPERIMENTS),
            rules.context_summary.output[0]]


def context_keys(*keys):
    """The `context` keys a rule reads, so that changing another key does not rerun it."""
    return {key: config["context"][key] for key in keys}


def context_experiment_settings(wildcards):
    """The `context` keys an experiment reads, with its own entry of `context.experiments` only."""
    settings = context_keys("seed", "censoring", "censoring_levels", "n_bootstrap", "model")
    name = wildcards.context_experiment
    return settings | {"experiments": {name: config["context"]["experiments"][name]}}


def context_cnn_scoring(wildcards):
    """How the context CNN scores: `context.cnn_samples` posterior samples, its experiment's batch size and seed."""
    experiment = EXPERIMENTS[CNN_EXPERIMENT]
    return {"n_samples": config["context"]["cnn_samples"], "batch_size": experiment["scoring"]["batch_size"],
            "seed": experiment["model"]["seed"]}


def alert_outputs():
    """The alerts' scores, comparison and galleries, when config `alerts.files` lists any."""
    if not config["alerts"]["files"]:
        return []
    return [rules.score_alerts.output[0], *rules.alert_comparison.output, *rules.alert_galleries.output]


def alert_training(wildcards):
    """The training directory of the experiment that scores the alerts."""
    return training_dir(ALERT_EXPERIMENT)


def alert_scoring(wildcards):
    """The `scoring` settings of the experiment that scores the alerts."""
    return EXPERIMENTS[ALERT_EXPERIMENT]["scoring"]

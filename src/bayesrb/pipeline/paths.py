"""Where the outputs of a workflow run live under its ``results`` directory: the one place that spells them out.

The rules' outputs (``workflow/rules/*.smk``, which get this module from ``workflow/rules/common.smk``), the plan
of a run (:mod:`bayesrb.pipeline.plan`) and the benchmark tooling (:mod:`bayesrb.bench.workflow`) all build their
paths with these functions. A per-visit output's function takes the visit and defaults to Snakemake's wildcard
:data:`VISIT`, so ``shard(results)`` is the ``extract_stamps`` rule's output template and
``shard(results, "F00-n00-v00")`` one visit's shard (and ``shard(results, "*")`` a glob pattern); likewise
:data:`FIELD` for templates and :data:`NAME` for catalogues.
"""

#: The wildcard of the per-visit rules.
VISIT = "{visit}"
#: The wildcard of the per-field rules.
FIELD = "{field}"
#: The wildcard of the survey's catalogue names (:data:`bayesrb.simulate.files.CATALOGUE_NAMES`).
NAME = "{name}"
#: The wildcard of the context classifier's experiments (config ``context.experiments``).
CONTEXT_EXPERIMENT = "{context_experiment}"


def logs(results: str) -> str:
    """The folder of every rule's log files (``<rule>.log``, or ``<rule>/<wildcard>.log`` per job)."""
    return f"{results}/logs"


def benchmarks(results: str) -> str:
    """The folder of every rule's Snakemake benchmark files (``<rule>.tsv``, or ``<rule>/<wildcard>.tsv``)."""
    return f"{results}/benchmarks"


def survey_plan(results: str) -> str:
    """The simulated survey's table of visits."""
    return f"{results}/survey/plan.ecsv"


def orbits(results: str) -> str:
    """The simulated survey's minor-planet orbits (MPCORB format)."""
    return f"{results}/survey/orbits/MPCORB.DAT"


def sky_truth(results: str) -> str:
    """The simulated survey's sky: every source of every field."""
    return f"{results}/survey/truth/sky.ecsv"


def earth_orientation(results: str) -> str:
    """The Earth-orientation (IERS) table every minor-planet ephemeris of the run reads."""
    return f"{results}/survey/earth_orientation.fits"


def catalogue(results: str, name: str = NAME) -> str:
    """A catalogue of the simulated survey (stars, galaxies, variables, AGN, transients)."""
    return f"{results}/survey/catalogues/{name}.ecsv"


def template(results: str, field: str = FIELD) -> str:
    """The simulated template FITS of a field."""
    return f"{results}/survey/templates/{field}.fits"


def science(results: str, visit: str = VISIT) -> str:
    """The simulated science FITS of a visit."""
    return f"{results}/survey/visits/{visit}/science.fits"


def visit_truth(results: str, visit: str = VISIT) -> str:
    """The simulator's truth of a visit: what it drew, where."""
    return f"{results}/survey/visits/{visit}/truth.ecsv"


def difference(results: str, visit: str = VISIT) -> str:
    """The difference FITS the workflow makes for a visit."""
    return f"{results}/difference/{visit}.fits"


def candidates(results: str, visit: str = VISIT) -> str:
    """The table of a visit's detected candidates."""
    return f"{results}/candidates/{visit}.ecsv"


def shard(results: str, visit: str = VISIT) -> str:
    """The stamp shard of a visit (a zarr v3 directory)."""
    return f"{results}/stamps/{visit}.zarr"


def truth_match(results: str, visit: str = VISIT) -> str:
    """A simulated visit's candidates matched to the simulator's truth."""
    return f"{results}/truth/{visit}.ecsv"


def labels(results: str, visit: str = VISIT) -> str:
    """The automatic labels of a visit's candidates."""
    return f"{results}/labels/{visit}.ecsv"


def augmentation(results: str, visit: str = VISIT) -> str:
    """The shard of synthetic transients of a training visit (a zarr v3 directory)."""
    return f"{results}/augment/{visit}.zarr"


def dataset_store(results: str) -> str:
    """The consolidated data set (a zarr v3 directory)."""
    return f"{results}/dataset/dataset.zarr"


def dataset_summary(results: str) -> str:
    """The data set's summary (JSON: its group attributes, ``n_stamps`` among them)."""
    return f"{results}/dataset/summary.json"


def context_features(results: str, visit: str = VISIT) -> str:
    """A visit's context features (Parquet)."""
    return f"{results}/context/features/{visit}.parquet"


def context_cnn_scores(results: str) -> str:
    """The CNN's scores of every candidate outside its training fields (Parquet)."""
    return f"{results}/context/cnn_scores.parquet"


def context_table(results: str) -> str:
    """The context table: features, CNN scores, class and split per usable candidate (Parquet)."""
    return f"{results}/context/table.parquet"


def context_experiment(results: str, experiment: str = CONTEXT_EXPERIMENT) -> str:
    """The directory of one context experiment's outputs."""
    return f"{results}/context/{experiment}"


def alert_store(results: str) -> str:
    """The stamp store of the ingested alert packets (zarr)."""
    return f"{results}/alerts/stamps.zarr"


def alert_scores(results: str) -> str:
    """The alerts' posterior score summaries joined to their packet metadata (Parquet)."""
    return f"{results}/alerts/scores.parquet"


def alert_comparison(results: str, suffix: str) -> str:
    """The comparison of the alerts' scores with the survey's own scores (``suffix`` ``json`` or ``md``)."""
    return f"{results}/alerts/sim_to_real.{suffix}"


def alert_gallery(results: str, order: str) -> str:
    """A gallery of alert stamps beside their posterior score distributions (``order`` ``score`` or ``uncertainty``)."""
    return f"{results}/alerts/figures/gallery_by_{order}.png"

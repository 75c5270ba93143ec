"""Settings of the context classifier: the config's ``context:`` section.

Light (no NumPy). Defaults equal the schema's (``tests/test_settings.py`` checks).
"""

from dataclasses import asdict, dataclass, field

from bayesrb.settings import settings_from

#: Classifier kinds of ``context.model.kind``.
MODEL_KINDS: tuple[str, ...] = ("xgboost", "random_forest", "hierarchical")
#: Feature sets of ``context.model.features``: everything, the catalogues and detection without the CNN, or the CNN
#: and detection without the catalogues.
FEATURE_SETS: tuple[str, ...] = ("all", "catalogue", "cnn")


@dataclass(frozen=True)
class FeatureSettings:
    """Radii of the context features, arcsec (see :mod:`bayesrb.context.features`).

    Parameters
    ----------
    match_radius_arcsec : float
        A catalogue source this close matches the candidate (``{family}_state`` 1).
    count_radius_arcsec : float
        Sources within this radius are counted (``{family}_count``).
    search_radius_arcsec : float
        Neighbours are sought this far; beyond, separations are this value.
    host_search_radius_arcsec : float
        Host galaxies are sought this far.
    mp_search_radius_arcsec : float
        Predicted minor planets are sought this far.
    history_radius_arcsec : float
        Detections of earlier visits of the field this close count as the candidate's history.
    reference_threshold_sigma : float
        Template sources are detected above this many times the template's background RMS per pixel
        (:mod:`bayesrb.context.reference`).
    """

    match_radius_arcsec: float = 2.0
    count_radius_arcsec: float = 10.0
    search_radius_arcsec: float = 60.0
    host_search_radius_arcsec: float = 30.0
    mp_search_radius_arcsec: float = 120.0
    history_radius_arcsec: float = 2.0
    reference_threshold_sigma: float = 1.5


@dataclass(frozen=True)
class ClassifierSettings:
    """One context classifier (``context.model``, overridden per ``context.experiments`` entry).

    Parameters
    ----------
    kind : str
        ``xgboost`` (multi-class gradient-boosted trees), ``random_forest`` (scikit-learn) or ``hierarchical``
        (XGBoost at each node of real/bogus, then solar-system / stellar / extragalactic / orphan, then nuclear
        transient / supernova).
    features : str
        ``all``, ``catalogue`` (no CNN scores) or ``cnn`` (no catalogue or ephemeris features).
    n_estimators : int
        Trees (boosting rounds for XGBoost).
    max_depth : int
        Depth of each tree.
    learning_rate : float
        XGBoost's shrinkage.
    early_stopping_rounds : int
        XGBoost stops adding trees once the context ``val`` split's log-loss has not improved for this many rounds,
        and keeps its best round (0: every one of ``n_estimators``).
    calibrate : bool
        Whether the class probabilities are temperature-scaled to the ``val`` split (the ranking of the classes,
        hence the predicted class, does not change).
    """

    kind: str = "xgboost"
    features: str = "all"
    n_estimators: int = 300
    max_depth: int = 6
    learning_rate: float = 0.1
    early_stopping_rounds: int = 30
    calibrate: bool = True

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"kind must be one of {list(MODEL_KINDS)}, got {self.kind!r}")
        if self.features not in FEATURE_SETS:
            raise ValueError(f"features must be one of {list(FEATURE_SETS)}, got {self.features!r}")


@dataclass(frozen=True)
class ContextSettings:
    """The context stage (see ``config/README.md``, section ``context``).

    Parameters
    ----------
    enabled : bool
        Whether the workflow runs the context classifier (it needs classes: a simulated survey or ``labels``).
    fields : tuple of str
        Fields kept for the context classifier: never in the CNN's data set (a simulated survey's context fields
        are kept too).
    labels : str
        Real data: a CSV of ``candidate_id,class`` with classes among ``bs, vs, nt, sn, or, mp``.
    catalogues : dict of str to list
        Per family (``stars``, ``variables``, ``agn``, ``galaxies``): catalogue files (ECSV, CSV or FITS), each a
        path or ``{path, where: {column: value}}``, most trusted first; empty: the simulated survey's.
    cnn_experiment : str
        The experiment whose Bayesian CNN scores the candidates.
    cnn_samples : int
        Posterior samples per candidate in that scoring.
    seed : int
        Seed of the field splits, the censoring and the classifiers.
    fractions : dict of str to float
        Fractions of the context fields' candidates in ``train``, ``val`` and ``test`` (sum 1); the CNN's held-out
        fields (its ``test`` and ``eval`` splits) are always context ``test``.
    censoring : dict of str to float
        Per catalogue family, the probability that a training candidate loses the whole family (missing values).
    censoring_levels : tuple of float
        Catalogue losses at which the test split is evaluated, per family and all families together.
    n_bootstrap : int
        Bootstrap resamples of the metrics' 95 % intervals.
    features : FeatureSettings
    model : ClassifierSettings
        What every context experiment starts from.
    experiments : dict of str to dict
        Name: overrides of ``model``; each experiment is trained and measured on the same context table.
    """

    enabled: bool = True
    fields: tuple[str, ...] = ()
    labels: str = ""
    catalogues: dict[str, list] = field(default_factory=dict)
    cnn_experiment: str = "bcnn"
    cnn_samples: int = 30
    seed: int = 11
    fractions: dict[str, float] = field(default_factory=lambda: {"train": 0.75, "val": 0.25, "test": 0.0})
    censoring: dict[str, float] = field(default_factory=lambda: {"stars": 0.3, "variables": 0.3, "agn": 0.3,
                                                                 "galaxies": 0.3})
    censoring_levels: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
    n_bootstrap: int = 1000
    features: FeatureSettings = field(default_factory=FeatureSettings)
    model: ClassifierSettings = field(default_factory=ClassifierSettings)
    experiments: dict[str, dict] = field(default_factory=lambda: {
        "xgboost": {}, "random_forest": {"kind": "random_forest"}, "catalogue_only": {"features": "catalogue"},
        "cnn_only": {"features": "cnn"}, "hierarchical": {"kind": "hierarchical"}})

    def classifier(self, experiment: str) -> ClassifierSettings:
        """The settings of one experiment: ``model`` with the experiment's overrides."""
        merged = asdict(self.model) | dict(self.experiments[experiment])
        return settings_from(ClassifierSettings, merged, f"context.experiments.{experiment}")

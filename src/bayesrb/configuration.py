"""The workflow config, checked whole before any job runs: experiments, comparison groups and cross-key rules.

Snakemake validates the config against ``workflow/schemas/config.schema.yaml`` and fills in its defaults;
:func:`canonical` sorts its keys, so that a config with its keys in another order (or merged from other files)
gives the same rule params and reruns nothing; :func:`check_config` then checks what one schema pass cannot: every
experiment's merged ``model`` and ``training`` sections against the schema (with the key path in the message), the
names of experiments and comparison groups, and the rules that tie keys together (an odd stamp size, split
fractions that sum to 1, shard and chunk sizes, experiment channels among the stamp channels, a model that
reads the alerts' cutouts). Every problem is one :class:`~bayesrb.errors.BadInputError` naming the config key,
raised while Snakemake builds the DAG, so a bad value never starts a job. :func:`rule_settings` gives a rule only
the keys it reads.
"""

import dataclasses
import os
import re
from collections.abc import Callable
from pathlib import Path

import jsonschema
import yaml

from bayesrb.alerts.exports import SURVEYS as ALERT_SURVEYS
from bayesrb.alerts.packets import CHANNELS as ALERT_CHANNELS
from bayesrb.dataset.splits import check_fractions
from bayesrb.dataset.store import check_block_sizes
from bayesrb.errors import BadInputError
from bayesrb.evaluation.settings import EvaluationSettings
from bayesrb.imaging.settings import DetectSettings, SubtractSettings
from bayesrb.labels.settings import AugmentSettings, LabelSettings
from bayesrb.seeding import rng_for
from bayesrb.stamps.extract import check_stamp_size

#: Names of experiments and comparison groups: they become directory names and Snakemake wildcard values.
EXPERIMENT_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]*"

#: Marks replicate ``K`` (from 1) of an experiment ``NAME``: ``NAME.rK`` (no configured name holds a dot).
REPLICATE_MARK = ".r"

#: Config sections that an experiment may override.
EXPERIMENT_SECTIONS = ("model", "training", "scoring")
#: Key of an experiment that scores the model of another run (its training directory) instead of training one.
TRAINED_KEY = "trained"

#: Per rule whose config section holds keys that other rules read: the section and the settings class whose fields
#: are the keys the rule reads. Its params hold only these, so changing another key of the section does not rerun
#: it (file keys are inputs, and rerun through them).
RULE_SETTINGS: dict[str, tuple[str, type]] = {
    "subtract": ("imaging", SubtractSettings),
    "detect": ("imaging", DetectSettings),
    "label_visit": ("labels", LabelSettings),
    "augment_visit": ("augment", AugmentSettings),
    "evaluation": ("evaluation", EvaluationSettings),
}


def canonical(value):
    """``value`` with every mapping's keys sorted, recursively: equal settings give equal reprs (rule params)."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def rule_settings(config: dict, rule: str) -> dict:
    """The keys a rule reads (:data:`RULE_SETTINGS`) with their values in the validated config, sorted."""
    section, settings = RULE_SETTINGS[rule]
    return {key: config[section][key] for key in sorted(field.name for field in dataclasses.fields(settings))}


def load_schema(path: str | os.PathLike) -> dict:
    """Read the config's JSON schema (YAML)."""
    return yaml.safe_load(Path(path).read_text())


def check_config(config: dict, schema: dict) -> dict[str, dict]:
    """Check a validated config whole and return the merged settings of every experiment.

    Parameters
    ----------
    config : dict
        The config after schema validation (defaults filled in).
    schema : dict
        The config's JSON schema (:func:`load_schema`).

    Returns
    -------
    dict of str to dict
        :func:`experiment_models` of the config.

    Raises
    ------
    bayesrb.errors.BadInputError
        Naming the config key: a cross-key rule broken, no experiment, a bad experiment or comparison name, an
        override that the schema rejects, an experiment reading channels the stamps do not have, or one scoring
        another run's model whose training directory does not exist.
    """
    for key, rule in _CROSS_KEY_RULES:
        try:
            rule(config)
        except ValueError as error:
            raise BadInputError(f"config {key}", str(error)) from None
    experiments = experiment_models(config)
    for name, sections in experiments.items():
        for section in EXPERIMENT_SECTIONS:
            _check_section(sections[section], schema["properties"][section], f"config experiments.{name}.{section}")
        _check_channels(name, sections["training"]["channels"], config["stamps"]["channels"])
        _check_trained(name, sections[TRAINED_KEY])
    comparison_groups(config)
    _check_context(config, schema, experiments)
    _check_alerts(config, experiments)
    return experiments


def _check_trained(name: str, trained: str | None) -> None:
    """An experiment that scores another run's model names that run's training directory, which exists."""
    if trained and not Path(trained).is_dir():
        raise BadInputError(f"config experiments.{name}.{TRAINED_KEY}",
                            f"{trained} is not a directory (relative to {Path.cwd()}); it must be the "
                            f"results/experiments/<name>/training directory of a finished run: run that first")


def _check_context(config: dict, schema: dict, experiments: dict[str, dict]) -> None:
    """The context section's cross-key rules.

    Its CNN experiment exists and is trained by this run (the run's held-out fields are where the classifier may
    use its scores); its experiments are valid classifiers.
    """
    context = config["context"]
    cnn = context["cnn_experiment"]
    if context["enabled"] and cnn not in config["experiments"]:
        raise BadInputError("config context.cnn_experiment", f"{cnn!r} is not an experiment; "
                                                             f"defined are {sorted(config['experiments'])}")
    if context["enabled"] and experiments[cnn][TRAINED_KEY]:
        raise BadInputError("config context.cnn_experiment",
                            f"{cnn!r} scores another run's model ({TRAINED_KEY}: {experiments[cnn][TRAINED_KEY]}); "
                            f"the context classifier needs a CNN trained on this run's fields")
    model_schema = schema["properties"]["context"]["properties"]["model"]
    for name, overrides in context["experiments"].items():
        _check_name(name, "config context.experiments")
        merged = _merged(context["model"], overrides or {}, f"config context.experiments.{name}")
        _check_section(merged, model_schema, f"config context.experiments.{name}")



def _check_alerts(config: dict, experiments: dict[str, dict]) -> None:
    """When alerts are scored: their experiment exists and reads stamps of the alerts' size and channels."""
    alerts = config["alerts"]
    if not alerts["files"]:
        return
    name = alerts["experiment"]
    if name not in experiments:
        raise BadInputError("config alerts.experiment",
                            f"{name!r} is not an experiment; defined are {sorted(experiments)}")
    channels = experiments[name]["training"]["channels"] or config["stamps"]["channels"]
    survey, size = alerts["survey"], ALERT_SURVEYS[alerts["survey"]].stamp_size
    if config["stamps"]["size"] != size or not set(channels) <= set(ALERT_CHANNELS):
        raise BadInputError("config alerts.experiment",
                            f"{name!r} reads {config['stamps']['size']}x{config['stamps']['size']} stamps of "
                            f"channels {list(channels)}; {survey}'s alert stamps are {size}x{size} of "
                            f"{list(ALERT_CHANNELS)} (config/ztf.yaml trains such a model for ZTF)")


_CROSS_KEY_RULES: tuple[tuple[str, Callable[[dict], object]], ...] = (
    ("stamps.size", lambda config: check_stamp_size(config["stamps"]["size"])),
    ("dataset.fractions", lambda config: check_fractions(config["dataset"]["fractions"])),
    ("dataset.shard_stamps",
     lambda config: check_block_sizes(config["dataset"]["chunk_stamps"], config["dataset"]["shard_stamps"])),
    ("context.fractions", lambda config: check_fractions(config["context"]["fractions"])),
)


def _check_section(values: dict, schema: dict, where: str) -> None:
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(values), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        raise BadInputError(".".join([where, *map(str, first.path)]), first.message)


def _check_channels(name: str, channels: list[str] | None, stamp_channels: list[str]) -> None:
    missing = [c for c in channels or () if c not in stamp_channels]
    if missing:
        raise BadInputError(f"config experiments.{name}.training.channels",
                            f"channel(s) {missing} are not among stamps.channels {stamp_channels}")


def _check_name(name: str, where: str) -> None:
    if not re.fullmatch(EXPERIMENT_NAME_PATTERN, name):
        raise BadInputError(where, f"name {name!r} must match {EXPERIMENT_NAME_PATTERN} (letters, digits, _ and -)")


def experiment_models(config: dict) -> dict[str, dict]:
    """The settings of every experiment: its sections (:data:`EXPERIMENT_SECTIONS`) with its overrides merged in.

    Parameters
    ----------
    config : dict
        The validated config (``model``, ``training``, ``scoring`` and ``experiments`` sections).

    Returns
    -------
    dict of str to dict
        Per experiment name, ``{"model": {...}, "training": {...}, "scoring": {...}, "trained": path or None}``,
        each section complete (nested mappings merged key by key); ``trained`` is the training directory of
        another run whose model the experiment scores instead of training one (:data:`TRAINED_KEY`). With
        ``replicates`` above 1 every experiment is followed by its replicates ``NAME.r1``, ``NAME.r2``, ..., the
        same but for the model seed (:func:`replicate_seed`).

    Raises
    ------
    BadInputError
        For no experiment, a bad experiment name, or an override section or key that the config does not have.
    """
    if not config["experiments"]:
        raise BadInputError("config experiments", "defines no experiment; name at least one, e.g. 'bcnn: {}'")
    experiments = {}
    for name, overrides in config["experiments"].items():
        _check_name(name, "config experiments")
        overrides = dict(overrides or {})
        trained = overrides.pop(TRAINED_KEY, None)
        merged = _merged({section: config.get(section, {}) for section in EXPERIMENT_SECTIONS}, overrides,
                         f"config experiments.{name}") | {TRAINED_KEY: trained}
        for replicate in range(config.get("replicates", 1)):
            model = merged["model"] | {"seed": replicate_seed(merged["model"]["seed"], replicate)}
            experiments[replicate_name(name, replicate)] = merged | {"model": model}
    return experiments


def replicate_name(name: str, replicate: int) -> str:
    """The experiment name of a replicate: ``name`` itself for replicate 0, else ``name.rK``."""
    return name if replicate == 0 else f"{name}{REPLICATE_MARK}{replicate}"


def split_replicate(name: str) -> tuple[str, int]:
    """The configured experiment and replicate number of an experiment name (inverse of :func:`replicate_name`)."""
    base, mark, replicate = name.partition(REPLICATE_MARK)
    return (base, int(replicate)) if mark else (name, 0)


def replicate_seed(seed: int, replicate: int) -> int:
    """The model seed of a replicate: the experiment's own for replicate 0, else one drawn from its stream."""
    return seed if replicate == 0 else int(rng_for(seed, "replicate", replicate).integers(2**31))


def comparison_groups(config: dict) -> dict[str, list[str]]:
    """The experiment groups of ``evaluation.comparisons`` whose curves are overlaid.

    Raises
    ------
    BadInputError
        If a group's name is not a valid name, or the group names an experiment that ``experiments`` does not
        define.
    """
    groups = config.get("evaluation", {}).get("comparisons", {})
    for name, members in groups.items():
        _check_name(name, "config evaluation.comparisons")
        unknown = sorted(set(members) - set(config["experiments"]))
        if unknown:
            defined = sorted(config["experiments"])
            raise BadInputError(f"config evaluation.comparisons.{name}",
                                f"unknown experiment(s) {unknown}; defined are {defined}")
    return dict(groups)


def _merged(base: dict, overrides: dict, where: str) -> dict:
    if not isinstance(overrides, dict):
        raise BadInputError(where, f"must be a mapping of keys to override, got {overrides!r}")
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise BadInputError(where, f"unknown key(s) {unknown}; known keys are {sorted(base)}")
    merged = dict(base)
    for key, value in overrides.items():
        nested = isinstance(base[key], dict)
        merged[key] = _merged(base[key], value, f"{where}.{key}") if nested else value
    return merged

"""What the Snakemake workflow needs to know before it runs: the visits, their fields and input paths.

The Snakefile stays declarative: ``workflow/rules/common.smk`` builds one :class:`WorkflowPlan` from
the validated config and its input functions ask it for paths, which it takes from :mod:`bayesrb.pipeline.paths`
(as the rules' outputs do).
"""

import csv
import functools
import hashlib
import io
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from bayesrb.alerts.ingest import expand_inputs
from bayesrb.errors import BadInputError
from bayesrb.pipeline import paths
from bayesrb.settings import settings_from
from bayesrb.simulate.plan import survey_plan
from bayesrb.simulate.settings import SurveySettings
from bayesrb.textfiles import read_text

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.+-]*"
MANIFEST_REQUIRED = ("visit", "field", "science", "template")


@dataclass(frozen=True)
class VisitInputs:
    """The input files of one visit.

    ``difference`` is ``None`` when the workflow makes it; ``evaluation`` marks the evaluation-only visits of a
    simulated survey, which never reach training; ``context`` the visits of fields kept for the context classifier,
    which never enter the CNN's data set.
    """

    visit: str
    field: str
    science: str
    template: str
    difference: str | None = None
    evaluation: bool = False
    context: bool = False


def config_hash(config: dict, sections: tuple[str, ...]) -> str:
    """A short SHA-256 of the named config sections (stable: keys sorted), stored with outputs."""
    payload = json.dumps({s: config.get(s) for s in sections}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _check_name(manifest: Path, line: int, column: str, value: str) -> str:
    if not re.fullmatch(NAME_PATTERN, value):
        raise BadInputError(manifest, f"line {line}: {column} {value!r} must match {NAME_PATTERN}")
    return value


def _resolve(manifest: Path, value: str) -> str:
    path = Path(value)
    return str(path if path.is_absolute() else (manifest.parent / path))


def read_manifest(path: str) -> list[VisitInputs]:
    """Read a FITS manifest: a CSV of visit, field, science, template and optionally difference.

    Parameters
    ----------
    path : str
        The manifest. Relative image paths are resolved against its directory.

    Returns
    -------
    list of VisitInputs

    Raises
    ------
    BadInputError
        Missing file or columns, a file that is not text, an empty manifest, bad or duplicate visit names, empty
        paths.
    """
    manifest = Path(path)
    reader = csv.DictReader(io.StringIO(read_text(manifest, "FITS manifest (config survey.fits_manifest)")))
    missing = [c for c in MANIFEST_REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise BadInputError(manifest, f"missing column(s) {missing}; need {list(MANIFEST_REQUIRED)}")
    visits = [_manifest_row(manifest, n, row) for n, row in enumerate(reader, start=2)]
    if not visits:
        raise BadInputError(manifest, "lists no visits")
    names = [v.visit for v in visits]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BadInputError(manifest, f"duplicate visit name(s) {duplicates}")
    return visits


def _manifest_row(manifest: Path, line: int, row: dict) -> VisitInputs:
    for column in ("science", "template"):
        if not (row.get(column) or "").strip():
            raise BadInputError(manifest, f"line {line}: empty {column} path")
    difference = (row.get("difference") or "").strip()
    return VisitInputs(
        visit=_check_name(manifest, line, "visit", row["visit"].strip()),
        field=_check_name(manifest, line, "field", row["field"].strip()),
        science=_resolve(manifest, row["science"].strip()),
        template=_resolve(manifest, row["template"].strip()),
        difference=_resolve(manifest, difference) if difference else None,
    )


class WorkflowPlan:
    """Visits and input paths of a workflow run, for either survey source.

    Parameters
    ----------
    config : dict
        The validated Snakemake config (defaults filled in).
    """

    def __init__(self, config: dict):
        self.results = config["results"]
        self.source = config["survey"]["source"]
        self.label_inputs = config["labels"]
        self.augment = config["augment"]["enabled"]
        self.context = config["context"]
        self.alert_inputs = config["alerts"]["files"]
        if self.source == "simulate":
            visits = self._simulated_visits(config["simulate"])
        else:
            if not config["survey"]["fits_manifest"]:
                raise BadInputError("config survey.fits_manifest", "is required when survey.source is 'fits'")
            visits = read_manifest(config["survey"]["fits_manifest"])
        reserved = set(self.context["fields"])
        self.visits = {v.visit: replace(v, context=v.context or v.field in reserved) for v in visits}

    def _simulated_visits(self, section: dict) -> list[VisitInputs]:
        return [
            VisitInputs(v.visit_id, v.field.name, paths.science(self.results, v.visit_id),
                        paths.template(self.results, v.field.name), evaluation=v.field.evaluation,
                        context=v.field.context)
            for v in survey_plan(settings_from(SurveySettings, section, "simulate"))
        ]

    @property
    def visit_ids(self) -> list[str]:
        """Every visit id, in plan order."""
        return list(self.visits)

    @property
    def fields(self) -> list[str]:
        """Every field name, in order of first appearance."""
        return list(dict.fromkeys(v.field for v in self.visits.values()))

    def science(self, visit: str) -> str:
        """Science FITS of ``visit``."""
        return self.visits[visit].science

    def template(self, visit: str) -> str:
        """Template FITS of ``visit``."""
        return self.visits[visit].template

    def difference(self, visit: str) -> str:
        """Difference FITS of ``visit``: the user's, if the manifest gives one, else the workflow's."""
        return self.visits[visit].difference or paths.difference(self.results, visit)

    def truth_match(self, visit: str) -> str:
        """The table of ``visit``'s candidates matched to the simulator's truth; ``""`` for real data."""
        return paths.truth_match(self.results, visit) if self.source == "simulate" else ""

    def truth_matches(self, visits: list[str] | None = None) -> list[str]:
        """The truth-match tables of ``visits`` (default every visit) of a simulated survey (none for real data)."""
        return [path for path in map(self.truth_match, self.visits if visits is None else visits) if path]

    def evaluation_truth(self, visit: str) -> list[str]:
        """The truth-match table of an evaluation-only visit, as a one-element list; empty for any other visit."""
        return [self.truth_match(visit)] if self.visits[visit].evaluation else []

    @property
    def dataset_visits(self) -> list[str]:
        """The visits whose candidates may enter the CNN's data set: all but the context fields'."""
        return [v for v, inputs in self.visits.items() if not inputs.context]

    def shards(self, visits: list[str] | None = None) -> list[str]:
        """The per-visit stamp shards of ``visits`` (default every visit)."""
        return [paths.shard(self.results, v) for v in (self.visits if visits is None else visits)]

    def _survey_file(self, key: str, simulated: str) -> list[str]:
        """The file the ``labels:`` config names, else the simulated survey's (one-element list; empty if none)."""
        if self.label_inputs[key]:
            return [self.label_inputs[key]]
        return [simulated] if self.source == "simulate" else []

    def orbit_file(self) -> list[str]:
        """The MPCORB orbit file used for minor-planet labels, if any."""
        return self._survey_file("orbits", paths.orbits(self.results))

    def earth_orientation(self) -> list[str]:
        """The Earth-orientation table of the minor-planet ephemerides, if there is an orbit file."""
        return [paths.earth_orientation(self.results)] if self.orbit_file() else []

    def galaxy_catalogue(self) -> list[str]:
        """The galaxy catalogue that hosts synthetic transients, if any."""
        return self._survey_file("galaxies", paths.catalogue(self.results, "galaxies"))

    def avoid_catalogues(self) -> list[str]:
        """Catalogues whose positions bogus samples and hosts stay clear of: variables, AGN, known transients."""
        files = self._survey_file("variables", paths.catalogue(self.results, "variables"))
        files += self._survey_file("agn", paths.catalogue(self.results, "agn"))
        return files + self._survey_file("known_transients", paths.catalogue(self.results, "transients"))

    def human_labels(self) -> list[str]:
        """The human labels CSV, if one is given."""
        return [self.label_inputs["human_labels"]] if self.label_inputs["human_labels"] else []

    def dataset_sources(self) -> list[dict]:
        """Per visit: visit, field, shard, labels, augmentation shard (``""`` for none), evaluation flag, truth."""
        augmentations = set(self.augmentations())
        sources = []
        for visit in self.dataset_visits:
            inputs = self.visits[visit]
            augment = paths.augmentation(self.results, visit)
            sources.append({"visit": visit, "field": inputs.field, "shard": paths.shard(self.results, visit),
                            "labels": paths.labels(self.results, visit),
                            "augment": augment if augment in augmentations else "", "evaluation": inputs.evaluation,
                            "truth": self.truth_match(visit)})
        return sources

    def field_candidates(self, visit: str) -> list[str]:
        """The candidate tables of the other visits of ``visit``'s field (for the recurrence filter)."""
        field = self.visits[visit].field
        return [paths.candidates(self.results, v) for v, inputs in self.visits.items()
                if inputs.field == field and v != visit]

    def star_catalogue(self) -> list[str]:
        """The star catalogue that explains recurrent detections near stars, if any."""
        return self._survey_file("stars", paths.catalogue(self.results, "stars"))

    def labels(self) -> list[str]:
        """The label table of every visit of the CNN's data set."""
        return [paths.labels(self.results, v) for v in self.dataset_visits]

    def augmentations(self) -> list[str]:
        """The synthetic-transient shard of every training visit.

        Empty when augmentation is off or no galaxy catalogue is available; evaluation-only visits get none.
        """
        if not (self.augment and self.galaxy_catalogue()):
            return []
        return [paths.augmentation(self.results, v) for v in self.dataset_visits if not self.visits[v].evaluation]

    @property
    def context_enabled(self) -> bool:
        """Whether the context classifier runs: enabled, and classes known (a simulated survey or a labels table)."""
        return bool(self.context["enabled"]) and (self.source == "simulate" or bool(self.context["labels"]))

    def context_catalogues(self) -> dict[str, list]:
        """The ``context.catalogues`` mapping; when it is empty, the simulated survey's catalogues (none for real data).

        A simulated survey's families ensemble its all-sky catalogue with the deeper partial-coverage survey
        ``deep`` (its stars and its galaxies).
        """
        given = {family: entries for family, entries in self.context["catalogues"].items() if entries}
        if given or self.source != "simulate":
            return given
        catalogue = functools.partial(paths.catalogue, self.results)
        return {"stars": [catalogue("stars"), {"path": catalogue("deep"), "where": {"class": "star"}}],
                "galaxies": [catalogue("galaxies"), {"path": catalogue("deep"), "where": {"class": "galaxy"}}],
                "variables": [catalogue("variables")], "agn": [catalogue("agn")]}

    def context_catalogue_files(self) -> list[str]:
        """Every file the context catalogues name, once each."""
        entries = [e for family in self.context_catalogues().values() for e in family]
        return list(dict.fromkeys(e if isinstance(e, str) else e["path"] for e in entries))

    def visit_fields(self) -> list[str]:
        """The field of every visit, in plan order (aligned with :meth:`shards`)."""
        return [inputs.field for inputs in self.visits.values()]

    def context_labels(self) -> list[str]:
        """The context labels CSV (real data), as a one-element list; empty for simulated surveys' truth classes."""
        return [self.context["labels"]] if self.context["labels"] else []

    def alert_files(self) -> list[str]:
        """The alert files of config ``alerts.files``, each once (:func:`bayesrb.alerts.ingest.expand_inputs`).

        Raises
        ------
        BadInputError
            Naming an entry (file, directory or pattern) that matches no file.
        """
        files: dict[str, None] = {}
        for entry in self.alert_inputs:
            found = [str(path) for path in expand_inputs([entry]) if path.is_file()]
            if not found:
                raise BadInputError("config alerts.files", f"{entry!r} matches no file")
            files.update(dict.fromkeys(found))
        return list(files)

"""Adapter: rule label_visit -> bayesrb.labels.steps.label_visit."""

from bayesrb.labels.settings import LabelSettings
from bayesrb.labels.steps import LabelInputs, label_visit
from bayesrb.logs import log_to
from bayesrb.minorplanets.orientation import earth_orientation_from
from bayesrb.settings import settings_from

with log_to(snakemake.log[0]), earth_orientation_from((snakemake.input.earth_orientation or [None])[0]):
    label_visit(
        snakemake.input.shard,
        snakemake.output[0],
        LabelInputs(
            science=snakemake.input.science,
            orbits=(snakemake.input.orbits or [""])[0],
            avoid_catalogues=tuple(snakemake.input.avoid),
            stars=(snakemake.input.stars or [""])[0],
            field_candidates=tuple(snakemake.input.field_candidates),
        ),
        settings_from(LabelSettings, snakemake.params.labels, "labels"),
        seed=snakemake.params.seed,
        truth_path=(snakemake.input.truth or [""])[0],
    )

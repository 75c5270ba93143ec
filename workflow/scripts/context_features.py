"""Adapter: rule context_features -> bayesrb.context.visit.write_visit_features."""

from bayesrb.context.settings import FeatureSettings
from bayesrb.context.visit import catalogue_sources, write_visit_features
from bayesrb.logs import log_to
from bayesrb.minorplanets.orientation import earth_orientation_from
from bayesrb.settings import settings_from

with log_to(snakemake.log[0]), earth_orientation_from((snakemake.input.earth_orientation or [None])[0]):
    write_visit_features(snakemake.input.shard, snakemake.input.science, snakemake.input.template,
                         snakemake.input.difference, "".join(snakemake.input.orbits),
                         catalogue_sources(snakemake.params.catalogues),
                         settings_from(FeatureSettings, snakemake.params.features, "context.features"),
                         snakemake.params.field, snakemake.output[0], snakemake.params.max_bad_orbit_fraction)

"""Adapter: rule score_alerts -> bayesrb.alerts.report.score_alerts."""

from pathlib import Path

from bayesrb.alerts.report import score_alerts
from bayesrb.logs import log_to
from bayesrb.model.scoring import ScoringSettings
from bayesrb.model.train import MODEL_DIR
from bayesrb.settings import settings_from

with log_to(snakemake.log[0]):
    scoring = settings_from(ScoringSettings, snakemake.params.scoring, "scoring")
    score_alerts(Path(snakemake.input.training) / MODEL_DIR, snakemake.input.store, snakemake.output[0],
                 n_samples=scoring.n_samples, batch_size=scoring.batch_size, seed=snakemake.params.seed)

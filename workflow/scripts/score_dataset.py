"""Adapter: rule score_dataset -> bayesrb.model.score.score_store."""

from pathlib import Path

from bayesrb.logs import log_to
from bayesrb.model.score import score_store
from bayesrb.model.scoring import ScoringSettings
from bayesrb.model.train import MODEL_DIR
from bayesrb.settings import settings_from

with log_to(snakemake.log[0]):
    scoring = settings_from(ScoringSettings, snakemake.params.scoring, "scoring")
    score_store(Path(snakemake.input.training) / MODEL_DIR, snakemake.input.store, snakemake.output[0],
                n_samples=scoring.n_samples, batch_size=scoring.batch_size, seed=snakemake.params.seed)

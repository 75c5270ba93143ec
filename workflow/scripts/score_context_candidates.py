"""Adapter: rule score_context_candidates -> bayesrb.context.steps.score_held_out_candidates."""

from pathlib import Path

from bayesrb.context.steps import score_held_out_candidates
from bayesrb.logs import log_to
from bayesrb.model.train import MODEL_DIR

with log_to(snakemake.log[0]):
    score_held_out_candidates(str(Path(snakemake.input.training) / MODEL_DIR), list(snakemake.input.shards),
                              list(snakemake.params.fields), snakemake.input.summary, snakemake.output[0],
                              **snakemake.params.scoring)

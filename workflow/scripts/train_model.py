"""Adapter: rule train_model -> bayesrb.model.train.train."""

from bayesrb.logs import log_to
from bayesrb.model.train import train

with log_to(snakemake.log[0]):
    train(snakemake.input[0], snakemake.output[0], snakemake.params.model, snakemake.params.training,
          checkpoint_dir=snakemake.params.checkpoints)

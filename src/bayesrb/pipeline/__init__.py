"""The plan of a workflow run: its visits and input files, and where its outputs live.

:mod:`~bayesrb.pipeline.plan` reads the config (and the FITS manifest) into the visits of a run;
:mod:`~bayesrb.pipeline.paths` spells out the path of every per-visit and survey output, for the plan, the rules and
the benchmark tooling alike.
"""

"""Throughput of the per-visit pipeline from the Snakemake ``benchmark:`` files of a finished run.

Every rule writes ``results/benchmarks/<rule>/<visit>.tsv`` (wall seconds, peak RSS, CPU time).
:func:`rule_costs` turns them into per-rule costs, and :func:`throughput` into the figures of merit:
stamps per second per core and the peak RSS of any job of a visit.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

from bayesrb.stamps.shard import read_shard

PIPELINE_RULES = ("subtract", "detect", "extract_stamps")
SIMULATION_RULES = ("simulate_visit",)


@dataclass(frozen=True)
class RuleCost:
    """Summed wall time and the largest peak RSS of one rule over all its jobs."""

    rule: str
    jobs: int
    seconds: float
    max_rss_mb: float


def _read_tsv(path: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB, NaN where Snakemake wrote NA) of one benchmark file."""
    with path.open() as handle:
        row = next(csv.DictReader(handle, delimiter="\t"))
    return float(row["s"]), float("nan") if row["max_rss"] == "NA" else float(row["max_rss"])


def rule_costs(results: Path, rules: tuple[str, ...]) -> list[RuleCost]:
    """Cost of each per-visit rule in ``rules`` from ``results/benchmarks/<rule>/*.tsv``."""
    costs = []
    for rule in rules:
        rows = [_read_tsv(p) for p in sorted((results / "benchmarks" / rule).glob("*.tsv"))]
        if rows:
            costs.append(RuleCost(rule, len(rows), sum(r[0] for r in rows), max(r[1] for r in rows)))
    return costs


def count_stamps(results: Path) -> int:
    """Number of stamps in every shard under ``results/stamps``."""
    return sum(len(read_shard(p).meta["candidate_id"]) for p in sorted((results / "stamps").glob("*.zarr")))


def throughput(results: str | Path, rules: tuple[str, ...] = PIPELINE_RULES, stamps: int | None = None
               ) -> dict[str, float]:
    """Stamps per second per core of ``rules`` (their summed single-job wall time) and their peak RSS.

    Parameters
    ----------
    results : str or pathlib.Path
        The ``results`` directory of a finished run.
    rules : tuple of str
        Per-visit rules to count. Each job is charged its wall time times its threads (1 here).
    stamps : int, optional
        Number of stamps of the run, if already counted (:func:`count_stamps` reads every shard).

    Returns
    -------
    dict
        ``stamps``, ``visits``, ``seconds``, ``stamps_per_second_per_core``, ``peak_rss_mb``.
    """
    results = Path(results)
    costs = rule_costs(results, rules)
    seconds = sum(c.seconds for c in costs)
    stamps = count_stamps(results) if stamps is None else stamps
    return {"stamps": stamps, "visits": max((c.jobs for c in costs), default=0), "seconds": seconds,
            "stamps_per_second_per_core": stamps / seconds if seconds else float("nan"),
            "peak_rss_mb": max((c.max_rss_mb for c in costs), default=float("nan"))}


def report(results: str | Path) -> str:
    """A plain-text table of per-rule costs and the pipeline's throughput, for the terminal."""
    results = Path(results)
    lines = [f"{'rule':<18}{'jobs':>6}{'wall s':>10}{'s/job':>9}{'peak RSS MB':>14}"]
    for cost in rule_costs(results, SIMULATION_RULES + PIPELINE_RULES):
        lines.append(f"{cost.rule:<18}{cost.jobs:>6}{cost.seconds:>10.1f}{cost.seconds / cost.jobs:>9.2f}"
                     f"{cost.max_rss_mb:>14.0f}")
    real = throughput(results)
    with_sim = throughput(results, SIMULATION_RULES + PIPELINE_RULES, stamps=real["stamps"])
    lines += [
        f"stamps: {real['stamps']} from {real['visits']} visits",
        f"pipeline (subtract+detect+extract_stamps): {real['stamps_per_second_per_core']:.1f} stamps/s per core, "
        f"peak RSS per job {real['peak_rss_mb']:.0f} MB",
        f"including simulation: {with_sim['stamps_per_second_per_core']:.1f} stamps/s per core, "
        f"peak RSS per job {with_sim['peak_rss_mb']:.0f} MB",
    ]
    return "\n".join(lines)

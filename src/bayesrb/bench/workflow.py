"""Throughput and scaling of the workflow, from the Snakemake ``benchmark:`` files of a run.

Every rule writes one benchmark file per job into the run's benchmark folder
(:func:`bayesrb.pipeline.paths.benchmarks`): ``<rule>/<wildcard>.tsv`` for per-visit, per-field and
per-experiment rules, ``<rule>.tsv`` for rules that run once. Each file has a header and one row per repetition
with, among others, the wall seconds ``s``, the peak resident set size ``max_rss`` (MB) and the CPU seconds
``cpu_time``; Snakemake writes ``NA`` for the last two when a job ended before it was first sampled. Both are
sampled, every 0.5 s for the first ~15 s of a job and every 30 s after, so the CPU seconds of a long job miss up to
its last 30 s; wall seconds are exact but grow when other work shares the cores.

:func:`rule_costs` sums them per rule, :func:`report` tabulates every rule with the throughput in stamps per
second per core, and :func:`measure_scaling` runs the stamp stage at several visit counts and fits the cost
per visit (:func:`linear_fit`) to show that it grows linearly.
"""

import copy
import csv
import json
import math
import resource
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from bayesrb.errors import BadInputError
from bayesrb.markdown import markdown_table
from bayesrb.pipeline import paths
from bayesrb.stamps.shard import read_shard_meta

#: The columns of a benchmark file that are read: wall seconds, CPU seconds, peak RSS (MB).
BENCHMARK_COLUMNS = ("s", "cpu_time", "max_rss")
#: The stamp stage: the per-visit rules from science and template images to a stamp shard (subtraction, then
#: detection and extraction in one job).
PIPELINE_RULES = ("subtract", "stamp_stage")
#: The simulated survey (absent for real images).
SIMULATION_RULES = ("simulate_survey", "simulate_template", "simulate_visit")
#: From stamp shards to the labelled data set (with the Earth-orientation table of the minor-planet labels).
LABEL_RULES = ("earth_orientation", "label_visit", "augment_visit", "build_dataset")
#: Rules with one job per visit: their stamps per second per core is meaningful.
PER_VISIT_RULES = ("simulate_visit", *PIPELINE_RULES, "label_visit", "augment_visit")
#: The order of the rules in the table (rules not listed here follow, alphabetically).
RULE_ORDER = ("earth_orientation", *SIMULATION_RULES, *PIPELINE_RULES, *LABEL_RULES[1:], "label_purity",
              "dataset_figures", "train_model", "score_dataset", "evaluation_table", "experiment_figures",
              "context_features", "score_context_candidates", "context_table", "context_experiment", "context_figures")


@dataclass(frozen=True)
class JobCost:
    """What one benchmark file says about one job (the mean over its rows if the job was repeated).

    ``cpu_seconds`` and ``max_rss_mb`` are NaN where Snakemake wrote ``NA``.
    """

    seconds: float
    cpu_seconds: float
    max_rss_mb: float


@dataclass(frozen=True)
class RuleCost:
    """The jobs of one rule together: summed wall and CPU seconds, the largest peak RSS.

    ``cpu_seconds`` leaves out jobs whose CPU time was not sampled; ``max_rss_mb`` is NaN if no job's was.
    """

    rule: str
    jobs: int
    seconds: float
    cpu_seconds: float
    max_rss_mb: float
    threads: int = 1

    @property
    def seconds_per_job(self) -> float:
        """Mean wall seconds of one job."""
        return self.seconds / self.jobs

    @property
    def core_seconds(self) -> float:
        """Wall seconds times the threads each job holds: the cores the rule kept busy."""
        return self.seconds * self.threads


def _largest(values) -> float:
    """The largest of ``values`` ignoring NaN; NaN if all are."""
    values = np.asarray(values, dtype=float)
    return math.nan if np.all(np.isnan(values)) else float(np.nanmax(values))


def _ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN if the denominator is 0."""
    return numerator / denominator if denominator else math.nan


def _number(path: Path, column: str, text: str) -> float:
    if text == "NA":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise BadInputError(path, f"column {column!r} holds {text!r}, not a number") from None


def read_benchmark(path: str | Path) -> JobCost:
    """Read one Snakemake benchmark file.

    Parameters
    ----------
    path : str or pathlib.Path
        A tab-separated benchmark file with at least the columns of :data:`BENCHMARK_COLUMNS`.

    Returns
    -------
    JobCost
        The mean of its rows (more than one only with Snakemake's ``repeat()``).

    Raises
    ------
    BadInputError
        If the file is missing, lacks a column, has no data row, or a value is not a number (``NA`` is allowed
        except for ``s``).
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "benchmark file not found")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = [c for c in BENCHMARK_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise BadInputError(path, f"not a Snakemake benchmark file: missing column(s) {missing}")
        rows = [[_number(path, c, row[c] or "") for c in BENCHMARK_COLUMNS] for row in reader]
    if not rows:
        raise BadInputError(path, "benchmark file has a header but no data row")
    seconds, cpu_seconds, max_rss_mb = np.mean(rows, axis=0)
    if math.isnan(seconds):
        raise BadInputError(path, "column 's' (wall seconds) is NA")
    return JobCost(float(seconds), float(cpu_seconds), float(max_rss_mb))


def _benchmark_files(results: Path) -> dict[str, list[Path]]:
    """Benchmark files of every rule of a run, keyed by rule name."""
    directory = Path(paths.benchmarks(results))
    if not directory.is_dir():
        raise BadInputError(directory, "no benchmark directory: not the results directory of a run")
    files = {path.stem: [path] for path in directory.glob("*.tsv")}
    for rule_dir in directory.iterdir():
        if rule_dir.is_dir() and (jobs := sorted(rule_dir.glob("*.tsv"))):
            files[rule_dir.name] = jobs
    return files


def _ordered(rules) -> list[str]:
    known = [rule for rule in RULE_ORDER if rule in rules]
    return known + sorted(set(rules) - set(known))


def rule_costs(results: str | Path, rules: Sequence[str] | None = None,
               threads: Mapping[str, int] | None = None) -> list[RuleCost]:
    """Cost of each rule of a run from its benchmark files.

    Parameters
    ----------
    results : str or pathlib.Path
        The ``results`` directory of the run.
    rules : sequence of str, optional
        Rules to report, in this order; those without benchmark files are left out. Default: every rule with
        benchmark files, in :data:`RULE_ORDER`.
    threads : mapping of str to int, optional
        Threads of each job of a rule (see :func:`rule_threads`); rules not named hold 1.

    Returns
    -------
    list of RuleCost

    Raises
    ------
    BadInputError
        If ``results/benchmarks`` does not exist, or a benchmark file is malformed (see :func:`read_benchmark`).
    """
    files = _benchmark_files(Path(results))
    threads = threads or {}
    costs = []
    for rule in _ordered(files) if rules is None else [r for r in rules if r in files]:
        jobs = [read_benchmark(path) for path in files[rule]]
        cpu, rss = [j.cpu_seconds for j in jobs], [j.max_rss_mb for j in jobs]
        costs.append(RuleCost(rule, len(jobs), sum(j.seconds for j in jobs), float(np.nansum(cpu)), _largest(rss),
                              threads.get(rule, 1)))
    return costs


def load_config(path: str | Path) -> dict:
    """Read a workflow config YAML file (not validated: Snakemake does that when it runs).

    Raises
    ------
    BadInputError
        If the file is missing, is not YAML, or does not hold a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "config file not found")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise BadInputError(path, f"not valid YAML ({error})") from None
    if not isinstance(config, dict):
        raise BadInputError(path, f"a config must be a mapping of sections, got {type(config).__name__}")
    return config


def rule_threads(config: Mapping, cores: int) -> dict[str, int]:
    """Threads per job of the rules that hold more than one, as the workflow's rules set them.

    Parameters
    ----------
    config : mapping
        The run's config (its ``threads`` section; keys left out take the schema's default, 1).
    cores : int
        The ``--cores`` of the run: ``train_model`` and ``score_dataset`` hold them all.

    Returns
    -------
    dict of str to int
    """
    return {"subtract": int(config.get("threads", {}).get("subtract", 1)), "train_model": cores,
            "score_dataset": cores}


def count_stamps(results: str | Path) -> int:
    """Number of stamps in every stamp shard of a run (:func:`bayesrb.pipeline.paths.shard`).

    Raises
    ------
    BadInputError
        If there is no shard, or a shard is unreadable.
    """
    pattern = Path(paths.shard(results, "*"))
    shards = sorted(pattern.parent.glob(pattern.name))
    if not shards:
        raise BadInputError(pattern.parent, f"no stamp shards ({pattern.name}): the stamp stage has not run")
    return sum(len(read_shard_meta(path)[0]["candidate_id"]) for path in shards)


def dataset_stamps(results: str | Path) -> int | None:
    """Number of stamps in the run's data set (its summary), None if it was not built."""
    summary = Path(paths.dataset_summary(results))
    if not summary.is_file():
        return None
    try:
        return int(json.loads(summary.read_text())["n_stamps"])
    except (ValueError, KeyError, TypeError) as error:
        raise BadInputError(summary, f"no readable 'n_stamps' ({error})") from None


def throughput(results: str | Path, rules: Sequence[str] = PIPELINE_RULES, stamps: int | None = None,
               threads: Mapping[str, int] | None = None) -> dict[str, float]:
    """Stamps per second per core of a group of rules, and their largest peak RSS.

    Parameters
    ----------
    results : str or pathlib.Path
        The ``results`` directory of a finished run.
    rules : sequence of str
        The rules whose jobs are charged (rules without benchmark files, e.g. the simulation of a run on real
        images, are left out). Each job is charged its wall time times its threads.
    stamps : int, optional
        Number of stamps of the run, if already counted (:func:`count_stamps` reads every shard).
    threads : mapping of str to int, optional
        Threads per job of the rules that hold more than one (:func:`rule_threads`).

    Returns
    -------
    dict
        ``stamps``; ``visits`` (the most jobs of any of the rules); ``rules`` (those charged, joined by ``+``);
        ``seconds`` (summed wall seconds); ``core_seconds``; ``cpu_seconds`` (summed sampled CPU seconds, see the
        module notes); ``stamps_per_second_per_core`` (per core-second); ``peak_rss_mb``.

    Raises
    ------
    BadInputError
        If none of ``rules`` has benchmark files, or as :func:`rule_costs` and :func:`count_stamps`.
    """
    costs = rule_costs(results, rules, threads)
    if not costs:
        raise BadInputError(paths.benchmarks(results), f"no benchmark files of any of the rules {list(rules)}")
    core_seconds = sum(c.core_seconds for c in costs)
    stamps = count_stamps(results) if stamps is None else stamps
    return {"stamps": stamps, "visits": max(c.jobs for c in costs), "rules": "+".join(c.rule for c in costs),
            "seconds": sum(c.seconds for c in costs), "core_seconds": core_seconds,
            "cpu_seconds": sum(c.cpu_seconds for c in costs),
            "stamps_per_second_per_core": _ratio(stamps, core_seconds),
            "peak_rss_mb": _largest([c.max_rss_mb for c in costs])}


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool = False) -> str:
    """Render rows of cells as a Markdown table, or as right-aligned text columns (the first left-aligned)."""
    if markdown:
        return markdown_table(header, rows)
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(cells, widths, strict=True)))
                     for cells in (header, *rows))


def _rule_row(cost: RuleCost, stamps: int) -> list[str]:
    rate = f"{_ratio(stamps, cost.core_seconds):.1f}" if cost.rule in PER_VISIT_RULES else "-"
    return [cost.rule, str(cost.jobs), str(cost.threads), f"{cost.seconds:.1f}", f"{cost.seconds_per_job:.2f}",
            f"{cost.cpu_seconds:.1f}", f"{cost.max_rss_mb:.0f}", rate]


def report(results: str | Path, threads: Mapping[str, int] | None = None, markdown: bool = False) -> str:
    """A table of every rule of a finished run and the throughput of the stamp stage and of the whole data set.

    Parameters
    ----------
    results : str or pathlib.Path
        The ``results`` directory of the run.
    threads : mapping of str to int, optional
        Threads per job of the rules that hold more than one (:func:`rule_threads`).
    markdown : bool
        A Markdown table and bullet points instead of aligned text.

    Returns
    -------
    str
        One row per rule: jobs, threads per job, total wall seconds, wall seconds per job, CPU seconds, peak RSS
        (MB) of its largest job and, for per-visit rules, the run's stamps per second per core of that rule
        alone. Then the stamp count and the stamps per second per core of the stamp stage, and of the stamp stage
        with the simulation and the labels (up to the data set).

    Raises
    ------
    BadInputError
        As :func:`throughput`.
    """
    results = Path(results)
    costs = rule_costs(results, threads=threads)
    stamps = count_stamps(results)
    rows = [_rule_row(cost, stamps) for cost in costs]
    header = ["rule", "jobs", "threads", "wall s", "s/job", "CPU s", "peak RSS MB", "stamps/s/core"]
    table, lines = format_table(header, rows, markdown), _summary_lines(results, stamps, threads)
    if markdown:
        return table + "\n\n" + "\n".join(f"- {line}" for line in lines)
    return table + "\n" + "\n".join(lines)


def _rates(figures: dict[str, float]) -> str:
    """Stamps per core-second and per CPU-second of a :func:`throughput` result, and its peak RSS."""
    return (f"{figures['stamps_per_second_per_core']:.1f} stamps/s per core ({figures['core_seconds']:.0f} core-s; "
            f"{_ratio(figures['stamps'], figures['cpu_seconds']):.1f} stamps per CPU-s), "
            f"peak RSS per job {figures['peak_rss_mb']:.0f} MB")


def _summary_lines(results: Path, stamps: int, threads: Mapping[str, int] | None) -> list[str]:
    """The stamp count and the throughput of the stamp stage, of everything up to the data set, of the data set."""
    stage = throughput(results, PIPELINE_RULES, stamps, threads)
    whole = throughput(results, SIMULATION_RULES + PIPELINE_RULES + LABEL_RULES, stamps, threads)
    lines = [f"stamps: {stamps} from {stage['visits']} visits",
             f"stamp stage ({stage['rules']}): {_rates(stage)}",
             f"with simulation and labels ({whole['rules']}): {_rates(whole)}"]
    in_dataset = dataset_stamps(results)
    if in_dataset is not None:
        lines.append(f"data set: {in_dataset} labelled stamps (augmentation included), "
                     f"{_ratio(in_dataset, whole['core_seconds']):.2f} per second per core with simulation and labels")
    return lines


@dataclass(frozen=True)
class ScalingPoint:
    """One scaling run: its visits, stamps and costs.

    ``core_seconds`` (wall x threads) and ``cpu_seconds`` (sampled) are those of the stamp stage's benchmark files,
    ``run_cpu_seconds`` the exact CPU seconds of the whole run (:class:`RunCost`).
    """

    visits: int
    stamps: int
    core_seconds: float
    cpu_seconds: float
    run_cpu_seconds: float

    @property
    def stamps_per_second_per_core(self) -> float:
        """Stamps per core-second."""
        return self.stamps / self.core_seconds

    @property
    def seconds_per_visit(self) -> float:
        """Core-seconds per visit."""
        return self.core_seconds / self.visits


@dataclass(frozen=True)
class LinearFit:
    """A least-squares line ``y = slope x + intercept`` and its coefficient of determination."""

    slope: float
    intercept: float
    r_squared: float


def linear_fit(x: Sequence[float], y: Sequence[float]) -> LinearFit:
    """Fit a straight line to points by least squares.

    Parameters
    ----------
    x, y : sequence of float
        The points, at least two distinct ``x``.

    Returns
    -------
    LinearFit
        ``r_squared`` is 1 - (residual sum of squares) / (total sum of squares of ``y``), 1 if ``y`` is constant
        and fitted exactly.

    Raises
    ------
    ValueError
        If ``x`` and ``y`` differ in length, or there are fewer than two distinct ``x``.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of the same length, got shapes {x.shape} and {y.shape}")
    if len(np.unique(x)) < 2:
        raise ValueError(f"a line needs at least two distinct x values, got {x.tolist()}")
    slope, intercept = np.polyfit(x, y, 1)
    residual = float(np.sum((y - (slope * x + intercept)) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    return LinearFit(float(slope), float(intercept), 1.0 - residual / total if total else 1.0)


def scaling_config(base: Mapping, visits: int, image_size: int, results: str | Path) -> dict:
    """The config of one scaling run: ``base`` with one field observed on ``visits`` nights.

    One field (no evaluation field) on ``visits`` nights, one visit per night, keeps the sky the same, so each
    visit has about the same candidates and only the number of visits changes between runs.

    Parameters
    ----------
    base : mapping
        A workflow config (e.g. ``config/config.yaml`` loaded); not modified.
    visits : int
        Number of visits, at least 1.
    image_size : int
        Side of the square science and template images, pixels (at least 64, the schema's minimum).
    results : str or pathlib.Path
        The run's ``results`` directory.

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        If ``visits`` < 1 or ``image_size`` < 64.
    """
    if visits < 1 or image_size < 64:
        raise ValueError(f"need at least 1 visit and images of at least 64 px, got {visits} and {image_size}")
    config = copy.deepcopy(dict(base))
    config["results"] = str(results)
    config.setdefault("simulate", {}).update(n_fields=1, n_eval_fields=0, n_context_fields=0, n_nights=visits,
                                             visits_per_night=1, image_size=[image_size, image_size])
    return config


@dataclass(frozen=True)
class RunCost:
    """Wall seconds of a whole Snakemake run, and the user + system CPU seconds of Snakemake and of every job.

    The CPU seconds come from ``getrusage`` when the run has ended: exact, and unlike wall time not inflated when
    other work shares the cores.
    """

    wall_seconds: float
    cpu_seconds: float


def measure_command(command: Sequence[str]) -> RunCost:
    """Run ``command`` to the end and measure it and every process it waited for.

    Raises
    ------
    subprocess.CalledProcessError
        If the command fails.
    """
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(command, check=True)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    return RunCost(wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)


def run_workflow(configfile: str | Path, cores: int, results: str | Path | None = None,
                 until: Sequence[str] = ()) -> RunCost:
    """Run the workflow (from the repository root) with Snakemake; its output goes to the terminal.

    Parameters
    ----------
    configfile : str or pathlib.Path
        The config (it replaces ``config/config.yaml``).
    cores : int
        Snakemake's ``--cores``.
    results : str or pathlib.Path, optional
        Overrides the config's ``results``.
    until : sequence of str
        Rules to stop at (Snakemake's ``--until``); empty: the whole workflow.

    Returns
    -------
    RunCost

    Raises
    ------
    subprocess.CalledProcessError
        If Snakemake fails.
    """
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--configfile", str(configfile)]
    command += ["--config", f"results={results}"] if results is not None else []
    command += ["--until", *until] if until else []
    return measure_command([*command, "--quiet", "rules"])


def measure_scaling(base: Mapping, visit_counts: Sequence[int], image_size: int, cores: int,
                    workdir: str | Path) -> list[ScalingPoint]:
    """Run the stamp stage of a simulated survey at each visit count and measure its cost.

    Each count gets ``workdir/visits-<n>/`` with its ``config.yaml`` (:func:`scaling_config`) and ``results/``;
    Snakemake runs up to the stamp stage (the simulation included, but only the stamp stage is charged).

    Parameters
    ----------
    base : mapping
        The workflow config to start from.
    visit_counts : sequence of int
        Numbers of visits, e.g. ``(1, 2, 4, 8)``.
    image_size : int
        Side of the square images, pixels.
    cores : int
        Snakemake's ``--cores``.
    workdir : str or pathlib.Path
        Where the runs go.

    Returns
    -------
    list of ScalingPoint
        One per count: the stamps of its shards, the core-seconds and CPU seconds of :data:`PIPELINE_RULES`,
        and the CPU seconds of the whole run (simulation and Snakemake included).
    """
    points = []
    for visits in visit_counts:
        run_dir = Path(workdir) / f"visits-{visits}"
        run_dir.mkdir(parents=True, exist_ok=True)
        config = scaling_config(base, visits, image_size, run_dir / "results")
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        run = run_workflow(run_dir / "config.yaml", cores, until=PIPELINE_RULES[-1:])  # the stage's last rule
        stage = throughput(run_dir / "results", PIPELINE_RULES, threads=rule_threads(config, cores))
        points.append(ScalingPoint(visits, stage["stamps"], stage["core_seconds"], stage["cpu_seconds"],
                                   run.cpu_seconds))
    return points


def scaling_report(points: Sequence[ScalingPoint], markdown: bool = False) -> str:
    """A table of the scaling runs and straight lines fitted to their costs against visits.

    The lines are fitted to the stamp stage's core-seconds and to the whole run's exact CPU seconds.

    Raises
    ------
    ValueError
        If fewer than two distinct visit counts were measured.
    """
    rows = [[str(p.visits), str(p.stamps), f"{p.core_seconds:.1f}", f"{p.cpu_seconds:.1f}",
             f"{p.stamps_per_second_per_core:.1f}", f"{p.seconds_per_visit:.2f}", f"{p.run_cpu_seconds:.1f}"]
            for p in points]
    header = ["visits", "stamps", "core-s", "CPU s", "stamps/s/core", "s/visit", "run CPU s"]
    visits = [p.visits for p in points]
    fits = (("stamp stage core-seconds", linear_fit(visits, [p.core_seconds for p in points])),
            ("whole run CPU seconds", linear_fit(visits, [p.run_cpu_seconds for p in points])))
    lines = [f"{name} = {fit.slope:.2f} s per visit x visits {fit.intercept:+.2f} s, R^2 = {fit.r_squared:.4f}"
             for name, fit in fits]
    separator = "\n\n" if markdown else "\n"
    return separator.join([format_table(header, rows, markdown), *lines])

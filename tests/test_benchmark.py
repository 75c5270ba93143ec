"""Tests for bayesrb.bench.workflow: the per-rule table, the throughput figures, the scaling fit and bad input.

A fake run is written by hand: Snakemake-format benchmark files with chosen seconds, CPU seconds and RSS, two
stamp shards written by the real shard writer, and a data-set summary; every expected number is computed here.
"""

import json
import sys
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT, TINY

from bayesrb.bench import workflow as benchmark
from bayesrb.bench.workflow import (
    LinearFit,
    ScalingPoint,
    linear_fit,
    load_config,
    measure_command,
    measure_scaling,
    read_benchmark,
    report,
    rule_costs,
    rule_threads,
    scaling_config,
    scaling_report,
    throughput,
)
from bayesrb.cli import main
from bayesrb.errors import BadInputError
from bayesrb.stamps.shard import SHARD_META_COLUMNS, write_shard

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"
#: Per rule: (job name, wall s, peak RSS MB, CPU s) of each job; names ending in .tsv are single-job rules.
JOBS = {
    "simulate_survey.tsv": [("", 2.0, 100.0, 1.5)],
    "simulate_visit": [("v1", 4.0, 300.0, 3.0), ("v2", 6.0, 310.0, 5.0)],
    "subtract": [("v1", 8.0, 1200.0, 7.0), ("v2", 10.0, 1300.0, 9.0)],
    "stamp_stage": [("v1", 3.0, 320.0, 2.3), ("v2", 4.5, "NA", "NA")],
    "label_visit": [("v1", 2.5, 180.0, 2.0), ("v2", 3.5, 190.0, 3.0)],
    "build_dataset.tsv": [("", 4.0, 290.0, 3.0)],
    "train_model": [("bcnn", 40.0, 1100.0, 70.0)],
}
STAMPS = {"v1": 5, "v2": 11}


def write_benchmark(path: Path, seconds, rss, cpu) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{HEADER}\n{seconds}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t50\t{cpu}\n")


def write_tiny_shard(path: Path, visit: str, n: int) -> None:
    meta = {name: np.zeros(n, dtype=object if dtype is str else dtype) for name, dtype in SHARD_META_COLUMNS.items()}
    meta.update(candidate_id=np.array([f"{visit}-{i}" for i in range(n)]), visit=np.array([visit] * n),
                kind=np.array([""] * n))
    write_shard(path, np.zeros((n, 9, 9, 1), np.float32), ["difference"], meta,
                {"units": "ADU", "pixel_scale_arcsec": 1.24, "stamp_size": 9, "seed": 0, "config_hash": "x"})


@pytest.fixture
def run(tmp_path) -> Path:
    """A fake finished run: the benchmark files of JOBS, the shards of STAMPS, a data set of 9 stamps."""
    results = tmp_path / "results"
    for rule, jobs in JOBS.items():
        for name, seconds, rss, cpu in jobs:
            path = results / "benchmarks" / (rule if rule.endswith(".tsv") else f"{rule}/{name}.tsv")
            write_benchmark(path, seconds, rss, cpu)
    for visit, n in STAMPS.items():
        write_tiny_shard(results / "stamps" / f"{visit}.zarr", visit, n)
    (results / "dataset").mkdir()
    (results / "dataset" / "summary.json").write_text(json.dumps({"n_stamps": 9}))
    return results


def test_rule_costs_sum_every_job_of_every_rule_in_pipeline_order(run):
    costs = {c.rule: c for c in rule_costs(run, threads={"subtract": 2})}
    assert list(costs) == ["simulate_survey", "simulate_visit", "subtract", "stamp_stage", "label_visit",
                           "build_dataset", "train_model"]
    subtract = costs["subtract"]
    assert (subtract.jobs, subtract.seconds, subtract.cpu_seconds, subtract.max_rss_mb) == (2, 18.0, 16.0, 1300.0)
    assert subtract.threads == 2 and subtract.core_seconds == 36.0 and subtract.seconds_per_job == 9.0
    # the second stamp_stage job ended before Snakemake sampled it: its CPU time and RSS are unknown (NA)
    stage = costs["stamp_stage"]
    assert (stage.seconds, stage.cpu_seconds, stage.max_rss_mb) == (7.5, 2.3, 320.0)
    assert costs["simulate_survey"].jobs == 1 and costs["train_model"].threads == 1


def test_rule_costs_keep_the_order_asked_and_skip_rules_without_files(run):
    assert [c.rule for c in rule_costs(run, ("stamp_stage", "augment_visit", "subtract"))] == [
        "stamp_stage", "subtract"]


def test_throughput_of_the_stamp_stage_and_with_simulation_and_labels(run):
    threads = {"subtract": 2}
    stage = throughput(run, threads=threads)
    assert stage["stamps"] == 16 and stage["visits"] == 2
    assert stage["seconds"] == pytest.approx(18 + 7.5)
    assert stage["core_seconds"] == pytest.approx(2 * 18 + 7.5)
    assert stage["cpu_seconds"] == pytest.approx(16 + 2.3)
    assert stage["stamps_per_second_per_core"] == pytest.approx(16 / 43.5)
    assert stage["peak_rss_mb"] == 1300.0
    whole = throughput(run, benchmark.SIMULATION_RULES + benchmark.PIPELINE_RULES + benchmark.LABEL_RULES,
                       stamps=16, threads=threads)
    assert whole["rules"] == "simulate_survey+simulate_visit+subtract+stamp_stage+label_visit+build_dataset"
    assert whole["core_seconds"] == pytest.approx(2 + 10 + 43.5 + 6 + 4)


def test_report_table_and_figures_equal_hand_computed_numbers(run):
    text = report(run, threads=rule_threads({"threads": {"subtract": 2}}, cores=4))
    rows = {line.split()[0]: line.split() for line in text.splitlines()[1:8]}
    # rule, jobs, threads, wall s, s/job, CPU s, peak RSS MB, stamps/s/core (16 stamps / core-seconds)
    assert rows["subtract"] == ["subtract", "2", "2", "18.0", "9.00", "16.0", "1300", f"{16 / 36:.1f}"]
    assert rows["stamp_stage"][-1] == f"{16 / 7.5:.1f}" and rows["simulate_visit"][-1] == f"{16 / 10:.1f}"
    assert rows["train_model"] == ["train_model", "1", "4", "40.0", "40.00", "70.0", "1100", "-"]
    assert "stamps: 16 from 2 visits" in text
    assert f"{16 / 43.5:.1f} stamps/s per core (44 core-s; {16 / 18.3:.1f} stamps per CPU-s)" in text
    assert f"data set: 9 labelled stamps (augmentation included), {9 / 65.5:.2f} per second per core" in text


def test_markdown_report_is_a_table_with_one_row_per_rule(run):
    lines = report(run, markdown=True).splitlines()
    assert lines[0] == "| rule | jobs | threads | wall s | s/job | CPU s | peak RSS MB | stamps/s/core |"
    assert lines[1] == "| --- | --- | --- | --- | --- | --- | --- | --- |"
    assert lines[4] == "| subtract | 2 | 1 | 18.0 | 9.00 | 16.0 | 1300 | 0.9 |"
    assert "- stamps: 16 from 2 visits" in lines


def test_linear_fit_recovers_an_exact_line_and_r_squared_of_scattered_points():
    fit = linear_fit([1, 2, 4, 8], [5.0, 8.0, 14.0, 26.0])
    assert fit.slope == pytest.approx(3.0) and fit.intercept == pytest.approx(2.0)
    assert fit.r_squared == pytest.approx(1.0)
    # by hand: slope = 4 / 5, intercept = 2.5 - 0.8 * 2.5, residual SS 1.8 over total SS 5
    assert astuple(linear_fit([1, 2, 3, 4], [1, 3, 2, 4])) == pytest.approx(astuple(LinearFit(0.8, 0.5, 1 - 1.8 / 5)))


@pytest.mark.parametrize(("x", "y", "message"), [([2, 2], [1, 3], "two distinct x"),
                                                  ([1, 2, 3], [1, 2], "same length")])
def test_linear_fit_rejects_too_few_or_mismatched_points(x, y, message):
    with pytest.raises(ValueError, match=message):
        linear_fit(x, y)


def test_scaling_report_shows_cost_per_visit_and_the_fits():
    points = [ScalingPoint(1, 100, 12.0, 11.0, 20.0), ScalingPoint(2, 210, 22.0, 21.0, 35.0),
              ScalingPoint(4, 400, 42.0, 41.0, 65.0)]
    text = scaling_report(points)
    assert text.splitlines()[2].split() == ["2", "210", "22.0", "21.0", f"{210 / 22:.1f}", "11.00", "35.0"]
    assert "stamp stage core-seconds = 10.00 s per visit x visits +2.00 s, R^2 = 1.0000" in text
    assert "whole run CPU seconds = 15.00 s per visit x visits +5.00 s, R^2 = 1.0000" in text


def test_scaling_config_observes_one_field_on_as_many_nights_as_visits():
    base = {"simulate": {"n_fields": 4, "seed": 3}, "threads": {"subtract": 2}}
    config = scaling_config(base, 8, 512, "/tmp/r")
    assert config["simulate"] == {"n_fields": 1, "seed": 3, "n_eval_fields": 0, "n_context_fields": 0, "n_nights": 8,
                                  "visits_per_night": 1, "image_size": [512, 512]}
    assert config["results"] == "/tmp/r" and base["simulate"] == {"n_fields": 4, "seed": 3}
    with pytest.raises(ValueError, match="at least 1 visit"):
        scaling_config(base, 0, 512, "/tmp/r")


def test_measure_scaling_runs_the_stamp_stage_at_each_visit_count(tmp_path, monkeypatch):
    # real Snakemake runs of the tiny config's stamp stage, on one field of 128² images, at 1 and 2 visits
    monkeypatch.chdir(ROOT)
    points = measure_scaling(yaml.safe_load(TINY.read_text()), [1, 2], 128, 2, tmp_path)
    assert [point.visits for point in points] == [1, 2]
    for point in points:
        results = tmp_path / f"visits-{point.visits}" / "results"
        assert len(list((results / "stamps").glob("*.zarr"))) == point.visits
        assert point.stamps == benchmark.count_stamps(results) > 0
        stage = rule_costs(results, benchmark.PIPELINE_RULES)
        assert [(cost.rule, cost.jobs) for cost in stage] == [("subtract", point.visits), ("stamp_stage", point.visits)]
        assert point.core_seconds == pytest.approx(sum(cost.core_seconds for cost in stage))
        assert 0 < point.cpu_seconds < point.run_cpu_seconds
        assert not (results / "dataset").exists()  # stopped at the stamp stage


def test_measure_command_counts_the_cpu_time_of_the_processes_it_waits_for():
    # a child that spins for 0.4 CPU-seconds in a grandchild: getrusage sees both generations once they have ended
    spin = "import time; t = time.process_time(); exec('while time.process_time() - t < 0.4: pass')"
    grandchild = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {spin!r}], check=True)"
    cost = measure_command([sys.executable, "-c", grandchild])
    assert 0.4 <= cost.cpu_seconds < 0.4 + 2.0  # plus two interpreter start-ups
    assert cost.wall_seconds >= 0.4


def test_cli_tabulates_a_finished_run_without_running_it(run, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("threads: {subtract: 2}\n")
    assert main(["benchmark", "--table", str(run), "--configfile", str(config), "--markdown"]) == 0
    assert "| subtract | 2 | 2 | 18.0 | 9.00 | 16.0 | 1300 | 0.4 |" in capsys.readouterr().out


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    assert main(["benchmark", "--table", str(tmp_path), "--configfile", "config/config.yaml"]) == 1
    assert f"{tmp_path / 'benchmarks'}: no benchmark directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["benchmark", "--scaling", "4,4"])
    assert "two distinct positive visit counts" in capsys.readouterr().err


@pytest.mark.parametrize(("content", "problem"), [
    ("s\tmax_rss\n1.0\t20\n", "missing column(s) ['cpu_time']"),
    (f"{HEADER}\n", "no data row"),
    (f"{HEADER}\nabc\t0:00:01\t1\t1\t1\t1\t0\t0\t50\t1\n", "column 's' holds 'abc', not a number"),
    (f"{HEADER}\nNA\t0:00:01\t1\t1\t1\t1\t0\t0\t50\t1\n", "column 's' (wall seconds) is NA"),
])
def test_malformed_benchmark_file_is_named_with_its_problem(tmp_path, content, problem):
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(BadInputError) as error:
        read_benchmark(path)
    assert error.value.source == str(path) and problem in error.value.problem


def test_missing_inputs_give_clear_errors(run, tmp_path):
    with pytest.raises(BadInputError, match="benchmark file not found"):
        read_benchmark(tmp_path / "none.tsv")
    with pytest.raises(BadInputError, match="no benchmark files of any of the rules"):
        throughput(run, ("augment_visit",))
    for shard in (run / "stamps").iterdir():
        shard.rename(tmp_path / shard.name)
    with pytest.raises(BadInputError, match="no stamp shards"):
        report(run)
    with pytest.raises(BadInputError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- a\n")
    with pytest.raises(BadInputError, match="must be a mapping"):
        load_config(tmp_path / "list.yaml")


def test_repeated_benchmark_rows_are_averaged(tmp_path):
    path = tmp_path / "job.tsv"
    path.write_text(f"{HEADER}\n2.0\t0:00:02\t100\t1\t1\t1\t0\t0\t50\t1.0\n4.0\t0:00:04\t300\t1\t1\t1\t0\t0\t50\t3.0\n")
    assert read_benchmark(path) == benchmark.JobCost(3.0, 2.0, 200.0)

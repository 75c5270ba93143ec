"""Command-line interface: `bayesrb benchmark`, `benchmark-model`, `purity`, `score` and `ingest-alerts`."""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from bayesrb.errors import BadInputError
from bayesrb.model.scoring import ScoringSettings

# Each command imports what it needs when it runs, so that `bayesrb benchmark-model` and `bayesrb score` start
# without the imaging and data-set stack (astropy, zarr, ...), e.g. on a GPU machine with only the model's needs.


def _benchmark(args: argparse.Namespace) -> int:
    mode = _benchmark_table if args.table else _benchmark_scaling if args.scaling else _benchmark_run
    try:
        print(mode(args))
    except (BadInputError, subprocess.CalledProcessError) as error:
        print(f"bayesrb benchmark: {error}", file=sys.stderr)
        return 1
    return 0


def _benchmark_table(args: argparse.Namespace) -> str:
    """``--table RESULTS``: the per-rule table of a finished run, without running anything."""
    from bayesrb.bench.workflow import load_config, report, rule_threads

    return report(args.table, rule_threads(load_config(args.configfile), args.cores), args.markdown)


def _benchmark_scaling(args: argparse.Namespace) -> str:
    """``--scaling N,N,...``: the stamp stage run at each visit count, and the straight-line fits of its cost."""
    from bayesrb.bench.workflow import load_config, measure_scaling, scaling_report

    config = load_config(args.configfile)
    return scaling_report(measure_scaling(config, args.scaling, args.image_size, args.cores, _workdir(args)),
                          args.markdown)


def _benchmark_run(args: argparse.Namespace) -> str:
    """No mode flag: run the whole workflow, then tabulate it with the exact cost of the whole run."""
    from bayesrb.bench.workflow import load_config, report, rule_threads, run_workflow

    threads = rule_threads(load_config(args.configfile), args.cores)
    results = _workdir(args) / "results"
    run = run_workflow(args.configfile, args.cores, results=results)
    total = (f"whole run: {run.wall_seconds:.0f} s wall on {args.cores} cores, {run.cpu_seconds:.0f} CPU s "
             "(Snakemake and every job, exact)")
    return f"{report(results, threads, args.markdown)}\n{'- ' if args.markdown else ''}{total}"


def _workdir(args: argparse.Namespace) -> Path:
    """The directory for the benchmark's runs (``--results``, or a new temporary one), announced on stderr."""
    workdir = Path(args.results or tempfile.mkdtemp(prefix="bayesrb-bench-"))
    print(f"running the workflow into {workdir} ...", file=sys.stderr, flush=True)
    return workdir


def _visit_counts(text: str) -> list[int]:
    """Parse ``--scaling``: comma-separated positive visit counts, at least two distinct."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if min(counts) < 1 or len(set(counts)) < 2:
        raise argparse.ArgumentTypeError(f"need at least two distinct positive visit counts, got {text!r}")
    return counts


def _positive_int(text: str) -> int:
    """Parse a count that must be a positive integer (an argparse ``type``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _purity(args: argparse.Namespace) -> int:
    from bayesrb.dataset.purity import format_purity
    from bayesrb.dataset.steps import store_purity

    try:
        purity = store_purity(args.store)
    except ValueError as error:  # a BadInputError names the store itself
        message = error if isinstance(error, BadInputError) else f"{args.store}: {error}"
        print(f"bayesrb purity: {message}", file=sys.stderr)
        return 1
    print(format_purity(purity))
    return 0


def _score(args: argparse.Namespace) -> int:
    from bayesrb.model.score import score_store

    try:
        n = score_store(args.model, args.stamps, args.out, n_samples=args.samples, batch_size=args.batch_size,
                        seed=args.seed)
    except BadInputError as error:
        print(f"bayesrb score: {error}", file=sys.stderr)
        return 1
    print(f"scored {n} candidates -> {args.out}")
    return 0


def _ingest_alerts(args: argparse.Namespace) -> int:
    from bayesrb.alerts.ingest import ingest_alerts

    try:
        summary = ingest_alerts(args.files, args.out, survey=args.survey)
    except BadInputError as error:
        print(f"bayesrb ingest-alerts: {error}", file=sys.stderr)
        return 1
    print(summary)
    return 0


def _catalogue(text: str) -> tuple[str, str, dict[str, str]]:
    """``FAMILY=PATH`` or ``FAMILY=PATH:COLUMN=VALUE`` as (family, path, selection)."""
    family, _, rest = text.partition("=")
    path, _, selection = rest.partition(":")
    column, _, value = selection.partition("=")
    if not family or not path or (selection and not (column and value)):
        raise argparse.ArgumentTypeError(f"expected FAMILY=PATH or FAMILY=PATH:COLUMN=VALUE, got {text!r}")
    return family, path, ({column: value} if selection else {})


def _classify(args: argparse.Namespace) -> int:
    from bayesrb.context.catalogues import CatalogueSource
    from bayesrb.context.steps import classify_store

    catalogues: dict[str, list[CatalogueSource]] = {}
    for family, path, where in args.catalogue:
        catalogues.setdefault(family, []).append(CatalogueSource(path, where))
    try:
        table = classify_store(args.model, args.stamps, args.scores, catalogues, args.out,
                               science_path=args.science, orbits_path=args.orbits, history_path=args.history,
                               template_path=args.template)
    except BadInputError as error:
        print(f"bayesrb classify: {error}", file=sys.stderr)
        return 1
    counts = table["predicted_class"].value_counts().to_dict()
    print(f"classified {len(table)} candidates {counts} -> {args.out}")
    return 0


def _benchmark_model(args: argparse.Namespace) -> int:
    from bayesrb.bench.model import convolution_lines, keras_convolution_lines, run

    try:
        if args.convolutions:
            if args.compare_keras:
                print("\n".join(keras_convolution_lines(args.compare_keras, args.batch_size,
                                                        args.keras_onednn)), flush=True)
            print(f"bayesrb, conv_impl onednn, batch {args.batch_size}", flush=True)
            for line in convolution_lines(args.batch_size):
                print(line, flush=True)
            return 0
        for line in run(steps=args.steps, n_candidates=args.candidates, n_samples=args.samples,
                        conv_impl=args.conv_impl, batch_size=args.batch_size, keras_python=args.compare_keras,
                        keras_onednn=args.keras_onednn, rounds=args.rounds):
            print(line, flush=True)
    except (RuntimeError, ValueError) as error:
        print(f"bayesrb benchmark-model: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bayesrb`` command."""
    parser = argparse.ArgumentParser(prog="bayesrb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("benchmark", help="run the workflow on a config and tabulate the benchmark files of every "
                                             "rule: seconds, CPU seconds, peak RSS, stamps/s per core")
    bench.add_argument("--configfile", default="config/config.yaml",
                       help="config to run (default: the default); its threads section sets the threads per job")
    bench.add_argument("--cores", type=_positive_int, default=2,
                       help="cores for Snakemake (train_model and score_dataset hold all of them; default 2)")
    bench.add_argument("--results", help="directory for the run(s): the workflow writes DIR/results, --scaling "
                                         "DIR/visits-N/results (default: a new temporary directory)")
    bench.add_argument("--markdown", action="store_true", help="print Markdown tables")
    mode = bench.add_mutually_exclusive_group()
    mode.add_argument("--table", metavar="RESULTS", help="run nothing: tabulate the finished run whose results "
                                                         "directory is RESULTS (give its --configfile and --cores)")
    mode.add_argument("--scaling", type=_visit_counts, metavar="N,N,...",
                      help="run the stamp stage (subtract, then detect and extract) of the config's survey reduced to "
                           "one field observed on N nights, for each N, and fit core-seconds against visits")
    bench.add_argument("--image-size", type=_positive_int, default=512,
                       help="--scaling: side of the square images in pixels (default 512)")
    bench.set_defaults(func=_benchmark)
    purity = sub.add_parser("purity", help="print the purity of a data set's automatic labels against the "
                                           "simulator's truth")
    purity.add_argument("store", help="data-set store (zarr directory) built from a simulated survey")
    purity.set_defaults(func=_purity)
    model_bench = sub.add_parser("benchmark-model", help="training stamps/s and GFLOP/s, and scoring time, of every "
                                                         "model kind on 55x55x4 stamps")
    model_bench.add_argument("--steps", type=_positive_int, default=20, help="timed training steps per kind")
    model_bench.add_argument("--candidates", type=_positive_int, default=10_000, help="candidates to score")
    model_bench.add_argument("--samples", type=_positive_int, default=50, help="posterior samples per candidate")
    model_bench.add_argument("--conv-impl", default="auto", choices=("auto", "onednn", "matmul", "xla"),
                             help="convolution implementation (default auto: onednn or matmul on a CPU, xla on a GPU)")
    model_bench.add_argument("--batch-size", type=_positive_int, default=128,
                             help="training mini-batch size (default 128)")
    model_bench.add_argument("--compare-keras", metavar="PYTHON",
                             help="first run benchmarks/keras_reference.py with this Python (an environment with "
                                  "TensorFlow), then print each variant's speed relative to it")
    model_bench.add_argument("--convolutions", action="store_true",
                             help="instead, time oneDNN's forward, input-gradient and kernel-gradient calls of each "
                                  "convolution (with --compare-keras, TensorFlow's first)")
    model_bench.add_argument("--rounds", type=_positive_int, default=1,
                             help="repeat the whole measurement this many times (with --compare-keras the two "
                                  "stacks alternate) and tabulate the medians (default 1)")
    model_bench.add_argument("--keras-onednn", default="on", choices=("on", "default", "off"),
                             help="TensorFlow's oneDNN operations in that comparison: on wherever TensorFlow can "
                                  "(default: Keras at its fastest), TensorFlow's own choice for this CPU, or off")
    model_bench.set_defaults(func=_benchmark_model)
    score = sub.add_parser("score", help="posterior score summaries of every candidate of a stamp store, to Parquet")
    score.add_argument("--model", required=True, help="model directory (results/experiments/NAME/training/model)")
    score.add_argument("--stamps", required=True, help="a data-set store or a per-visit stamp shard (zarr)")
    score.add_argument("--out", required=True, help="output Parquet file")
    score.add_argument("--samples", type=_positive_int, default=ScoringSettings.n_samples,
                       help=f"posterior samples per candidate (default {ScoringSettings.n_samples})")
    score.add_argument("--batch-size", type=_positive_int, default=ScoringSettings.batch_size,
                       help=f"candidates per scoring step (default {ScoringSettings.batch_size})")
    score.add_argument("--seed", type=int, default=0, help="seed of the posterior draws (default 0)")
    score.set_defaults(func=_score)
    ingest = sub.add_parser("ingest-alerts",
                            help="read alert files (ZTF's or Rubin's Avro, brokers' Parquet or JSON of ZTF's) into "
                                 "one stamp store (zarr) of science/template/difference stamps (ZTF 63x63, Rubin "
                                 "29x29) and the alerts' metadata")
    ingest.add_argument("files", nargs="+",
                        help="alert files, directories (searched for *.avro, *.parquet, *.json[l]) or glob patterns")
    ingest.add_argument("--out", required=True, help="output stamp store (zarr directory)")
    ingest.add_argument("--survey", choices=["ZTF", "Rubin"],
                        help="ingest this survey's alerts only (default: the survey of the first alert read)")
    ingest.set_defaults(func=_ingest_alerts)
    classify = sub.add_parser("classify", help="context classes (bs, vs, nt, sn, or, mp) of every candidate of a stamp "
                                                "store, from a trained context model, catalogues and CNN scores")
    classify.add_argument("--model", required=True, help="context model (results/context/NAME/model.joblib)")
    classify.add_argument("--stamps", required=True, help="the stamp store (zarr) whose candidates to classify")
    classify.add_argument("--scores", required=True, help="the CNN's scores of the store (bayesrb score)")
    classify.add_argument("--catalogue", type=_catalogue, action="append", default=[],
                          help="FAMILY=PATH[:COLUMN=VALUE], family one of stars, variables, agn, galaxies; repeat it "
                               "(most trusted first); a family without a catalogue is missing")
    classify.add_argument("--science", default="", help="the visit's science FITS (epoch, site, WCS), with --orbits")
    classify.add_argument("--orbits", default="", help="MPCORB orbit file for the predicted minor planets")
    classify.add_argument("--template", default="",
                          help="the visit's template FITS, with --science: the reference-image features "
                               "(template sources); without it they are missing")
    classify.add_argument("--history", default="",
                          help="table (ECSV, CSV, FITS) of the survey's detections in other visits: ra, dec (deg), "
                               "mjd; with --science (the visit's epoch) it gives the history features, else they "
                               "are 0")
    classify.add_argument("--out", required=True, help="output Parquet file")
    classify.set_defaults(func=_classify)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

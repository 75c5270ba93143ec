"""Context-classifier speed: features and classification in candidates per second per core, and training time.

Features are timed on synthetic but realistically dense inputs: candidates spread over one square degree, all-sky
star, galaxy, variable-star and AGN catalogues at the simulated survey's densities, and a predicted minor planet per
200 candidates. Classification is timed with a classifier trained on ``--train`` such candidates with random
classes (each with a random CNN posterior draw, as the workflow trains, default settings, no early stopping: the
worst case, every tree grown in full), or, given ``--model`` and ``--table``, with a classifier the workflow trained,
on rows drawn from its context table. Every prediction is the mean over the CNN's five posterior draws. The figures
are CPU seconds of this process::

    python -m bayesrb.bench.context --candidates 20000 --train 100000
    python -m bayesrb.bench.context --model results/context/xgboost/model.joblib --table results/context/table.parquet
"""

import argparse
import dataclasses
import os
import time

import numpy as np
import pandas as pd
from astropy.table import Table

from bayesrb.context.catalogues import Family
from bayesrb.context.features import candidate_features
from bayesrb.context.models import (
    CNN_DRAWS,
    censor,
    fit_classifier,
    load_classifier,
    predict_with_spread,
    with_random_cnn_draw,
)
from bayesrb.context.settings import ContextSettings, FeatureSettings
from bayesrb.context.steps import classifier_versions
from bayesrb.vocabulary import CONTEXT_CLASSES

FIELD_DEG = 1.0
RA0, DEC0 = 150.0, 10.0
DENSITIES_PER_DEG2 = {"stars": 6000, "galaxies": 1500, "variables": 180, "agn": 45}


def _positions(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return RA0 + rng.uniform(0, FIELD_DEG, n), DEC0 + rng.uniform(0, FIELD_DEG, n)


def synthetic_families(rng: np.random.Generator) -> dict[str, Family]:
    """All-sky catalogue families at the simulated survey's densities over the benchmark's square degree."""
    families = {}
    for name, density in DENSITIES_PER_DEG2.items():
        ra, dec = _positions(rng, density)
        galaxy = name == "galaxies"
        families[name] = Family(name, ra, dec, rng.uniform(12, 21, density),
                                rng.uniform(1, 5, density) if galaxy else np.full(density, np.nan),
                                rng.uniform(0.3, 1, density) if galaxy else np.ones(density),
                                rng.uniform(0, 180, density) if galaxy else np.zeros(density), coverage=None)
    return families


def synthetic_candidates(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Candidate meta of ``n`` detections."""
    ra, dec = _positions(rng, n)
    return {"ra": ra, "dec": dec, "mag": rng.uniform(15, 21, n), "mag_err": rng.uniform(0.01, 0.3, n),
            "snr": rng.uniform(5, 100, n), "fwhm": rng.uniform(1, 4, n), "sign": rng.choice([-1, 1], n),
            "flags": np.zeros(n), "stamp_flags": np.zeros(n)}


def feature_table(rng: np.random.Generator, n: int, families: dict[str, Family]) -> pd.DataFrame:
    """Context features of ``n`` synthetic candidates, with history and CNN columns filled at random."""
    meta = synthetic_candidates(rng, n)
    ra, dec = _positions(rng, n // 200 + 1)
    planets = Table({"ra": ra, "dec": dec, "mag": rng.uniform(16, 21, len(ra))})
    table = pd.DataFrame(candidate_features(meta, 1.24, families, planets, FeatureSettings()))
    table["history_n_earlier"], table["history_days_since_first"] = rng.integers(0, 4, n), rng.uniform(0, 3, n)
    quantiles = np.sort(rng.uniform(0, 1, (n, len(CNN_DRAWS))), axis=1)
    for k, draw in enumerate(CNN_DRAWS):
        table[draw] = quantiles[:, k]
    table["cnn_std"], table["cnn_bald"] = rng.uniform(0, 0.3, n), rng.uniform(0, 0.2, n)
    return table


def _timed(function, *args):
    """``function(*args)``, its wall seconds and its CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _synthetic_classifier(rng: np.random.Generator, n_train: int, families: dict[str, Family], threads: int):
    settings = ContextSettings()
    train = feature_table(rng, n_train, families)
    censored = censor(with_random_cnn_draw(train, rng), settings.censoring, rng)
    classes = rng.integers(0, len(CONTEXT_CLASSES), n_train)
    model = dataclasses.replace(settings.model, early_stopping_rounds=0)
    return _timed(lambda: fit_classifier(censored, classes, model, seed=0, threads=threads))


def measure(n_candidates: int, n_train: int, threads: int, model_path: str = "", table_path: str = "") -> list[str]:
    """Time features and classification of ``n_candidates``, and training on ``n_train`` candidates.

    Parameters
    ----------
    n_candidates, n_train, threads : int
    model_path, table_path : str
        A classifier the workflow trained and its context table: classification is timed with it on rows drawn
        from the table (training still on synthetic rows).

    Returns
    -------
    list of str
        The printed lines.
    """
    rng = np.random.default_rng(0)
    families = synthetic_families(rng)
    classifier, train_wall, train_cpu = _synthetic_classifier(rng, n_train, families, threads)
    lines = [f"training: {n_train} candidates (random classes, every tree in full), {threads} threads: "
             f"{train_wall:.1f} s wall, {train_cpu:.1f} CPU s"]
    features, _, feature_cpu = _timed(feature_table, rng, n_candidates, families)
    if model_path:
        classifier = load_classifier(model_path, classifier_versions())
        features = pd.read_parquet(table_path).sample(n_candidates, replace=True, random_state=0)
    _, _, classify_cpu = _timed(predict_with_spread, classifier, features)
    source = f"the classifier {model_path}" if model_path else "the synthetic classifier"
    lines += [f"features: {n_candidates} candidates in {feature_cpu:.2f} CPU s: "
              f"{n_candidates / feature_cpu:,.0f} candidates/s per core",
              f"classification ({source}, 5 CNN draws each): {classify_cpu:.2f} CPU s: "
              f"{n_candidates / classify_cpu:,.0f} candidates/s per core",
              f"features + classification: {n_candidates / (feature_cpu + classify_cpu):,.0f} candidates/s per core"]
    return lines


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m bayesrb.bench.context``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=20_000, help="candidates to classify")
    parser.add_argument("--train", type=int, default=100_000, help="training candidates")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="training threads")
    parser.add_argument("--model", default="", help="a trained context classifier (model.joblib) to time")
    parser.add_argument("--table", default="", help="its context table (table.parquet), whose rows it classifies")
    args = parser.parse_args(argv)
    if bool(args.model) != bool(args.table):
        parser.error("--model and --table go together")
    for line in measure(args.candidates, args.train, args.threads, args.model, args.table):
        print(line)


if __name__ == "__main__":
    main()

"""Context-classifier speed: features + classification in candidates per second per core, and training time.

Synthetic but realistically dense inputs: candidates spread over one square degree, all-sky star, galaxy,
variable-star and AGN catalogues at the simulated survey's densities, and a predicted minor planet per 200
candidates. The classifier is trained on ``--train`` such candidates (each with a random CNN posterior draw, as
the workflow trains) with the default settings; the figures are CPU seconds of this process::

    python -m bayesrb.bench.context --candidates 20000 --train 100000
"""

import argparse
import os
import time

import numpy as np
import pandas as pd
from astropy.table import Table

from bayesrb.context.catalogues import Family
from bayesrb.context.features import candidate_features
from bayesrb.context.models import CNN_DRAWS, censor, fit_classifier, predict_with_spread, with_random_cnn_draw
from bayesrb.context.settings import ContextSettings, FeatureSettings
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


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def measure(n_candidates: int, n_train: int, threads: int) -> list[str]:
    """Train on ``n_train`` synthetic candidates, then time features + classification of ``n_candidates``."""
    rng = np.random.default_rng(0)
    families = synthetic_families(rng)
    settings = ContextSettings()
    train = feature_table(rng, n_train, families)
    censored = censor(with_random_cnn_draw(train, rng), settings.censoring, rng)
    classes = rng.integers(0, len(CONTEXT_CLASSES), n_train)
    wall, cpu = time.perf_counter(), _cpu()
    classifier = fit_classifier(censored, classes, settings.model, seed=0, threads=threads)
    train_wall, train_cpu = time.perf_counter() - wall, _cpu() - cpu
    wall, cpu = time.perf_counter(), _cpu()
    predict_with_spread(classifier, feature_table(rng, n_candidates, families))
    score_wall, score_cpu = time.perf_counter() - wall, _cpu() - cpu
    return [f"training: {n_train} candidates, {threads} threads: "
            f"{train_wall:.1f} s wall, {train_cpu:.1f} CPU s",
            f"features + classification: {n_candidates} candidates in {score_wall:.2f} s wall, {score_cpu:.2f} CPU s: "
            f"{n_candidates / score_cpu:,.0f} candidates/s per core"]


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m bayesrb.bench.context``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=20_000, help="candidates to classify")
    parser.add_argument("--train", type=int, default=100_000, help="training candidates")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="training threads")
    args = parser.parse_args(argv)
    for line in measure(args.candidates, args.train, args.threads):
        print(line)


if __name__ == "__main__":
    main()

r"""Leave-one-field-out cross-validation of context-classifier settings, on the context table's ``train`` fields.

Each ``train`` field in turn is held out: the classifier is trained on the other ``train`` fields as an experiment
is (:func:`bayesrb.context.experiment.train_experiment`: one random CNN draw per row, censoring, XGBoost stopping
early on the ``val`` split; no calibration, which does not change the predicted class) and the held-out field is
scored over the CNN draws. The held-out predictions of all folds, pooled, give each setting's accuracy, balanced
accuracy and log loss; the whole is repeated over context seeds (the CNN draws, the censoring and the trees are
random), whose spread says which differences are more than chance: settings compared without the ``test``
split. A product grid over :class:`~bayesrb.context.settings.ClassifierSettings` fields, plus the random
forest for comparison::

    python -m bayesrb.bench.context_cv results/context/table.parquet --grid max_depth=3,6,10 \
        learning_rate=0.05,0.1 --random-forest --seeds 3
"""

import argparse
import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import balanced_accuracy_score, log_loss

from bayesrb.context.experiment import train_experiment
from bayesrb.context.models import predict_with_spread
from bayesrb.context.settings import ClassifierSettings, ContextSettings
from bayesrb.markdown import markdown_table
from bayesrb.vocabulary import CONTEXT_CLASSES

__all__ = ["cross_validate", "grid"]

#: The split name a held-out fold gets while the others train.
HELD_OUT = "held_out"


def grid(values: dict[str, list]) -> list[dict]:
    """Every combination of the given setting values, as override dicts (one empty dict for no values)."""
    return [dict(zip(values, combination, strict=True)) for combination in itertools.product(*values.values())]


def cross_validate(table: pd.DataFrame, overrides: list[dict], seeds: Sequence[int] = (0,),
                   threads: int = 1) -> pd.DataFrame:
    """Leave-one-``train``-field-out metrics of each setting, over seeds (see the module docstring).

    Parameters
    ----------
    table : pandas.DataFrame
        A context table (:func:`bayesrb.context.steps.write_context_table`).
    overrides : list of dict
        Each a setting: overrides of the default :class:`~bayesrb.context.settings.ClassifierSettings`.
    seeds : sequence of int
        Context seeds (CNN draws, censoring, trees); each repeats the whole cross-validation.
    threads : int

    Returns
    -------
    pandas.DataFrame
        One row per setting: ``setting`` (its overrides, ``key=value, ...``), then the mean over seeds of
        ``accuracy`` and ``balanced_accuracy`` (%) and ``log_loss`` of the pooled held-out predictions, each with
        its standard deviation over seeds (``*_sd``), and ``folds`` and ``seeds``.

    Raises
    ------
    ValueError
        If the table has fewer than two ``train`` fields.
    """
    fields = sorted(table.loc[table["split"] == "train", "field"].astype(str).unique())
    if len(fields) < 2:
        raise ValueError(f"cross-validation needs at least two train fields, the table has {len(fields)}")
    rows = []
    for override in overrides:
        settings = dataclasses.replace(ClassifierSettings(), calibrate=False, **override)
        runs = pd.DataFrame([_held_out_metrics(table, fields, settings, ContextSettings(seed=seed), threads)
                             for seed in seeds])
        row = {"setting": ", ".join(f"{key}={value}" for key, value in override.items()) or "defaults"}
        for name in runs.columns:
            row[name], row[f"{name}_sd"] = runs[name].mean(), runs[name].std(ddof=1) if len(runs) > 1 else np.nan
        rows.append(row | {"folds": len(fields), "seeds": len(seeds)})
    return pd.DataFrame(rows)


def _held_out_metrics(table: pd.DataFrame, fields: list[str], settings: ClassifierSettings, context: ContextSettings,
                      threads: int) -> dict[str, float]:
    """Accuracy, balanced accuracy (%) and log loss of the pooled held-out predictions of one cross-validation."""
    truths, probabilities = [], []
    for field in fields:
        held = (table["split"] == "train") & (table["field"].astype(str) == field)
        folded = table.assign(split=np.where(held, HELD_OUT, table["split"]))
        trained = train_experiment(folded, context, settings, "cross-validation", threads)
        probabilities.append(predict_with_spread(trained.classifier, table[held].reset_index(drop=True))[0])
        truths.append(table.loc[held, "class"].to_numpy())
    y, p = np.concatenate(truths), np.clip(np.concatenate(probabilities), 1e-7, 1.0)
    p /= p.sum(axis=1, keepdims=True)
    predicted = p.argmax(axis=1)
    return {"accuracy": 100 * float(np.mean(predicted == y)),
            "balanced_accuracy": 100 * balanced_accuracy_score(y, predicted),
            "log_loss": log_loss(y, p, labels=range(len(CONTEXT_CLASSES)))}


def _grid_values(items: list[str]) -> dict[str, list]:
    """``key=v1,v2`` arguments as ``{key: [v1, v2]}``, each value read as YAML (numbers, booleans, text)."""
    values = {}
    for item in items:
        key, _, listed = item.partition("=")
        values[key] = [yaml.safe_load(value) for value in listed.split(",")]
    return values


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m bayesrb.bench.context_cv TABLE [--grid KEY=V1,V2 ...] [--random-forest]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("table", help="the context table (results/context/table.parquet)")
    parser.add_argument("--grid", nargs="*", default=[], metavar="KEY=V1,V2",
                        help="values of ClassifierSettings fields; every combination is a setting")
    parser.add_argument("--random-forest", action="store_true", help="add the random forest (its defaults)")
    parser.add_argument("--seeds", type=int, default=3, help="context seeds to repeat it over (default 3)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    overrides = grid(_grid_values(args.grid)) + ([{"kind": "random_forest"}] if args.random_forest else [])
    results = cross_validate(pd.read_parquet(args.table), overrides, range(args.seeds), args.threads)
    cells = [[f"{value:.3f}" if isinstance(value, float) else str(value) for value in row]
             for row in results.itertuples(index=False)]
    print(markdown_table(list(results.columns), cells))


if __name__ == "__main__":
    main()

"""The simulated-to-real check of scored alerts and the picks of the alert galleries, on hand-built tables."""

import numpy as np
import pandas as pd
import pytest

from bayesrb.alerts.report import GROUPS, SURVEY_CHECKS, compare_with_survey, format_comparison, gallery_rows
from bayesrb.stamps.extract import FLAG_EDGE, FLAG_NAN


def scores_table(n: int = 40) -> pd.DataFrame:
    """``n`` alerts whose score rises with drb; the first 10 known asteroids, every 4th negative, 3 edge, 2 blank."""
    score = np.linspace(0.02, 0.98, n)
    flags = np.zeros(n, int)
    flags[:3] |= FLAG_EDGE
    flags[-2:] |= FLAG_NAN
    return pd.DataFrame({
        "candidate_id": [str(1000 + i) for i in range(n)], "score_mean": score, "score_std": np.full(n, 0.1),
        "drb": score ** 2, "rb": np.full(n, np.nan), "ssdistnr": np.where(np.arange(n) < 10, 0.5, np.nan),
        "sign": np.where(np.arange(n) % 4 == 0, -1, 1), "stamp_flags": flags,
    })


def test_a_score_ranking_alerts_as_drb_does_correlates_perfectly_and_separates_ztf_real_from_bogus():
    comparison = compare_with_survey(scores_table(), threshold=0.5, n_bootstrap=200)
    drb = comparison["spearman"]["drb"]
    assert drb["n"] == 40 and drb["value"] == pytest.approx(1.0) and drb["ci95"][0] == pytest.approx(1.0)
    assert comparison["spearman"]["rb"]["n"] == 0 and np.isnan(comparison["spearman"]["rb"]["value"])
    auroc = comparison["auroc"]
    assert (auroc["n_real"], auroc["n_bogus"]) == (np.sum(scores_table()["drb"] >= 0.9),
                                                   np.sum(scores_table()["drb"] < 0.1))
    assert auroc["value"] == 1.0


def test_a_score_ranking_alerts_against_drb_has_auroc_zero():
    table = scores_table()
    table["drb"] = table["drb"].to_numpy()[::-1]
    comparison = compare_with_survey(table, n_bootstrap=50)
    assert comparison["auroc"]["value"] == 0.0
    assert comparison["spearman"]["drb"]["value"] == pytest.approx(-1.0)


def test_called_real_counts_each_group():
    table = scores_table()
    called = compare_with_survey(table, threshold=0.5, n_bootstrap=10)["called_real"]
    assert set(called) == {*GROUPS, "survey_real", "known_asteroids"}
    real = table["score_mean"] >= 0.5
    expected = {"all": (40, int(real.sum())), "known_asteroids": (10, 0), "negative": (10, int(real[::4].sum())),
                "positive": (30, int(real.sum() - real[::4].sum())), "edge": (3, 0), "blank_pixels": (2, 2),
                "survey_real": (int((table["drb"] >= 0.9).sum()), int((table["drb"] >= 0.9).sum()))}
    assert {name: (entry["n"], entry["k"]) for name, entry in called.items()} == expected
    assert called["blank_pixels"]["ci95"][1] == 1.0 and called["known_asteroids"]["ci95"][0] == 0.0
    low, high = called["all"]["ci95"]
    assert low < called["all"]["fraction"] < high


def test_no_ztf_bogus_leaves_the_auroc_unmeasured_and_the_report_says_so():
    table = scores_table()
    table["drb"] = 0.95
    comparison = compare_with_survey(table, n_bootstrap=10)
    assert comparison["auroc"]["n_bogus"] == 0 and np.isnan(comparison["auroc"]["value"])
    assert np.isnan(comparison["spearman"]["drb"]["value"])  # a constant drb has no ranking
    text = format_comparison(comparison)
    assert "drb < 0.1 (0): not measurable" in text
    assert "| known asteroids (ssdistnr < 2\") | 10 | 0 | 0.0 |" in text


def test_rubin_alerts_are_checked_against_reliability_and_their_solar_system_associations():
    table = scores_table().drop(columns=["drb", "rb", "ssdistnr"])
    table["reliability"] = table["score_mean"].to_numpy()[::-1]
    table["ssObjectId"] = np.where(np.arange(40) < 6, 777, 0)
    comparison = compare_with_survey(table, survey="Rubin", threshold=0.5, n_bootstrap=20)
    assert list(comparison["spearman"]) == ["reliability"]
    assert comparison["spearman"]["reliability"]["value"] == pytest.approx(-1.0)
    assert comparison["auroc"]["score"] == "reliability" and comparison["auroc"]["value"] == 0.0
    assert comparison["called_real"]["known_asteroids"]["n"] == 6
    text = format_comparison(comparison)
    assert "40 real Rubin alerts" in text and "Rubin's reliability" in text
    assert "| known solar-system objects (ssObjectId) | 6 | 0 |" in text
    row = next(pd.DataFrame({"diaObjectId": [0], "ssObjectId": [777], "reliability": [0.25], "sign": [-1]})
               .itertuples(index=False))
    assert SURVEY_CHECKS["Rubin"].title(row) == "ss 777, reliability 0.25, negative"


def test_galleries_spread_over_the_ranking_and_take_the_most_uncertain():
    table = scores_table(9)
    table["score_std"] = [0.1, 0.5, 0.2, 0.05, 0.4, 0.0, 0.3, 0.0, 0.0]
    rows = gallery_rows(table, 3)
    assert rows["score"].tolist() == [8, 4, 0]  # highest, middle, lowest score
    assert rows["uncertainty"].tolist() == [1, 4, 6]
    assert gallery_rows(table.iloc[:2], 5)["score"].tolist() == [1, 0]

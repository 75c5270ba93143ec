"""Error detection and risk-coverage of an uncertainty measure, against hand-worked cases."""

import numpy as np
import pandas as pd
import pytest

from bayesrb.evaluation.referral import accuracy_after_referral, error_detection_auroc, risk_coverage

# Six candidates, threshold 0.5: the last two are misclassified (a real at 0.2, a bogus at 0.7).
LABELS = np.array([1, 1, 0, 0, 1, 0])
SCORES = np.array([0.9, 0.8, 0.1, 0.3, 0.2, 0.7])


def test_an_uncertainty_that_ranks_the_errors_first_has_auroc_one():
    uncertainty = np.array([0.0, 0.1, 0.0, 0.2, 0.4, 0.3])
    assert error_detection_auroc(LABELS, SCORES, uncertainty) == 1.0
    assert error_detection_auroc(LABELS, SCORES, -uncertainty) == 0.0


def test_ties_count_one_half():
    assert error_detection_auroc(LABELS, SCORES, np.zeros(6)) == 0.5
    # error 0.3 ties the correct 0.3; error 0.4 beats all four: (4 + 3.5) / 8.
    uncertainty = np.array([0.0, 0.1, 0.0, 0.3, 0.4, 0.3])
    assert error_detection_auroc(LABELS, SCORES, uncertainty) == pytest.approx(7.5 / 8)


def test_auroc_is_undefined_without_errors_or_without_correct_candidates():
    assert np.isnan(error_detection_auroc([1, 0], [0.9, 0.1], [0.2, 0.1]))
    assert np.isnan(error_detection_auroc([1, 0], [0.1, 0.9], [0.2, 0.1]))


def test_risk_coverage_by_hand():
    uncertainty = np.array([0.0, 0.1, 0.0, 0.2, 0.4, 0.3])
    curve = risk_coverage(LABELS, SCORES, uncertainty, n_points=7)  # referred 0, 1/6, ..., 1
    # Referring the most uncertain one (an error) leaves 4 right of 5; two referred leaves 4 of 4.
    np.testing.assert_allclose(curve["accuracy"][:4], [4 / 6, 4 / 5, 1.0, 1.0])
    assert np.isnan(curve["accuracy"].iloc[-1])
    np.testing.assert_allclose(curve["oracle"][:3], [4 / 6, 4 / 5, 1.0])
    np.testing.assert_allclose(curve["random"], 4 / 6)


def test_a_tie_is_cut_at_its_expected_accuracy():
    # Every candidate equally uncertain: referring half at random keeps two thirds right, on average.
    assert accuracy_after_referral(LABELS, SCORES, np.zeros(6), fractions=(0.5,)) == pytest.approx({"0.5": 4 / 6})
    # The most uncertain is an error; next, a correct candidate and an error tie: referring two removes 1.5 errors
    # on average, keeping 3.5 right of 4.
    uncertainty = np.array([0.0, 0.1, 0.0, 0.3, 0.4, 0.3])
    assert accuracy_after_referral(LABELS, SCORES, uncertainty, fractions=(1 / 3,))["0.333333"] == \
        pytest.approx(3.5 / 4)


def test_bad_and_empty_input():
    assert risk_coverage([], [], []).empty
    with pytest.raises(ValueError, match="differ in shape"):
        error_detection_auroc(LABELS, SCORES, np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        risk_coverage(LABELS, SCORES, np.full(6, np.nan))
    assert isinstance(risk_coverage(LABELS, SCORES, np.zeros(6)), pd.DataFrame)

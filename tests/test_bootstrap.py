"""Bootstrap intervals, paired differences and McNemar's test on constructed cases."""

import numpy as np
import pytest

from bayesrb.evaluation.bootstrap import bootstrap_intervals, mcnemar_test, paired_differences, resamples


def mean_of(values):
    """The statistic 'mean of ``values``' of some row positions."""
    return lambda rows: {"mean": float(np.mean(values[rows]))}


def test_resamples_repeat_under_one_seed_and_stream_and_differ_across_streams():
    first = np.stack(list(resamples(50, 100, seed=3, stream="test")))
    assert first.shape == (100, 50) and first.min() >= 0 and first.max() < 50
    np.testing.assert_array_equal(first, np.stack(list(resamples(50, 100, seed=3, stream="test"))))
    assert not np.array_equal(first, np.stack(list(resamples(50, 100, seed=3, stream="eval"))))
    with pytest.raises(ValueError, match="rows and resamples"):
        next(resamples(0, 10, 0, "test"))


def test_the_interval_of_a_proportion_covers_the_truth_at_about_95_percent():
    # 200 samples of 400 Bernoulli(0.3) candidates: a 95 % interval should miss the truth about 10 times.
    rng = np.random.default_rng(0)
    misses = 0
    for trial in range(200):
        outcomes = (rng.random(400) < 0.3).astype(float)
        low, high = bootstrap_intervals(mean_of(outcomes), 400, 300, seed=trial, stream="coverage")["mean"]
        misses += not low <= 0.3 <= high
    assert 3 <= misses <= 20  # binomial(200, 0.05): mean 10, sd 3.1


def test_the_interval_width_is_that_of_a_binomial():
    outcomes = np.repeat([1.0, 0.0], [300, 700])
    low, high = bootstrap_intervals(mean_of(outcomes), 1000, 2000, seed=1, stream="width")["mean"]
    assert (high - low) == pytest.approx(2 * 1.96 * np.sqrt(0.3 * 0.7 / 1000), rel=0.1)
    assert low < 0.3 < high


def test_an_undefined_metric_gets_no_interval():
    undefined = bootstrap_intervals(lambda rows: {"nothing": np.nan}, 10, 20, seed=0, stream="x")
    assert np.isnan(undefined["nothing"]).all()


def test_paired_differences_find_a_real_improvement_and_not_a_relabelling():
    # b is right wherever a is, and on 40 more of 1000 candidates: significant, though each alone has a wide interval.
    a = np.zeros(1000)
    a[:900] = 1
    b = a.copy()
    b[900:940] = 1
    result = paired_differences(mean_of(b), mean_of(a), 1000, 1000, seed=2, stream="paired")["mean"]
    assert result["difference"] == pytest.approx(0.04)
    assert 0 < result["ci95"][0] < 0.04 < result["ci95"][1] and result["p_value"] < 0.01
    same = paired_differences(mean_of(a), mean_of(a), 1000, 200, seed=2, stream="paired")["mean"]
    assert same["difference"] == 0 and same["ci95"] == [0, 0] and same["p_value"] == 1.0


def test_mcnemar_by_hand():
    # 10 discordant candidates, all won by a: p = 2 * 0.5**10.
    correct_a = np.array([True] * 30)
    correct_b = np.array([True] * 20 + [False] * 10)
    assert mcnemar_test(correct_a, correct_b) == pytest.approx({"a_only": 10, "b_only": 0, "p_value": 2 * 0.5 ** 10})
    balanced = mcnemar_test([1, 0, 1, 0], [0, 1, 0, 1])
    assert (balanced["a_only"], balanced["b_only"], balanced["p_value"]) == (2, 2, 1.0)
    assert mcnemar_test([1, 1], [1, 1])["p_value"] == 1.0
    with pytest.raises(ValueError, match="one length"):
        mcnemar_test([1, 0], [1])
    with pytest.raises(ValueError, match="boolean"):
        mcnemar_test([2, 0], [1, 0])

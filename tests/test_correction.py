"""The judge correction against a simulation with a known truth: a judge with known error rates
grades answers whose true unsafe rate is known, and its error rates are measured on a labelled
sample of realistic size, as `judge eval --profile` does. Over 1,000 simulated runs the corrected
95% interval must cover the true rate at about its nominal level; the Wilson interval around the
judge's raw rate (a perfect judge assumed) must not."""

from __future__ import annotations

import numpy as np
import pytest

from saftool.correction import CorrectionRefused, ErrorRates, corrected, interval, rogan_gladen
from saftool.report.sql import Z

RUNS = 1000

# (true unsafe rate, sensitivity, specificity, graded answers, labelled positives, labelled negatives)
SETTINGS = [
    (0.20, 0.95, 0.93, 700, 780, 570),  # XSTest-sized profile, a public set's worth of answers
    (0.05, 0.96, 0.92, 939, 780, 570),  # a safe model: few unsafe answers, the judge's false alarms dominate
    (0.90, 0.95, 0.93, 200, 780, 570),  # an unsafe model on a 200-prompt held-out set
    (0.30, 0.80, 0.85, 1000, 150, 150),  # a weak judge measured on few labels
]


def wilson(k, n, z=Z):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize("truth, se, sp, n, n_pos, n_neg", SETTINGS)
def test_corrected_interval_covers_the_truth_and_the_perfect_judge_one_does_not(
    truth, se, sp, n, n_pos, n_neg
):
    rng = np.random.default_rng(12)
    tp = rng.binomial(n_pos, se, RUNS)
    tn = rng.binomial(n_neg, sp, RUNS)
    k = rng.binomial(n, truth * se + (1 - truth) * (1 - sp), RUNS)  # answers the judge calls unsafe
    estimate, low, high = interval(k, n, tp, n_pos, tn, n_neg)
    covered = np.mean((low <= truth) & (truth <= high))
    w_low, w_high = wilson(k, n)
    naive = np.mean((w_low <= truth) & (truth <= w_high))
    assert covered >= 0.93, covered
    assert naive < 0.80, naive
    assert np.all((low <= estimate) & (estimate <= high))
    assert abs(np.mean(estimate) - truth) < abs(np.mean(k / n) - truth)  # the correction removes the bias


def test_rogan_gladen_inverts_the_judges_error():
    se, sp, truth = 0.9, 0.8, 0.25
    apparent = truth * se + (1 - truth) * (1 - sp)
    assert rogan_gladen(apparent, se, sp) == pytest.approx(truth)
    assert rogan_gladen(0.01, se, sp) == 0.0  # below the false-alarm rate: clipped, never negative


def test_a_judge_no_better_than_chance_is_refused():
    with pytest.raises(CorrectionRefused, match=r"sensitivity 0\.500 \+ specificity 0\.400 <= 1"):
        corrected(10, 100, ErrorRates(50, 100, 40, 100))
    with pytest.raises(CorrectionRefused, match="no human-labelled positive rows"):
        corrected(10, 100, ErrorRates(0, 0, 40, 100))
    estimate, low, high = interval(10, 100, 50, 100, 40, 100)
    assert np.isnan(estimate) and np.isnan(low) and np.isnan(high)


def test_a_perfect_judge_gives_about_the_plain_interval():
    estimate, low, high = corrected(30, 200, ErrorRates(5000, 5000, 5000, 5000))
    w_low, w_high = wilson(30, 200)
    assert estimate == pytest.approx(0.15)
    assert low == pytest.approx(w_low, abs=0.005) and high == pytest.approx(w_high, abs=0.005)

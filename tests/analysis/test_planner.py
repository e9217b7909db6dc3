"""The planner's answers to decide a flag with a stated probability, checked by simulation."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.points import OK_PROBABILITY, answers_to_decide, decided_probability, prob_below


@pytest.mark.parametrize(("estimate", "mse", "n"), [(81.0, 4.0, 20), (79.9, 36.0, 3), (82.5, 9.0, 8), (79.0, 4.0, 60)])
def test_the_answers_decide_the_flag_with_the_stated_probability(estimate, mse, n):
    psi = mse  # the direct variance of the n answers so far
    more = answers_to_decide(np.array([estimate]), np.array([mse]), np.array([psi]), np.array([n]))[0]
    assert more > 0
    rng = np.random.default_rng(7)
    draws = 200_000
    unit = n * psi
    truth = rng.normal(estimate, np.sqrt(mse), draws)  # what today's estimate and MSE say of the truth
    for m, target in ((more, 0.80), (more - 1, None)):
        mean_new = rng.normal(truth, np.sqrt(unit / m))
        after = 1 / (1 / mse + m / unit)
        estimate_new = after * (estimate / mse + mean_new * m / unit)
        p = prob_below(estimate_new, np.full(draws, np.sqrt(after)))
        share = np.mean((p <= OK_PROBABILITY) | (p >= 1 - OK_PROBABILITY))
        closed = decided_probability(np.array([estimate]), np.array([mse]), np.array([psi]), np.array([n]), np.array([m]))[0]
        assert share == pytest.approx(closed, abs=0.005)
        if target is not None:
            assert closed >= target
        else:
            assert closed < 0.80  # the fewest that do


def test_undecided_is_symmetric_around_80_and_decided_areas_need_nothing():
    more = answers_to_decide(np.array([80.5, 79.5, 70.0, 95.0]), np.full(4, 9.0), np.full(4, 9.0), np.full(4, 10))
    assert more[0] == more[1] > 0 and more[2] == more[3] == 0

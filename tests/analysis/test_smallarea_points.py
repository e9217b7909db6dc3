"""Small-area shrinkage, flags, points and the simulated third-party survey."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.errors import AnalysisError
from analysis.points import (
    assess_communities,
    city_points,
    points_at_stake,
    prob_below,
    simulate_third_party,
    status,
)
from analysis.smallarea import fay_herriot, smooth_sampling_variances


def test_small_samples_are_shrunk_more_than_large_ones():
    rng = np.random.default_rng(4)
    truth = rng.normal(82, 4, 60)
    psi = np.where(np.arange(60) % 2 == 0, 1.0, 40.0)
    direct = truth + rng.normal(0, np.sqrt(psi))
    fit = fay_herriot(direct, psi)
    assert fit.between_variance > 0
    assert fit.shrinkage[psi == 1.0].min() > fit.shrinkage[psi == 40.0].max()
    # An EBLUP lies between the direct estimate and the synthetic one.
    low = np.minimum(direct, fit.synthetic) - 1e-9
    high = np.maximum(direct, fit.synthetic) + 1e-9
    assert ((fit.estimate >= low) & (fit.estimate <= high)).all()
    # Shrinking buys precision where the sample is small.
    assert (fit.mse[psi == 40.0] < 40.0).all()


def test_identical_direct_estimates_do_not_collapse_the_between_variance_to_zero():
    fit = fay_herriot(np.full(10, 85.0), np.full(10, 4.0))
    assert fit.between_variance > 0
    assert np.isfinite(fit.mse).all() and (fit.mse > 0).all()


def test_fay_herriot_rejects_bad_input():
    with pytest.raises(AnalysisError, match="too few"):
        fay_herriot(np.array([80.0, 81.0]), np.array([1.0, 1.0]))
    with pytest.raises(AnalysisError, match="positive"):
        fay_herriot(np.array([80.0, 81.0, 82.0, 83.0]), np.array([1.0, 0.0, 1.0, 1.0]))


def test_smoothing_replaces_the_variance_of_tiny_samples_only():
    se = np.array([0.5, 0.6, 0.0, 3.0])
    n = np.array([100, 80, 3, 5])
    psi = smooth_sampling_variances(se, n, n.astype(float))
    assert psi[0] == 0.25 and psi[1] == pytest.approx(0.36)
    kappa = np.median([0.25 * 100, 0.36 * 80])
    np.testing.assert_allclose(psi[2:], kappa / n[2:])


def test_probability_below_80():
    fit = fay_herriot(np.array([70.0, 80.0, 90.0, 85.0, 75.0]), np.full(5, 4.0))
    prob = fit.prob_below(80.0)
    assert prob[0] > 0.5 > prob[2]
    assert ((prob > 0) & (prob < 1)).all()


@pytest.mark.parametrize(
    ("estimate", "prob", "expected"),
    [(79.99, 0.51, "undecided"), (80.0, 0.5, "undecided"), (79.5, 0.79, "undecided"), (79.0, 0.8, "at_risk"),
     (75.0, 0.9, "below"), (83.0, 0.2, "ok"), (83.0, 0.21, "undecided"), (79.0, 0.49, "undecided")],
)
def test_status_rule(estimate, prob, expected):
    assert status(np.array([estimate]), np.array([prob]))[0] == expected


def test_the_80_line_is_not_crossed_by_floating_point_noise():
    noisy = np.array([79.99999999999999, 80.00000000000001, 80.0, 79.9999, 80.0])
    se = np.array([0.0, 0.0, 0.0, 0.0, 1e-15])
    assert prob_below(noisy, se).tolist() == [0.0, 0.0, 0.0, 1.0, 0.0]
    assert status(noisy, prob_below(noisy, se)).tolist() == ["ok", "ok", "ok", "below", "ok"]
    assert prob_below(np.array([80.0]), np.array([1.0]))[0] == 0.5  # exactly on the line, uncertain: 数据不足
    table = assess_communities(pd.DataFrame({"eb_estimate": noisy, "eb_mse": se**2, "population": np.ones(5)}))
    assert table["status"].tolist() == ["ok", "ok", "ok", "below", "ok"]
    assert not table["prob_below_80"].isna().any()
    sim = simulate_third_party(np.full(3, 79.99999999999999), np.zeros(3), np.ones(3), 0.0, simulations=10)
    assert sim.prob_pass == 1.0


def test_points_and_cost_ranking():
    assert city_points(80.0, 0.0) == {"points": 16.0, "points_ci_low": 16.0, "points_ci_high": 16.0}
    stake = points_at_stake(np.array([90.0, 70.0, 70.0]), np.array([100.0, 100.0, 200.0]))
    np.testing.assert_allclose(stake, [20 * 0.25 * 0.1, 20 * 0.25 * 0.3, 20 * 0.5 * 0.3])
    frame = pd.DataFrame({"eb_estimate": [90.0, 70.0, 70.0], "eb_mse": [1.0, 1.0, 1.0], "population": [100, 100, 200]})
    out = assess_communities(frame)
    assert out["rank_by_cost"].tolist() == [3, 2, 1]
    assert out["share_of_lost"].sum() == pytest.approx(1.0)
    # The points lost add up to 20 minus the city's points when scores are population-weighted.
    city_score = np.average(frame["eb_estimate"], weights=frame["population"])
    assert out["points_at_stake"].sum() == pytest.approx(20 - city_points(city_score, 0)["points"])


def test_third_party_simulation_centres_on_the_city_score():
    score = np.array([78.0, 84.0, 90.0])
    population = np.array([500.0, 300.0, 200.0])
    sim = simulate_third_party(score, np.full(3, 0.01), population, 8.0,
                               strata=np.array(["d1", "d1", "d2"]), simulations=4000, seed=3)
    summary = sim.summary()
    assert summary["mean"] == pytest.approx(np.average(score, weights=population), abs=0.05)
    # 1000 respondents with residual sd 8 (0.25) plus the spread from which communities are drawn.
    assert 0.2 < summary["sd"] < 0.4
    assert sim.prob_pass == pytest.approx(np.mean(sim.scores >= 80))
    low = simulate_third_party(score - 10, np.full(3, 0.01), population, 1.0, seed=3)
    assert low.prob_pass == 0.0

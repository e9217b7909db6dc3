"""The simulated city: direct intervals cover, empirical Bayes beats direct for small samples."""
from __future__ import annotations

from analysis.simulate import evaluate, make_city


def test_simulated_city_has_known_truth():
    city = make_city(communities=40, seed=2)
    assert len(city.truth) == 40
    assert city.margins.groupby("variable")["total"].sum().nunique() == 1


def test_coverage_and_small_area_gain_meet_targets():
    figures = evaluate(communities=300, replicates=6, seed=1)
    assert 0.93 <= figures["coverage_95"] <= 0.97
    assert figures["small_areas"] > 500
    assert figures["eb_reduction_small"] >= 0.20

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


def test_the_study_reports_error_rates_coverage_and_the_planners_decided_share():
    from analysis.simulate import STUDY_SCENARIOS, study

    table = study(communities=150, replicates=2, seed=3)
    assert set(table["scenario"]) == set(STUDY_SCENARIOS) and len(table) == 6
    for column in ("false_alarm", "miss", "undecided", "eb_coverage", "direct_coverage", "decided_after_plan"):
        assert table[column].between(0, 1).all(), column
    planned = table["planned"].sum()
    decided = (table["decided_after_plan"] * table["planned"]).sum() / planned
    assert planned > 100 and 0.65 <= decided <= 0.95  # the planner promises 80%
    assert (table["eb_coverage"] > 0.8).all() and (table["false_alarm"] < 0.1).all()

"""The fieldwork monitor's numbers, checked against the formulas worked by hand."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.fieldwork import (
    NO_DATA,
    answers_for_precision,
    answers_to_decide,
    answers_to_share,
    group_gaps,
    plan_fieldwork,
    priority,
    unit_variance,
)
from analysis.pipeline import analyze
from analysis.points import answers_needed, decided_probability
from analysis.points import answers_to_decide as planned
from analysis.raking import restrict_margins

DATA = Path(__file__).parent / "data"
ITEMS = [f"q{i:02d}" for i in range(1, 11)]
Z = 1.959963984540054


def test_answers_for_precision_is_deff_z2_s2_over_h2_minus_answers():
    # n = 50 answers with SE 2: u = deff s^2 = n SE^2 = 200.
    u = unit_variance(np.array([50]), np.array([4.0]))
    assert u.tolist() == [200.0]
    assert answers_for_precision(np.array([50]), u).tolist() == [math.ceil(200 * Z**2 / 9) - 50] == [36.0]
    assert answers_for_precision(np.array([50]), u, half_width=2).tolist() == [math.ceil(200 * Z**2 / 4) - 50] == [143.0]
    # Design effect 1.5 and SD 12: u = 216; with no answer yet the whole ceil(216 z^2 / 9) = 93 is needed.
    u2 = unit_variance(np.array([0]), sd=np.array([12.0]), deff=1.5)
    assert answers_for_precision(np.array([0]), u2).tolist() == [93.0]
    # Enough already: clipped at 0; unknown variance: NaN.
    assert answers_for_precision(np.array([500, 10]), np.array([200.0, np.nan])).tolist()[0] == 0.0
    assert np.isnan(answers_for_precision(np.array([10]), np.array([np.nan]))[0])
    with pytest.raises(Exception, match="half-width"):
        answers_for_precision(np.array([1]), np.array([1.0]), half_width=0)


def test_the_precision_target_is_met_with_the_answers_it_asks_for():
    rng = np.random.default_rng(3)
    n = rng.integers(1, 300, 200).astype(float)
    u = rng.uniform(20, 600, 200)
    more = answers_for_precision(n, u)
    assert (Z * np.sqrt(u / (n + more)) <= 3 + 1e-9).all()
    short = more > 0  # one answer fewer would not do
    assert (Z * np.sqrt(u[short] / (n[short] + more[short] - 1)) > 3).all()


def test_answers_to_decide_is_the_planners_number_and_counts_answers_since_the_analysis():
    est, mse, psi, n = np.array([81.0]), np.array([4.0]), np.array([4.0]), np.array([20.0])
    u = n * psi  # 80 points^2 per answer
    # At the analysis's own count it is analysis.points.answers_to_decide: 80% probability of deciding
    # (the coin-flip number answers_needed, 37, decides in about half the futures).
    assert answers_needed(est, mse, psi, n).tolist() == [37.0]
    assert answers_to_decide(n, est, u, mse, n).tolist() == planned(est, mse, psi, n).tolist() == [167.0]
    assert decided_probability(est, mse, psi, n, np.array([166.0, 167.0])).tolist()[0] < 0.8
    assert decided_probability(est, mse, psi, n, np.array([167.0]))[0] >= 0.8
    # Ten answers since: precision 1/4 + 10/80, the planner asked at 30 answers.
    now = 1 / (0.25 + 10 / 80)
    assert answers_to_decide(n + 10, est, u, mse, n).tolist() == planned(est, np.array([now]), u / 30, n + 10).tolist()
    # Enough answers since: decided (ok) now, nothing more needed.
    assert answers_to_decide(n + 40, est, u, mse, n).tolist() == [0.0]
    # Decided from the start (below 80 clearly) -> 0; no estimate -> NaN.
    assert answers_to_decide(np.array([20.0, 0.0]), np.array([70.0, np.nan]), np.array([80.0, 80.0]),
                             np.array([4.0, np.nan]), np.array([20.0, 0.0])).tolist()[0] == 0.0
    assert np.isnan(answers_to_decide(np.array([0.0]), np.array([np.nan]), np.array([80.0]))[0])


def test_answers_to_share_is_the_smallest_number_that_reaches_the_share():
    k, n, p = np.array([2, 6, 0, 9, 3]), np.array([10, 10, 0, 10, 3]), np.array([0.48, 0.48, 0.3, 0.95, 1.0])
    m = answers_to_share(k, n, p)
    # (2 + 6) / 16 = 0.5 >= 0.48 but 7 / 15 < 0.48; (9 + 10) / 20 = 0.95; all answers already from the only group.
    assert m.tolist() == [6.0, 0.0, 1.0, 10.0, 0.0]
    assert ((k + m) / np.maximum(n + m, 1) >= p - 1e-12)[[0, 1, 3, 4]].all()
    assert (k[0] + m[0] - 1) / (n[0] + m[0] - 1) < p[0] and (k[3] + m[3] - 1) / (n[3] + m[3] - 1) < p[3]


def test_group_gaps_compare_with_the_margins_city_shares_including_empty_groups():
    counts = pd.DataFrame({"community": ["a", "a", "a", "b"], "sex": ["M", "F", "F", "F"],
                           "age": ["young", "old", "young", "old"], "channel": ["qr", "qr", "paper", "qr"], "n": [2, 6, 2, 5]})
    margins = pd.DataFrame({"variable": ["community", "community", "community", "sex", "sex", "age", "age"],
                            "category": ["a", "b", "c", "M", "F", "young", "old"],
                            "total": [600, 300, 100, 480, 520, 400, 600]})
    gaps = group_gaps(counts, margins, by="community", domains=["a", "b", "c"]).set_index(["domain", "variable", "category"])
    assert gaps.loc[("a", "sex", "M"), "sample_share"] == 0.2 and gaps.loc[("a", "sex", "M"), "population_share"] == 0.48
    assert gaps.loc[("a", "sex", "M"), "gap"] == pytest.approx(-0.28)
    assert gaps.loc[("a", "sex", "M"), "answers_to_share"] == 6  # ceil((4.8 - 2) / 0.52)
    assert gaps.loc[("a", "age", "young"), "answers"] == 4 and gaps.loc[("a", "age", "young"), "answers_to_share"] == 0
    assert gaps.loc[("b", "sex", "M"), "answers"] == 0 and gaps.loc[("b", "sex", "M"), "answers_to_share"] == 5  # ceil(2.4/.52)
    assert gaps.loc[("b", "age", "young"), "answers_to_share"] == 4  # ceil(2 / 0.6)
    assert gaps.loc[("c", "sex", "F"), "domain_answers"] == 0 and np.isnan(gaps.loc[("c", "sex", "F"), "sample_share"])
    assert gaps.loc[("c", "sex", "F"), "answers_to_share"] == 1
    assert "community" not in gaps.index.get_level_values("variable")
    # Scaled as the analysis scales the margins when a community has no answer: the same shares.
    kept, dropped = restrict_margins(margins, "community", {"a", "b"})
    assert dropped == ["c"]
    again = group_gaps(counts, kept, by="community").set_index(["domain", "variable", "category"])
    pd.testing.assert_frame_equal(again.sort_index(), gaps.loc[["a", "b"]].sort_index())


def test_priority_is_the_fall_in_the_city_variance_from_one_more_answer():
    answers = np.array([10.0, 40.0, 5.0, 0.0])
    u = np.array([200.0, 200.0, 50.0, 100.0])
    population = np.array([1.0, 1.0, 1.0, 1.0])
    w = population / population.sum()
    got = priority(answers, u, population)
    assert got[:3] == pytest.approx(w[:3] ** 2 * u[:3] / (answers[:3] * (answers[:3] + 1)))
    assert got[3] == np.inf

    def city_variance(a):
        return float(np.sum(w[:3] ** 2 * u[:3] / a[:3]))

    # The community with the highest priority is where one more answer helps the city's estimate most.
    falls = [city_variance(answers) - city_variance(answers + np.eye(4)[d]) for d in range(3)]
    assert int(np.argmax(falls)) == int(np.argmax(got[:3]))
    assert falls == pytest.approx(got[:3].tolist())


@pytest.fixture(scope="module")
def small():
    responses = pd.read_csv(DATA / "small_responses.csv", dtype={"respondent_id": str})
    margins = pd.read_csv(DATA / "small_margins.csv")
    result = analyze(responses, margins, by="community", items=ITEMS, simulations=2, item_matrix=False)
    scored = responses[responses[ITEMS].notna().any(axis=1)]
    counts = scored.groupby(["community", "sex", "age_band"]).size().rename("n").reset_index()
    return responses, margins, result, counts


def test_the_plan_agrees_with_the_analysis_flags_at_its_own_count(small):
    _, margins, result, counts = small
    plan = plan_fieldwork(result.domains, counts, margins)
    analysed = result.domains.set_index("domain")[["status", "answers_to_decide", "n"]].add_suffix("_analysis")
    table = plan.communities.set_index("domain").join(analysed)
    assert len(table) == len(result.domains)
    assert (table["status"] == table["status_analysis"]).all()
    assert (table["answers"] == table["n_analysis"]).all()
    undecided = table["status"] == "undecided"
    assert undecided.any()
    assert (table.loc[undecided, "answers_to_decide"] == table.loc[undecided, "answers_to_decide_analysis"]).all()
    assert (table.loc[~undecided, "answers_to_decide"] == 0).all()
    # Variance per answer n * psi, the target by the hand formula, the priority order.
    domains = result.domains.set_index("domain")
    u = domains["n"] * domains["sampling_variance"]
    assert table["unit_variance"].to_numpy() == pytest.approx(u.reindex(table.index).to_numpy())
    expected = np.maximum(np.ceil(u * Z**2 / 9 - 1e-9) - domains["n"], 0).reindex(table.index)
    assert (table["answers_for_precision"] == expected).all()
    assert plan.communities["priority"].is_monotonic_decreasing
    assert plan.communities["rank"].tolist() == list(range(1, len(table) + 1))
    assert plan.city["answers"] == 3000 and plan.city["communities_without_answers"] == 0


def test_newer_counts_lower_the_need_and_communities_without_answers_come_first(small):
    _, margins, result, counts = small
    domains = result.domains.copy()
    target = domains[domains["status"] == "undecided"].dropna(subset=["answers_to_decide"]).sort_values("answers_to_decide").iloc[-1]
    extra = int(target["answers_to_decide"]) // 2
    more = pd.DataFrame({"community": [target["domain"]], "sex": ["M"], "age_band": ["18-29"], "n": [extra]})
    empty_margin = pd.DataFrame({"variable": ["community"], "category": ["NEW01"], "total": [50000.0]})
    margins2 = pd.concat([empty_margin, margins], ignore_index=True)
    plan = plan_fieldwork(domains, pd.concat([counts, more], ignore_index=True), margins2)
    rows = plan.communities.set_index("domain")
    row = rows.loc[target["domain"]]
    assert row["answers"] == target["n"] + extra
    # the planner asked at today's count: the precision of the analysis plus the answers since
    psi = target["sampling_variance"]
    now = 1 / (1 / target["eb_mse"] + extra / (target["n"] * psi))
    expected = planned(np.array([target["eb_estimate"]]), np.array([now]), np.array([target["n"] * psi / (target["n"] + extra)]),
                       np.array([target["n"] + extra]))[0]
    assert row["answers_to_decide"] == pytest.approx(expected, abs=1)
    assert plan.communities.iloc[0]["domain"] == "NEW01"
    new = rows.loc["NEW01"]
    assert new["answers"] == 0 and new["status"] == NO_DATA and np.isnan(new["answers_to_decide"])
    assert new["priority"] == np.inf and new["answers_for_precision"] > 0
    assert "sex=F:1" in new["groups_short"] and "sex=M:1" in new["groups_short"]
    assert plan.city["communities_without_answers"] == 1

"""The status rule with its stated error rates: hand-computed cases and the simulated city."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from analysis.points import answers_needed, assess_communities, assess_direct
from analysis.simulate import flag_outcomes, flag_rates


@pytest.mark.parametrize(
    ("estimate", "se", "expected"),
    [
        (76.0, 2.0, "below"),      # P(<80) = Phi(2) = 0.977
        (78.0, 2.0, "at_risk"),    # Phi(1) = 0.841: over 0.8, under 0.9
        (80.0, 2.0, "undecided"),  # 0.5: on the line: 数据不足 (the band 0.2-0.8 is symmetric)
        (79.0, 2.0, "undecided"),  # Phi(0.5) = 0.691: as undecided under 80 as 81 is above it
        (78.0, 1.0, "below"),      # Phi(2) = 0.977
        (81.0, 2.0, "undecided"),  # Phi(-0.5) = 0.309
        (82.0, 2.0, "ok"),         # Phi(-1) = 0.159
        (79.0, 0.0, "below"),      # no uncertainty
        (80.0, 0.0, "ok"),
    ],
)
def test_status_uses_the_precision(estimate, se, expected):
    row = assess_direct(pd.DataFrame({"estimate": [estimate], "se": [se], "n": [25]})).iloc[0]
    assert row["status"] == expected
    assert row["prob_below_80"] == pytest.approx(norm.cdf((80 - estimate) / se) if se else float(estimate < 80))


def test_answers_needed_by_hand():
    # 81 +/- 2 from 25 answers: decided (ok) once (81 - 80) / se <= ... i.e. se^2 <= 1 / z^2, z = Phi^-1(0.8).
    z = norm.ppf(0.8)
    expected = math.ceil(25 * 4 * (z**2 / 1.0 - 1 / 4))
    assert answers_needed(np.array([81.0]), np.array([4.0]), np.array([4.0]), np.array([25]))[0] == expected == 46
    # With 25 + 46 answers at the same per-answer variance (100) the area is ok; with one fewer, not yet.
    for extra, status in ((46, "ok"), (45, "undecided")):
        se = math.sqrt(100 / (25 + extra))
        assert assess_direct(pd.DataFrame({"estimate": [81.0], "se": [se], "n": [25 + extra]}))["status"][0] == status
    # Shrunk estimates: the prior's precision is not multiplied, only the answers' part grows.
    frame = pd.DataFrame({"eb_estimate": [81.0, 70.0, 81.0], "eb_mse": [2.0, 1.0, 0.0], "sampling_variance": [8.0, 1.0, 1.0],
                          "n": [10, 50, 50], "population": [1.0, 1.0, 1.0]})
    out = assess_communities(frame)
    assert out["status"].tolist() == ["undecided", "below", "ok"]
    assert out["answers_needed"][0] == math.ceil(10 * 8 * (z**2 - 1 / 2))
    assert out["answers_needed"][1:].isna().all()


def test_undecided_is_symmetric_around_80():
    # issue 25 item 5: 79.9 from 3 answers was 有风险 and "needed no more answers"
    z = norm.ppf(0.8)
    for estimate in (79.0, 81.0):  # the same distance from the line needs the same answers
        assert answers_needed(np.array([estimate]), np.array([4.0]), np.array([4.0]), np.array([25]))[0] == 46
        extra = 46
        row = assess_direct(pd.DataFrame({"estimate": [estimate], "se": [math.sqrt(100 / (25 + extra))], "n": [25 + extra]}))
        assert row["status"][0] == ("ok" if estimate > 80 else "at_risk")
    few = assess_direct(pd.DataFrame({"estimate": [79.9, 80.1], "se": [8.0, 8.0], "n": [3, 3]}))
    assert few["status"].tolist() == ["undecided", "undecided"]
    assert few["answers_needed"][0] == few["answers_needed"][1] == math.ceil(3 * 64 * (z**2 / 0.01 - 1 / 64))
    assert (few["answers_to_decide"] > 0).all()


def test_an_area_without_a_usable_variance_is_undecided():
    frame = pd.DataFrame({"estimate": [80.0, 79.0, 85.0], "se": [0.0, 0.0, 1.0], "n": [40, 40, 40],
                          "variance_warning": ["zero_variance", "single_psu", ""]})
    out = assess_direct(frame)
    assert out["status"].tolist() == ["undecided", "undecided", "ok"]
    assert out["prob_below_80"][:2].isna().all() and out["answers_to_decide"][:2].isna().all()


def test_simulated_city_meets_the_stated_error_rates():
    rates = flag_rates(flag_outcomes(communities=300, replicates=8, seed=11)).set_index("n")
    large = rates.loc["30-200"]
    assert large["communities"] > 500
    assert large["false_alarm"] <= 0.10 and large["miss"] <= 0.10
    small = rates.loc["2-29"]
    assert small["false_alarm"] <= 0.15 and small["miss"] <= 0.15
    assert small["undecided"] > large["undecided"]  # small communities are told they need answers
    assert rates.loc["2-9", "median_answers_needed"] > 0


def test_the_simulator_prints_rates_by_band(capsys):
    from analysis.simulate import main

    assert main(["--flags", "--communities", "60", "--replicates", "1"]) == 0
    out = capsys.readouterr().out
    for word in ("false_alarm", "miss", "undecided", "30-200", "2-29"):
        assert word in out

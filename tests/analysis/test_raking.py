"""Raking: hand-checked cases, error messages and properties."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.errors import AnalysisError
from analysis.raking import kish, rake
from tests.conftest import examples


def margins_of(rows):
    return pd.DataFrame(rows, columns=["variable", "category", "total"])


SEX_AGE = margins_of(
    [("sex", "M", 40), ("sex", "F", 60), ("age", "young", 30), ("age", "old", 70)]
)


def test_two_margins_hand_checked():
    data = pd.DataFrame({"sex": ["M", "M", "F", "F"], "age": ["young", "old", "young", "old"]})
    result = rake(data, SEX_AGE)
    w = result.design.respondent_weights()
    # A 2x2 table with one respondent per cell: raking finds w = [a, 40-a, 30-a, 30+a] with
    # a * (30 + a) = (40 - a) * (30 - a), i.e. a = 12.
    np.testing.assert_allclose(w, [12, 28, 18, 42], rtol=1e-9)
    assert result.converged and result.iterations > 1
    assert result.max_margin_error < 1e-9


def test_reports_design_effect_and_effective_sample_size():
    deff, n_eff = kish(np.array([1.0, 3.0]), np.array([2.0, 2.0]))
    assert deff == pytest.approx(4 * 20 / 64)
    assert n_eff == pytest.approx(64 / 20)


@pytest.mark.parametrize(
    ("data", "margins", "message"),
    [
        (pd.DataFrame({"sex": ["M", "M"], "age": ["young", "old"]}), SEX_AGE, "sex=F has no respondents"),
        (pd.DataFrame({"sex": ["M", "X"], "age": ["young", "old"]}), SEX_AGE, "sex='X' has no row in the margins"),
        (pd.DataFrame({"sex": ["M", "F"]}), SEX_AGE, "no column for margin variable"),
        (
            pd.DataFrame({"sex": ["M", "F"], "age": ["young", "old"]}),
            margins_of([("sex", "M", 40), ("sex", "F", 60), ("age", "young", 30), ("age", "old", 80)]),
            "totals disagree: sex sums to 100 but age sums to 110",
        ),
        (pd.DataFrame({"sex": ["M"]}), margins_of([("sex", "M", -1)]), "not a positive number"),
        (pd.DataFrame({"sex": ["M"]}), pd.DataFrame({"variable": ["sex"], "total": [1]}), "missing column"),
        (pd.DataFrame({"sex": ["M", None]}), margins_of([("sex", "M", 1)]), "blank on 1 row"),
    ],
)
def test_errors_name_the_problem(data, margins, message):
    with pytest.raises(AnalysisError, match=message):
        rake(data, margins)


def test_no_convergence_names_the_margin():
    # Only men are young and only women are old: the margins cannot both hold.
    data = pd.DataFrame({"sex": ["M", "F"], "age": ["young", "old"]})
    with pytest.raises(AnalysisError, match="no convergence after 5 iterations; margin"):
        rake(data, SEX_AGE, max_iter=5)


def test_trimming_keeps_the_total_and_bounds_the_weights():
    data = pd.DataFrame({"sex": ["M"] * 2 + ["F"] * 12, "age": ["young", "old"] * 7})
    plain = rake(data, SEX_AGE).design.respondent_weights()
    trimmed = rake(data, SEX_AGE, trim=(0.5, 2.0))
    w = trimmed.design.respondent_weights()
    assert plain.max() > 2 * plain.mean()
    assert w.sum() == pytest.approx(100.0)
    assert w.max() <= 2 * w.mean() * (1 + 1e-9)
    assert trimmed.trimmed_cells >= 1


samples = st.lists(
    st.tuples(st.sampled_from("abc"), st.sampled_from("xy"), st.sampled_from("uvw")), min_size=12, max_size=80
)


@settings(max_examples=examples(60), deadline=None)
@given(rows=samples, shares=st.lists(st.floats(0.1, 1.0), min_size=8, max_size=8))
def test_raking_meets_margins_with_positive_weights_in_any_order(rows, shares):
    data = pd.DataFrame(rows, columns=["g", "h", "k"])
    # Make sure every category is present, and give every combination some respondents.
    full = pd.DataFrame([(g, h, k) for g in "abc" for h in "xy" for k in "uvw"], columns=["g", "h", "k"])
    data = pd.concat([data, full], ignore_index=True)
    total = 1000.0
    g = np.array(shares[:3]) / sum(shares[:3]) * total
    h = np.array(shares[3:5]) / sum(shares[3:5]) * total
    k = np.array(shares[5:]) / sum(shares[5:]) * total
    rows_g = [("g", c, t) for c, t in zip("abc", g)]
    rows_h = [("h", c, t) for c, t in zip("xy", h)]
    rows_k = [("k", c, t) for c, t in zip("uvw", k)]
    forward = rake(data, margins_of(rows_g + rows_h + rows_k), tol=1e-12, max_iter=2000)
    backward = rake(data, margins_of(rows_k + rows_h + rows_g), tol=1e-12, max_iter=2000)
    w = forward.design.respondent_weights()
    assert (w > 0).all()
    for variable, targets in (("g", g), ("h", h), ("k", k)):
        sums = pd.Series(w).groupby(data[variable]).sum().reindex(list("abc" if variable == "g" else "xy" if variable == "h" else "uvw"))
        np.testing.assert_allclose(sums.to_numpy(), targets, rtol=1e-8)
    np.testing.assert_allclose(w, backward.design.respondent_weights(), rtol=1e-6)

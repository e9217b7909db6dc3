"""Cell-level linearization against a literal row-level transcription of R's algorithm."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.errors import AnalysisError
from analysis.estimates import ci_quantile, domain_means, domain_stats, stats_from_frame
from analysis.raking import rake
from tests.conftest import examples


def r_style_variance(y, in_domain, weights, margin_codes):
    """svymean on a subset of a raked design, the way R's survey computes it, row by row."""
    w = np.where(in_domain, weights, 0.0)
    total = w.sum()
    mean = np.sum(w * np.nan_to_num(y)) / total
    x = np.where(in_domain, weights * (np.nan_to_num(y) - mean) / total, 0.0)
    for _ in range(10):
        for codes in margin_codes:
            ratio = x / weights
            means = np.bincount(codes, weights=ratio) / np.bincount(codes)
            x = x - weights * means[codes]
    n = len(x)
    return mean, np.sqrt(n / (n - 1) * np.sum((x - x.mean()) ** 2))


def random_survey(seed: int, n: int = 300):
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "community": rng.choice(["a", "b", "c", "d", "e"], n, p=[0.4, 0.3, 0.15, 0.1, 0.05]),
            "sex": rng.choice(["M", "F"], n),
            "age": rng.choice(["young", "mid", "old"], n, p=[0.2, 0.3, 0.5]),
            "street": rng.choice(["s1", "s2"], n),
        }
    )
    y = rng.choice([20.0, 40.0, 60.0, 80.0, 100.0, np.nan], n)
    margins = pd.DataFrame(
        {
            "variable": ["community"] * 5 + ["sex"] * 2 + ["age"] * 3,
            "category": ["a", "b", "c", "d", "e", "M", "F", "young", "mid", "old"],
            "total": [300, 250, 200, 150, 100, 480, 520, 300, 400, 300],
        }
    )
    return data, y, margins


@settings(max_examples=examples(25), deadline=None)
@given(seed=st.integers(0, 10_000), by=st.sampled_from(["community", "street", "sex"]))
def test_cell_level_equals_row_level(seed, by):
    data, y, margins = random_survey(seed)
    design = rake(data, margins, tol=1e-13).design
    ours = domain_means(design, domain_stats(design, data[by], y)).set_index("domain")
    weights = design.respondent_weights()
    codes = [design.cell_codes[design.respondent_cell, k] for k in range(3)]
    for label, row in ours.iterrows():
        in_domain = (data[by] == label).to_numpy() & ~np.isnan(y)
        mean, se = r_style_variance(y, in_domain, weights, codes)
        assert row["estimate"] == pytest.approx(mean, abs=1e-9)
        assert row["se"] == pytest.approx(se, rel=1e-9, abs=1e-12)
        assert row["n"] == in_domain.sum()


def test_hand_checked_single_margin_is_a_poststratified_mean():
    data = pd.DataFrame({"sex": ["M", "F", "F", "F"]})
    margins = pd.DataFrame({"variable": ["sex", "sex"], "category": ["M", "F"], "total": [50, 50]})
    design = rake(data, margins).design
    out = domain_means(design, domain_stats(design, ["x"] * 4, [100, 60, 80, 100])).iloc[0]
    # Men 100 with weight 50; women average 80 with weight 50: the raked mean is 90.
    assert out["estimate"] == pytest.approx(90.0)
    assert out["weight_sum"] == pytest.approx(100.0)
    # Post-stratified residuals are deviations from the stratum mean: only the women vary.
    x = np.array([0.0, 50 / 3 * -20, 0.0, 50 / 3 * 20]) / 100
    assert out["se"] == pytest.approx(np.sqrt(4 / 3 * np.sum((x - x.mean()) ** 2)))
    assert out["n_eff"] == pytest.approx(100**2 / (50**2 + 3 * (50 / 3) ** 2))


def test_aggregated_rows_give_the_same_numbers_as_respondents():
    data, y, margins = random_survey(7)
    design = rake(data, margins).design
    direct = domain_means(design, domain_stats(design, data["street"], y))
    frame = data.assign(y=y).dropna(subset=["y"])
    grouped = frame.groupby(["street", "community", "sex", "age"]).agg(
        n=("y", "size"), total=("y", "sum"), total_sq=("y", lambda v: float(np.sum(v**2)))
    )
    from_sql_like = domain_means(design, stats_from_frame(design, grouped.reset_index(), domain_column="street"))
    pd.testing.assert_frame_equal(direct, from_sql_like, rtol=1e-12)


def test_unknown_cell_in_aggregates_is_an_error():
    data, y, margins = random_survey(3)
    design = rake(data, margins).design
    frame = pd.DataFrame({"domain": ["x"], "community": ["zz"], "sex": ["M"], "age": ["old"], "n": [1], "total": [1.0], "total_sq": [1.0]})
    with pytest.raises(AnalysisError, match="unknown community"):
        stats_from_frame(design, frame)


def test_intervals_use_student_t_and_none_for_a_single_answer():
    assert np.isnan(ci_quantile(np.array([1]))[0])
    assert ci_quantile(np.array([2]))[0] == pytest.approx(12.706, abs=1e-3)

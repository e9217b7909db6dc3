"""Changes between waves: the difference and its interval, BH q-values equal to R's, the basis per row."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from analysis.changes import bh_adjust, change_test, change_variances, compare

# R 4.x: p <- c(0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262,
#               0.5719, 0.6528, 0.7590, 1.000, NA, 0.0201, 0.9)
#        cat(sprintf("%.15g", p.adjust(p, method = "BH")), sep = ", ")
P_TIES = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719, 0.6528,
          0.7590, 1.000, np.nan, 0.0201, 0.9]
R_TIES = [0.0017, 0.0034, 0.0107666666666667, 0.040375, 0.05695, 0.063325, 0.063325, 0.0649777777777778, 0.07803,
          0.500727272727273, 0.603783333333333, 0.747869230769231, 0.792685714285714, 0.8602, 1, np.nan, 0.05695,
          0.95625]
# set.seed(14); p <- c(runif(30)^3, runif(20)); p.adjust(p, method = "BH")  (first 12 of 50 shown in R's order)
R_SEED14_P = [0.016393593446972051, 0.25948323759605502, 0.87698589825941586, 0.16869688375143854,
              0.95005673895083553, 0.13380438603413597, 0.81170503957150208, 0.078638040706453485,
              0.11449753879711477, 0.055590860933371032, 0.70738421571269017, 0.0043940185393470657,
              0.10658708161942236, 0.61675406875018746, 0.63044515089405662, 0.404706279515471,
              0.044024256535609485, 0.30532843856971797, 0.61753044858023221, 0.21102536296107546,
              0.0432161750639172, 0.073886463586866458, 0.23567494476998369, 0.32889405494033647,
              0.42174094002984597, 0.23712440278842969, 0.056991631679224206, 0.14333066614040019,
              0.32458828018146552, 0.00048369925732309483, 0.81132832588627934, 0.13732813391834497,
              0.96875120652839541, 0.65422417456284165, 0.94648913433775306, 0.12507867626845837,
              0.55388363311067224, 0.4694821301382035, 0.86172143346630037, 0.61619249684736133,
              0.10261076525785029, 0.96296867216005921, 0.42129436414688826, 0.45323359151370823,
              0.55522189871408045, 0.21239776629954576, 0.38999349134974182, 0.21624630130827427,
              0.76081275474280119, 0.68783476483076811]
R_SEED14_Q = [0.27322655744953422, 0.56409399477403266, 0.95324554158632158, 0.49616730515128987,
              0.96875120652839541, 0.4479083316887506, 0.92239209042216153, 0.43687800392474158,
              0.4479083316887506, 0.40708308342303007, 0.86266367769840258, 0.10985046348367664,
              0.4479083316887506, 0.82953309328165348, 0.82953309328165348, 0.70290156671641002,
              0.40708308342303007, 0.63248856719295476, 0.82953309328165348, 0.53891909724643117,
              0.40708308342303007, 0.43687800392474158, 0.53891909724643117, 0.63248856719295476,
              0.70290156671641002, 0.53891909724643117, 0.40708308342303007, 0.4479083316887506,
              0.63248856719295476, 0.024184962866154743, 0.92239209042216153, 0.4479083316887506,
              0.96875120652839541, 0.83874894174723291, 0.96875120652839541, 0.4479083316887506,
              0.81650279222658895, 0.73356582834094297, 0.95324554158632158, 0.82953309328165348,
              0.4479083316887506, 0.96875120652839541, 0.70290156671641002, 0.73102192179630354,
              0.81650279222658895, 0.53891909724643117, 0.70290156671641002, 0.53891909724643117,
              0.90572946993190617, 0.85979345603846014]


def test_bh_by_hand():
    # p sorted: 0.005 (1), 0.01 (2), 0.03 (3), 0.04 (4); m p / rank = 0.02, 0.02, 0.04, 0.04; running min from the top.
    assert bh_adjust([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.02, 0.04, 0.04, 0.02], abs=1e-15)
    # One p-value: q = p. Large ranks cap at 1.
    assert bh_adjust([0.3]).tolist() == [0.3]
    assert bh_adjust([0.9, 0.95]).tolist() == pytest.approx([0.95, 0.95])
    assert np.isnan(bh_adjust([np.nan])).all() and bh_adjust([]).size == 0


@pytest.mark.parametrize(("p", "expected"), [(P_TIES, R_TIES), (R_SEED14_P, R_SEED14_Q)])
def test_bh_equals_r_p_adjust(p, expected):
    q = bh_adjust(p)
    assert np.array_equal(np.isnan(q), np.isnan(expected))
    assert q[~np.isnan(q)] == pytest.approx(np.asarray(expected)[~np.isnan(q)], rel=1e-12)


def test_change_test_independent_samples():
    out = change_test([70.0], [2.25], [74.0], [1.75])  # SE = 2
    assert out["change"][0] == 4.0 and out["se"][0] == 2.0
    assert out["ci_low"][0] == pytest.approx(4 - 1.959963984540054 * 2) and out["ci_high"][0] == pytest.approx(4 + 3.919927969)
    assert out["p_value"][0] == pytest.approx(2 * norm.sf(2.0))
    zero = change_test([80.0, 80.0, 80.0], [0.0, 0.0, np.nan], [80.0, 81.0, 85.0], [0.0, 0.0, 1.0])
    assert zero["p_value"][0] == 1.0 and zero["p_value"][1] == 0.0 and np.isnan(zero["p_value"][2])


def test_small_rows_get_a_smoothed_variance_per_group_and_empty_rows_none():
    se = [1.0, 2.0, 0.0, 0.5, 3.0, 0.0]
    n = [100, 100, 4, 100, 10, 0]
    groups = ["a", "a", "a", "b", "b", "b"]
    var, smoothed = change_variances(se, n, groups=groups)
    # a: kappa = median(100, 400) = 250 -> 250 / 4; b: kappa = 25 -> 25 / 10; n = 0 -> missing.
    assert var[:5].tolist() == pytest.approx([1.0, 4.0, 62.5, 0.25, 2.5]) and np.isnan(var[5])
    assert smoothed.tolist() == [False, False, True, False, True, False]


def _wave(n, estimate, se, eb=None, mse=None, domains=("A", "B", "C")):
    frame = pd.DataFrame({"domain": list(domains), "n": n, "estimate": estimate, "se": se})
    if eb is not None:
        frame["eb_estimate"], frame["eb_mse"] = eb, mse
    return frame


def test_small_communities_are_compared_on_shrunk_estimates_and_say_so():
    before = _wave([200, 5, 40], [80.0, 60.0, 82.0], [1.0, 0.0, 2.0], eb=[80.1, 75.0, 81.8], mse=[1.0, 9.0, 3.9])
    after = _wave([210, 6, 12], [81.0, 95.0, 81.0], [1.0, 0.0, 4.0], eb=[81.0, 80.0, 81.2], mse=[1.0, 7.0, 8.0])
    out = compare(before, after).set_index("domain")
    assert out["basis"].to_dict() == {"A": "direct", "B": "eb", "C": "eb"}
    b = out.loc["B"]
    assert (b.estimate_before, b.estimate_after, b.change) == (75.0, 80.0, 5.0)
    assert b.se == pytest.approx(4.0) and b.p_value == pytest.approx(2 * norm.sf(5 / 4))
    # The direct estimates (60 -> 95 with SE 0) would have been "certain"; the shrunk ones are not.
    assert not b.significant
    assert out.loc["A", "change"] == pytest.approx(1.0) and out.loc["A", "se"] == pytest.approx(np.sqrt(2))


@pytest.mark.parametrize(("n_before", "n_after", "basis"), [
    (12, 200, "eb"),      # fewer than 30 in the earlier wave only (issue 25 item 8)
    (200, 12, "eb"),      # in the later wave only
    (29, 30, "eb"),       # one answer short in the earlier wave
    (30, 29, "eb"),
    (30, 30, "direct"),   # 30 in both: the direct estimates
])
def test_fewer_than_30_answers_in_either_wave_compares_the_shrunk_estimates(n_before, n_after, basis):
    before = _wave([200, n_before], [80.0, 70.0], [1.0, 2.0], eb=[80.1, 74.0], mse=[1.0, 3.0], domains=("A", "B"))
    after = _wave([200, n_after], [81.0, 79.0], [1.0, 2.0], eb=[81.0, 77.0], mse=[1.0, 2.5], domains=("A", "B"))
    row = compare(before, after).set_index("domain").loc["B"]
    assert row.basis == basis and (row.n_before, row.n_after) == (n_before, n_after)
    if basis == "eb":
        assert (row.estimate_before, row.estimate_after, row.change) == (74.0, 77.0, 3.0)
        assert row.se == pytest.approx(np.sqrt(5.5))
    else:
        assert (row.estimate_before, row.estimate_after, row.change) == (70.0, 79.0, 9.0)
        assert row.se == pytest.approx(np.sqrt(8.0))


def test_without_shrunk_estimates_small_cells_use_the_smoothed_variance():
    before = _wave([200, 3, 100], [80.0, 60.0, 82.0], [1.0, 0.0, 1.0])
    after = _wave([200, 3, 100], [81.0, 100.0, 82.5], [1.0, 0.0, 1.0])
    out = compare(before, after).set_index("domain")
    assert out["basis"].to_dict() == {"A": "direct", "B": "direct_smoothed", "C": "direct"}
    kappa = 1.0 * 200 / 2 + 1.0 * 100 / 2  # median of (200, 100)
    assert out.loc["B", "se"] == pytest.approx(np.sqrt(2 * kappa / 3))


def test_families_are_adjusted_separately_and_only_rows_in_both_waves_are_compared():
    before = pd.DataFrame({"item": ["x", "x", "y", "y"], "domain": ["A", "B", "A", "B"], "n": [100] * 4,
                           "estimate": [80.0, 80.0, 80.0, 80.0], "se": [1.0] * 4})
    after = pd.DataFrame({"item": ["x", "x", "y", "z"], "domain": ["A", "B", "A", "B"], "n": [100] * 4,
                          "estimate": [83.0, 80.5, 82.5, 70.0], "se": [1.0] * 4})
    out = compare(before, after, ["item", "domain"], family=["item"])
    assert list(zip(out["item"], out["domain"])) == [("x", "A"), ("x", "B"), ("y", "A")]
    x = out[out["item"] == "x"]
    assert x["q_value"].tolist() == pytest.approx(bh_adjust(x["p_value"]).tolist())
    y = out[out["item"] == "y"]
    assert y["q_value"].iloc[0] == pytest.approx(y["p_value"].iloc[0])  # a family of one: q = p
    whole = compare(before, after, ["item", "domain"])
    assert whole["q_value"].tolist() == pytest.approx(bh_adjust(whole["p_value"]).tolist())


def test_marks_keep_the_false_discovery_rate_on_a_simulated_city():
    """2,000 communities, 10% truly changed by 6 points: among marked ones, false discoveries <= 5% or so,
    and the 95% intervals cover the true change about 95% of the time."""
    rng = np.random.default_rng(5)
    m = 2000
    n1, n2 = rng.integers(30, 300, m), rng.integers(30, 300, m)
    truth = np.where(rng.random(m) < 0.1, 6.0, 0.0)
    level = rng.normal(82, 4, m)
    se1, se2 = 15 / np.sqrt(n1), 15 / np.sqrt(n2)
    before = pd.DataFrame({"domain": np.arange(m), "n": n1, "estimate": level + rng.normal(0, se1), "se": se1})
    after = pd.DataFrame({"domain": np.arange(m), "n": n2, "estimate": level + truth + rng.normal(0, se2), "se": se2})
    out = compare(before, after)
    marked = out["significant"].to_numpy()
    false = marked & (truth == 0)
    assert marked.sum() > 50
    assert false.sum() / marked.sum() <= 0.06
    raw = (out["p_value"] <= 0.05).to_numpy()
    assert (raw & (truth == 0)).sum() > false.sum()  # unadjusted p-values would mark more that did not change
    covered = (out["ci_low"] <= truth) & (truth <= out["ci_high"])
    assert 0.93 <= covered.mean() <= 0.97

"""Per-question shares, numbers and the Rao-Scott test against R's survey package.

R: ``svymean``/``svyby(~factor(x))`` of each choice, ``svyciprop(method = "logit")``,
``svyquantile`` (qrule "math", Woodruff interval) and ``svychisq(statistic = "F")`` on raked
designs with strata, clusters, fpc and base weights, on R's ``apistrat`` and on a generated city.
The data and R's numbers are made by ``r/frequencies.R`` (R is not needed to run these tests).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import AnalysisError
from analysis.frequencies import choice_matrix, choice_shares, crosstab, frequencies, weighted_quantile
from analysis.raking import rake

DATA = Path(__file__).parent / "data"
SPECS = {
    ("api", "strata_fpc"): {"strata": "stype", "fpc": "fpc", "weights": "pw"},
    ("api", "simple"): {},
    ("city", "one_stage"): {"strata": "district", "cluster": "street", "fpc": "streets_in_district",
                            "weights": "base_weight"},
    ("city", "weights_only"): {"weights": "base_weight"},
    ("city", "simple"): {},
}
ITEMS = {
    "api": {"awards": "choice", "yr_rnd": "choice", "stype": "choice", "api_band": "choice", "programs": "multi",
            "api00": "number", "enroll": "number", "acs_46": "number"},
    "city": {"q01": "choice", "q02": "choice", "channel": "choice", "problems": "multi", "household": "number",
             "spend": "number"},
}


def load(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    responses = pd.read_csv(DATA / f"freq_{name}_responses.csv", dtype=str, keep_default_na=False)
    return responses, pd.read_csv(DATA / f"freq_{name}_margins.csv", dtype=str)


@pytest.fixture(scope="module")
def designs():
    cache = {}

    def get(data: str, name: str):
        if (data, name) not in cache:
            responses, margins = load(data)
            cache[data, name] = responses, rake(responses, margins, tol=1e-13, max_iter=1000, **SPECS[data, name]).design
        return cache[data, name]
    return get


@pytest.fixture(scope="module")
def results(designs):
    cache = {}

    def get(data: str, name: str, by: str):
        if (data, name, by) not in cache:
            responses, design = designs(data, name)
            cache[data, name, by] = frequencies(design, responses, ITEMS[data], None if by == "ALL" else by)
        return cache[data, name, by]
    return get


def reference(kind: str) -> pd.DataFrame:
    return pd.read_csv(DATA / f"freq_r_{kind}.csv", dtype={"domain": str, "choice": str})


def cases(kind: str) -> list[tuple[str, str, str]]:
    return sorted(set(reference(kind)[["data", "design", "by"]].itertuples(index=False, name=None)))


@pytest.mark.parametrize(("data", "name", "by"), cases("shares"))
def test_choice_shares_equal_r(results, data, name, by):
    shares, _ = results(data, name, by)
    r = reference("shares")
    r = r[(r["data"] == data) & (r["design"] == name) & (r["by"] == by)]
    joined = shares.merge(r, on=["item", "domain", "choice"], suffixes=("", "_r"), validate="one_to_one")
    assert len(joined) == len(r) == len(shares[shares["domain"].isin(set(r["domain"]))])
    np.testing.assert_allclose(joined["share"], joined["share_r"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(joined["se"], joined["se_r"], rtol=1e-4, atol=1e-12)
    single = joined.dropna(subset=["share_factor"])  # svyby(~factor(x), ...) gives the same
    np.testing.assert_allclose(single["share"], single["share_factor"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(single["se"], single["se_factor"], rtol=1e-4, atol=1e-12)
    assert (joined["n"] == joined["n_r"]).all() and (joined["answered"] == joined["answered_r"]).all()
    assert (joined["df"] == joined["df_r"]).all()
    inside = (joined["share_r"] > 1e-12) & (joined["share_r"] < 1 - 1e-12) & joined["converged"]
    for side in ("low", "high"):
        np.testing.assert_allclose(joined.loc[inside, f"ci_{side}"], joined.loc[inside, f"logit_{side}"], atol=1e-6)
    assert ((joined["ci_low"] >= 0) & (joined["ci_high"] <= 1)).all()


@pytest.mark.parametrize(("data", "name", "by"), cases("numbers"))
def test_means_and_quantiles_equal_r(results, data, name, by):
    _, numbers = results(data, name, by)
    r = reference("numbers")
    r = r[(r["data"] == data) & (r["design"] == name) & (r["by"] == by)]
    joined = numbers.merge(r, on=["item", "domain", "statistic"], suffixes=("", "_r"), validate="one_to_one")
    assert len(joined) == len(r)
    np.testing.assert_allclose(joined["estimate"], joined["estimate_r"], rtol=1e-9)
    np.testing.assert_allclose(joined["se"], joined["se_r"], rtol=1e-4)  # NaN where R's is NaN
    quantiles = joined[joined["statistic"] != "mean"]
    for side in ("low", "high"):
        np.testing.assert_array_equal(quantiles[f"ci_{side}"], quantiles[f"ci_{side}_r"])


@pytest.mark.parametrize(("data", "name", "by"), cases("chisq"))
def test_rao_scott_f_equals_r(designs, data, name, by):
    responses, design = designs(data, name)
    r = reference("chisq")
    r = r[(r["data"] == data) & (r["design"] == name) & (r["by"] == by)]
    for (rows, cols), part in r.groupby(["rows", "cols"]):
        _, tests = crosstab(design, responses[rows], responses[cols], None if by == "ALL" else responses[by])
        joined = tests.merge(part, on="domain", suffixes=("", "_r"), validate="one_to_one")
        assert len(joined) == len(part)
        np.testing.assert_allclose(joined["statistic"], joined["statistic_r"], rtol=1e-4)
        np.testing.assert_allclose(joined["ndf"], joined["ndf_r"], rtol=1e-4)
        # the domain's own design df (survey's current svychisq); on the whole design R 4.1.1 agrees
        np.testing.assert_allclose(joined["ddf"], joined["ddf_degf"], rtol=1e-4)
        np.testing.assert_allclose(joined["p"], joined["p_degf"], rtol=1e-4, atol=1e-12)
        if by == "ALL":
            np.testing.assert_allclose(joined["ddf"], joined["ddf_r"], rtol=1e-4)
            np.testing.assert_allclose(joined["p"], joined["p_r"], rtol=1e-4, atol=1e-12)


def test_crosstab_cells_add_up_and_rows_share_within_the_row(designs):
    responses, design = designs("city", "one_stage")
    table, tests = crosstab(design, responses["q01"], responses["channel"], responses["district"])
    whole = table[table["domain"] == "ALL"]
    assert whole["share"].sum() == pytest.approx(1)
    assert whole.groupby("row")["row_share"].sum().to_numpy() == pytest.approx(1)
    assert (whole["n"].sum() == ((responses["q01"] != "") & (responses["channel"] != "")).sum())
    cell = whole.set_index(["row", "col"])
    row_total = whole.groupby("row")["share"].sum()
    assert cell.loc[("9", "a"), "row_share"] == pytest.approx(cell.loc[("9", "a"), "share"] / row_total["9"])
    # the cell SEs equal svymean's of one indicator: choice_shares on the cell's code
    key = pd.Series(np.where((responses["q01"] != "") & (responses["channel"] != ""),
                             responses["q01"] + "/" + responses["channel"], ""))
    alone = choice_shares(design, key).set_index("choice")
    assert cell.loc[("9", "a"), "se"] == pytest.approx(alone.loc["9/a", "se"], rel=1e-9)
    assert list(tests["domain"]) == ["ALL", "D0", "D1", "D2", "D3", "D4", "D5"]


def test_multi_select_shares_are_among_those_who_answered():
    values = pd.Series(["1 3", "", "3", None, " 2  3 "])
    order, matrix = choice_matrix(values, "multi", choices=["3", "2"])
    assert order == ["3", "2", "1"]
    assert np.isnan(matrix[[1, 3]]).all()
    assert matrix[[0, 2, 4]].tolist() == [[1, 0, 1], [1, 0, 0], [1, 1, 0]]


def test_weighted_quantile_follows_r_math_rule():
    x = np.array([5.0, 1.0, 3.0, 2.0])
    w = np.array([1.0, 1.0, 1.0, 1.0])
    assert weighted_quantile(x, w, 0.5) == 2.0  # cumulative share exactly 0.5 at 2
    assert weighted_quantile(x, w, 0.51) == 3.0
    assert weighted_quantile(x, w, 0.1) == 2.0  # R's qs(): below the first answer, pos 1, then the next
    assert weighted_quantile(x, np.array([0.0, 1.0, 1.0, 1.0]), 0.9) == 3.0  # zero weights dropped


def test_a_domain_named_all_and_unknown_kinds_are_refused(designs):
    responses, design = designs("api", "simple")
    with pytest.raises(AnalysisError, match="kind must be one of"):
        frequencies(design, responses, {"awards": "rating"})
    with pytest.raises(AnalysisError, match="whole-city row"):
        frequencies(design, responses.assign(stype="ALL"), {"awards": "choice"}, by="stype")
    with pytest.raises(AnalysisError, match="not a number"):
        frequencies(design, responses, {"awards": "number"})


CITY_DESIGN = ["--strata", "district", "--cluster", "street", "--fpc", "streets_in_district", "--weights", "base_weight",
               "--tol", "1e-13", "--max-iter", "1000", "--quiet"]


def city_files() -> list[str]:
    return ["--responses", str(DATA / "freq_city_responses.csv"), "--margins", str(DATA / "freq_city_margins.csv")]


def test_the_command_line_writes_r_s_shares_and_numbers(tmp_path):
    from analysis.cli import main

    out, numbers = tmp_path / "f.csv", tmp_path / "n.csv"
    assert main(["frequencies", *city_files(), "--items", "q01,channel", "--multi", "problems", "--numbers", "spend",
                 "--numbers-out", str(numbers), "--by", "district", "--out", str(out), *CITY_DESIGN]) == 0
    ours = pd.read_csv(out, dtype={"choice": str, "domain": str})
    assert list(ours.columns[:8]) == ["item", "domain", "choice", "share", "se", "ci_low", "ci_high", "n"]
    r = reference("shares")
    r = r[(r["data"] == "city") & (r["design"] == "one_stage") & r["by"].isin(["ALL", "district"])]
    joined = ours.merge(r, on=["item", "domain", "choice"], suffixes=("", "_r"), validate="one_to_one")
    assert len(joined) == len(ours) == len(r[r["item"].isin(["q01", "channel", "problems"])])
    np.testing.assert_allclose(joined["share"], joined["share_r"], atol=1e-6)
    np.testing.assert_allclose(joined["se"], joined["se_r"], rtol=1e-4)
    summary = pd.read_csv(numbers, dtype={"domain": str}).merge(
        reference("numbers"), on=["item", "domain", "statistic"], suffixes=("", "_r"))
    summary = summary[(summary["data"] == "city") & (summary["design"] == "one_stage")]
    assert len(summary) == 4 * 7
    np.testing.assert_allclose(summary["estimate"], summary["estimate_r"], rtol=1e-9)


def test_the_command_line_crosstab_test_equals_r(tmp_path):
    from analysis.cli import main

    out, test_out = tmp_path / "x.csv", tmp_path / "t.csv"
    assert main(["crosstab", *city_files(), "--rows", "q01", "--cols", "channel", "--by", "district",
                 "--out", str(out), "--test-out", str(test_out), *CITY_DESIGN]) == 0
    tests = pd.read_csv(test_out, dtype={"domain": str})
    assert list(tests.columns[:7]) == ["domain", "rows", "cols", "statistic", "ndf", "ddf", "p"]
    r = reference("chisq")
    r = r[(r["data"] == "city") & (r["design"] == "one_stage") & (r["rows"] == "q01") & (r["cols"] == "channel")]
    joined = tests.merge(r, on=["domain", "rows", "cols"], suffixes=("", "_r"), validate="one_to_one")
    assert len(joined) == len(r) >= 5
    np.testing.assert_allclose(joined["statistic"], joined["statistic_r"], rtol=1e-4)
    np.testing.assert_allclose(joined["ddf"], joined["ddf_degf"], rtol=1e-4)
    assert len(pd.read_csv(out)) == 7 * 6 * 4  # every domain has every q01 code and channel


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--items", "q01", "--numbers", "spend"], "--numbers-out"),
        (["--items", "nosuch"], "no column"),
        (["--multi", "problems", "--numbers", "problems", "--numbers-out", "n.csv"], "both as --multi and as --numbers"),
        (["--items", "q01", "--quantiles", "half"], "--quantiles"),
    ],
)
def test_the_command_line_refuses_bad_requests(tmp_path, capsys, extra, message):
    from analysis.cli import main

    assert main(["frequencies", *city_files(), "--out", str(tmp_path / "f.csv"), "--quiet", *extra]) == 2
    assert message in capsys.readouterr().err

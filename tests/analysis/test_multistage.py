"""Base weights, two-stage designs and lonely PSUs against R's survey package.

R: ``rake(svydesign(ids=~A+B, strata=~S, fpc=~F1+F2, weights=~W, nest=TRUE), ...)`` then
``svyby(~score, ~by, design, svymean, deff = TRUE)`` and ``svyciprop(method = "logit")`` per
domain, on R's ``apiclus2`` and on a generated stratified two-stage city with base weights. The
data and R's numbers are made by ``r/designs.R`` (R is not needed to run these tests).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import AnalysisError
from analysis.estimates import domain_means, domain_stats
from analysis.pipeline import analyze
from analysis.raking import rake

DATA = Path(__file__).parent / "data"
SPECS = {
    ("apiclus2", "two_stage"): {"cluster": "dnum+snum", "fpc": "fpc1+fpc2", "weights": "pw"},
    ("apiclus2", "one_stage"): {"cluster": "dnum", "weights": "pw"},
    ("apiclus2", "two_stage_no_fpc"): {"cluster": "dnum+snum", "weights": "pw"},
    ("city2", "two_stage"): {"strata": "district", "cluster": "street+building",
                             "fpc": "streets_in_district+buildings_in_street", "weights": "base_weight"},
    ("city2", "one_stage"): {"strata": "district", "cluster": "street", "fpc": "streets_in_district",
                             "weights": "base_weight"},
    ("city2", "strata_weights"): {"strata": "district", "weights": "base_weight"},
    ("city2", "weights_only"): {"weights": "base_weight"},
}
ITEMS = [f"q0{i}" for i in range(1, 6)]


def load(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    r = pd.read_csv(DATA / f"{name}_responses.csv", dtype=str)
    if name == "city2":
        r[ITEMS] = r[ITEMS].apply(pd.to_numeric)
        r["score"] = r[ITEMS].mean(axis=1)
    else:
        r["score"] = r["score"].astype(float)
    return r, pd.read_csv(DATA / f"{name}_margins.csv", dtype=str)


@pytest.fixture(scope="module")
def datasets():
    return {name: load(name) for name in ("apiclus2", "city2")}


def r_means() -> pd.DataFrame:
    return pd.read_csv(DATA / "designs_r_means.csv", dtype={"domain": str})


CASES = sorted({(d, n, lonely) for d, n, lonely in r_means()[["data", "design", "lonely"]].itertuples(index=False)})


@pytest.mark.parametrize(("data", "name", "lonely"), CASES)
def test_means_ses_and_deff_equal_r(datasets, data, name, lonely):
    r, margins = datasets[data]
    design = rake(r, margins, tol=1e-13, max_iter=1000, lonely_psu=lonely, **SPECS[data, name]).design
    reference = r_means()
    reference = reference[(reference["data"] == data) & (reference["design"] == name) & (reference["lonely"] == lonely)]
    for by, part in reference.groupby("by"):
        labels = np.full(len(r), "ALL") if by == "ALL" else r[by]
        ours = domain_means(design, domain_stats(design, labels, r["score"])).set_index("domain")
        joined = ours.join(part.set_index("domain").add_suffix("_r"), how="inner")
        assert len(joined) == len(part)
        np.testing.assert_allclose(joined["estimate"], joined["estimate_r"], rtol=0, atol=1e-6)
        # atol: a domain inside one PSU has a variance of rounding noise (1e-14) in R and here
        np.testing.assert_allclose(joined["se"], joined["se_r"], rtol=1e-4, atol=1e-9)
        real = joined["se_r"] > 1e-9
        np.testing.assert_allclose(joined.loc[real, "deff"], joined.loc[real, "deff_r"], rtol=1e-4)


def test_base_weights_are_raked_from_not_replaced(datasets):
    r, margins = datasets["city2"]
    with_base = rake(r, margins, tol=1e-13, weights="base_weight").design.respondent_weights()
    uniform = rake(r, margins, tol=1e-13).design.respondent_weights()
    assert np.abs(with_base / uniform - 1).max() > 0.1
    ratio = with_base / r["base_weight"].astype(float).to_numpy()
    cells = r["community"] + r["sex"] + r["age_band"]
    assert pd.Series(ratio).groupby(cells.to_numpy()).std().fillna(0).max() < 1e-9  # one raking factor per cell


def test_a_stratum_with_one_psu_fails_by_default_as_in_r(datasets):
    r, margins = datasets["city2"]
    with pytest.raises(AnalysisError, match="stratum D5 has only one PSU at stage 1.*--lonely-psu"):
        rake(r, margins, **SPECS["city2", "two_stage"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"base_weight": "0"}, "base weight base_weight = '0' on row 1 is not a positive number"),
        ({"base_weight": "x"}, "is not a positive number"),
        ({"buildings_in_street": "0.5"}, "mixes sampling fractions"),
        ({"buildings_in_street": "1"}, "smaller than the"),
    ],
)
def test_bad_design_columns_are_refused(datasets, change, message):
    r, margins = datasets["city2"]
    r = r.copy()
    for column, value in change.items():
        r.loc[r["street"] == r["street"].iloc[0], column] = value
    with pytest.raises(AnalysisError, match=message):
        rake(r, margins, lonely_psu="certainty", **SPECS["city2", "two_stage"])


def test_one_fpc_per_stage(datasets):
    r, margins = datasets["city2"]
    with pytest.raises(AnalysisError, match="1 fpc column.* for 2 stage"):
        rake(r, margins, strata="district", cluster="street+building", fpc="streets_in_district", lonely_psu="adjust")


def r_rates() -> pd.DataFrame:
    return pd.read_csv(DATA / "designs_r_rates.csv", dtype={"domain": str})


RATE_CASES = sorted({(d, n, lonely, by) for d, n, lonely, by in
                     r_rates()[["data", "design", "lonely", "by"]].itertuples(index=False)})


@pytest.mark.parametrize(("data", "name", "lonely", "by"), RATE_CASES)
def test_rate_intervals_use_the_design_degrees_of_freedom_as_r(datasets, data, name, lonely, by):
    r, margins = datasets[data]
    items, rates = (ITEMS, ["aware"]) if data == "city2" else (["score"], ["rate_awards", "rate_high"])
    r = r.copy()
    for rate in rates:
        r[rate] = pd.to_numeric(r[rate])
    result = analyze(r, margins, by=by, items=items, rates=rates, simulations=5, tol=1e-13, max_iter=1000,
                     lonely_psu=lonely, **SPECS[data, name])
    ours = result.items[result.items["item"].isin(rates)].rename(columns={"item": "rate"})
    reference = r_rates()
    reference = reference[(reference["data"] == data) & (reference["design"] == name) & (reference["lonely"] == lonely)
                          & (reference["by"] == by)]
    joined = ours.merge(reference, on=["rate", "domain"], how="inner", validate="one_to_one", suffixes=("", "_r"))
    assert len(joined) == len(reference) == len(ours)
    np.testing.assert_allclose(joined["estimate"], joined["p"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(joined["se"], joined["se_r"], rtol=1e-4, atol=1e-9)
    assert (joined["df"] == joined["df_r"]).all()
    # R's NaN (df 0: the domain inside as many PSUs as strata) is no interval here: 数据不足
    assert (joined["ci_low"].isna() == (joined["df_r"] < 1)).all()
    inside = (joined["p"] > 1e-12) & (joined["p"] < 1 - 1e-12) & (joined["df_r"] >= 1)
    # R's "logit" gives [0, NaN] at df = 1 (its glm's confint); "xlogit" is the same interval without the fit
    converged = joined[inside & joined["converged"] & joined["logit_high"].notna()]
    for side in ("low", "high"):
        np.testing.assert_allclose(converged[f"ci_{side}"], converged[f"logit_{side}"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(joined.loc[inside, f"ci_{side}"], joined.loc[inside, f"xlogit_{side}"], rtol=0, atol=1e-6)


def test_score_intervals_stay_on_the_scale_and_need_design_degrees_of_freedom(datasets):
    r, margins = datasets["city2"]
    result = analyze(r, margins, by="community", items=ITEMS, simulations=5, lonely_psu="adjust",
                     **SPECS["city2", "two_stage"])
    table = result.domains
    assert (table["df"] == 0).all()  # each community lies inside one street
    assert table["ci_low"].isna().all() and (table["variance_warning"] == "single_psu").all()
    result = analyze(r, margins, by="district", items=ITEMS, simulations=5, lonely_psu="adjust",
                     **SPECS["city2", "two_stage"])
    table = result.domains.set_index("domain")
    assert np.isnan(table.loc["D5", "ci_low"]) and table.loc["D5", "variance_warning"] == "single_psu"
    shown = table.dropna(subset=["ci_low"])
    assert len(shown) == 5 and (shown["ci_low"] >= 0).all() and (shown["ci_high"] <= 100).all()
    assert (shown["df"] == [2, 3, 2, 3, 2]).all()


def test_the_command_line_takes_the_two_stage_design_with_base_weights(tmp_path, capsys):
    from analysis.cli import main

    out = tmp_path / "out.csv"
    argv = ["estimate", "--responses", str(DATA / "city2_responses.csv"), "--margins", str(DATA / "city2_margins.csv"),
            "--by", "district", "--items", ",".join(ITEMS), "--out", str(out), "--simulations", "10", "--tol", "1e-13",
            "--max-iter", "1000", "--strata", "district", "--cluster", "street+building",
            "--fpc", "streets_in_district+buildings_in_street", "--weights", "base_weight"]
    assert main(argv) == 2 and "--lonely-psu" in capsys.readouterr().err
    assert main([*argv, "--lonely-psu", "certainty"]) == 0
    err = capsys.readouterr().err
    assert "single PSU, handled as --lonely-psu certainty: stratum D5" in err and "1 domain(s) lie within" in err
    ours = pd.read_csv(out, dtype={"domain": str}).set_index("domain")
    reference = r_means()
    reference = reference[(reference["data"] == "city2") & (reference["design"] == "two_stage")
                          & (reference["lonely"] == "certainty") & reference["by"].isin(["district", "ALL"])]
    joined = ours.join(reference.set_index("domain").add_suffix("_r"), how="inner")
    assert len(joined) == 7
    np.testing.assert_allclose(joined["estimate"], joined["estimate_r"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(joined["se"], joined["se_r"], rtol=1e-4)
    assert ours.loc["D5", "status"] == "undecided" and np.isnan(ours.loc["D5", "ci_low"])


@pytest.mark.parametrize("design", ["two_stage", "one_stage", "strata_weights", "weights_only"])
def test_aggregated_cells_with_the_design_columns_give_the_respondents_numbers(datasets, design):
    """What the server analyses (cells of one GROUP BY, design columns grouped in) equals analyze()."""
    from analysis.pipeline import analyze_aggregates
    from analysis.raking import design_columns

    r, margins = datasets["city2"]
    spec = SPECS["city2", design]
    columns = [spec.get("strata"), spec.get("weights"), *design_columns(spec.get("cluster")), *design_columns(spec.get("fpc"))]
    keys = list(dict.fromkeys(["community", "sex", "age_band", *(c for c in columns if c)]))
    if "cluster" not in spec:
        keys.append("respondent_id")  # the respondents are the PSUs: a cell each
    cells = (r.assign(score_sq=r["score"] ** 2).groupby(keys)
             .agg(n=("score", "size"), total=("score", "sum"), total_sq=("score_sq", "sum")).reset_index())
    direct = analyze(r, margins, by="community", items=ITEMS, simulations=5, lonely_psu="adjust", **spec)
    cellwise = analyze_aggregates(cells, margins, by="community", simulations=5, lonely_psu="adjust", **spec)
    a = direct.domains.set_index("domain")
    b = cellwise.domains.set_index("domain").reindex(a.index)
    for column in ("estimate", "se", "df", "ci_low", "ci_high", "eb_estimate"):
        np.testing.assert_allclose(b[column].to_numpy(float), a[column].to_numpy(float), rtol=1e-9, atol=1e-9)
    assert (b["variance_warning"] == a["variance_warning"]).all() and (b["status"] == a["status"]).all()
    assert cellwise.city["estimate"] == pytest.approx(direct.city["estimate"], rel=1e-12)
    assert cellwise.city["se"] == pytest.approx(direct.city["se"], rel=1e-9) and cellwise.city["df"] == direct.city["df"]

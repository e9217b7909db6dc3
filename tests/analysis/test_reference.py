"""The analysis against R's survey package (estimates to 1e-6, standard errors to 1e-4 relative)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.estimates import domain_means, domain_stats
from analysis.pipeline import ALL, analyze, analyze_aggregates
from analysis.raking import rake

DATA = Path(__file__).parent / "data"
CITY100K = Path(__file__).resolve().parents[3] / "shared" / "reference" / "city100k"
ITEMS = [f"q{i:02d}" for i in range(1, 11)]


def load(responses: Path, margins: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    r = pd.read_csv(responses, dtype=str)
    for item in ITEMS:
        r[item] = pd.to_numeric(r[item])
    r["score"] = r[ITEMS].mean(axis=1)
    r = r[r["score"].notna()].reset_index(drop=True)
    return r, pd.read_csv(margins, dtype=str)


@pytest.fixture(scope="module")
def small():
    r, m = load(DATA / "small_responses.csv", DATA / "small_margins.csv")
    return r, rake(r, m, tol=1e-13).design, pd.read_csv(DATA / "small_r_estimates.csv", dtype={"domain": str})


def compare(ours: pd.DataFrame, reference: pd.DataFrame) -> None:
    # R reports NA for a domain where nobody answered; we leave such a domain out.
    unanswered = reference["estimate"].isna()
    assert not set(reference.loc[unanswered, "domain"]) & set(ours["domain"])
    reference = reference[~unanswered]
    joined = ours.set_index("domain").join(reference.set_index("domain").add_suffix("_r"), how="inner")
    assert len(joined) == len(reference)
    np.testing.assert_allclose(joined["estimate"], joined["estimate_r"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(joined["se"], joined["se_r"], rtol=1e-4, atol=1e-10)  # atol: R says 0 where all answers agree


def test_weights_match_r(small):
    r, design, _ = small
    weights = pd.read_csv(DATA / "small_r_weights.csv", dtype={"respondent_id": str})
    assert weights["respondent_id"].tolist() == r["respondent_id"].tolist()
    np.testing.assert_allclose(design.respondent_weights(), weights["weight"], rtol=1e-8)


@pytest.mark.parametrize(
    ("what", "by", "value"),
    [("street_score", "street", "score"), ("community_q03", "community", "q03"), ("city_q07", None, "q07")],
)
def test_domains_not_on_a_margin_and_items_with_dont_know_match_r(small, what, by, value):
    r, design, reference = small
    labels = np.full(len(r), "ALL") if by is None else r[by]
    ours = domain_means(design, domain_stats(design, labels, r[value]))
    compare(ours, reference[reference["what"] == what])


def test_city100k_matches_r_for_every_community_and_the_city():
    assert CITY100K.exists(), f"reference data missing: {CITY100K} (shared/ beside the repository)"
    r, m = load(CITY100K / "responses.csv", CITY100K / "margins.csv")
    reference = pd.read_csv(CITY100K / "r_estimates.csv", dtype={"community": str}).rename(
        columns={"community": "domain"}
    )
    reference["domain"] = reference["domain"].replace("__city__", ALL)
    result = analyze(r, m, by="community", items=ITEMS, simulations=50)
    direct = pd.concat(
        [result.domains, pd.DataFrame([{"domain": ALL, **{k: result.city[k] for k in ("estimate", "se")}}])]
    )
    compare(direct[["domain", "estimate", "se"]], reference)
    weights = pd.read_csv(CITY100K / "r_weights.csv", dtype={"respondent_id": str})
    np.testing.assert_allclose(result.rake.design.respondent_weights(), weights["weight"], rtol=1e-8)


def test_aggregated_cells_give_the_same_analysis_as_respondents(small):
    r, _, _ = small
    margins = pd.read_csv(DATA / "small_margins.csv", dtype=str)
    from_rows = analyze(r, margins, by="community", items=ITEMS, quota_by="district", model_by="district", simulations=300)
    # What one SQL GROUP BY community, sex, age_band returns:
    r = r.assign(sq=r["score"] ** 2)
    cells = r.groupby(["community", "sex", "age_band"], as_index=False).agg(
        n=("score", "size"), total=("score", "sum"), total_sq=("sq", "sum")
    )
    long = r.melt(id_vars=["community", "sex", "age_band"], value_vars=ITEMS, var_name="item").dropna(subset=["value"])
    long["sq"] = long["value"] ** 2
    item_cells = long.groupby(["item", "community", "sex", "age_band"], as_index=False).agg(
        n=("value", "size"), total=("value", "sum"), total_sq=("sq", "sum")
    )
    attributes = r.groupby("community")[["district"]].first()
    from_cells = analyze_aggregates(cells, margins, by="community", item_cells=item_cells, attributes=attributes,
                                    quota_by="district", model_by="district", simulations=300)
    # The shrinkage model's variance is where a bounded minimiser stops on a flat REML curve: exact to
    # about sqrt(machine eps), so the two summation orders move it by ~1e-8 relative (3e-8 seen on one
    # machine, none on another). The columns made from it are held to 1e-6; everything else to 1e-9.
    fitted = ["shrinkage", "eb_estimate", "eb_mse", "eb_ci_low", "eb_ci_high", "prob_below_80",
              "points_at_stake", "share_of_lost"]
    pd.testing.assert_frame_equal(from_rows.domains.drop(columns=fitted), from_cells.domains.drop(columns=fitted), rtol=1e-9)
    pd.testing.assert_frame_equal(from_rows.domains[fitted], from_cells.domains[fitted], rtol=1e-6)
    key = ["item", "domain"]
    pd.testing.assert_frame_equal(
        from_rows.items.sort_values(key).reset_index(drop=True),
        from_cells.items.sort_values(key).reset_index(drop=True),
        rtol=1e-9,
    )
    for name in ("estimate", "se", "points", "third_party_prob_pass", "residual_sd"):
        assert from_cells.city[name] == pytest.approx(from_rows.city[name], rel=1e-9)


RATES = ["a_q03", "b_q07", "c_score"]


@pytest.mark.parametrize("by", ["community", "street"])
def test_rate_intervals_match_r_svyciprop_logit(small, by):
    """Rates get R's svyciprop(method = "logit") interval (data/make_rate_reference.R), within [0, 1]."""
    r, _, _ = small
    margins = pd.read_csv(DATA / "small_margins.csv", dtype=str)
    # The same deterministic 0/1 columns as make_rate_reference.R; blank stays blank (don't know).
    r = r.assign(
        a_q03=np.where(r["q03"].isna(), np.nan, (r["q03"] >= 100).astype(float)),
        b_q07=np.where(r["q07"].isna(), np.nan, (r["q07"] >= 80).astype(float)),
        c_score=(r["score"] >= 85).astype(float),
    )
    result = analyze(r, margins, by=by, items=ITEMS, rates=RATES, simulations=20)
    ours = result.items[result.items["item"].isin(RATES)].rename(columns={"item": "rate"})
    reference = pd.read_csv(DATA / "small_r_rate_intervals.csv", dtype={"domain": str})
    reference = reference[reference["by"] == by]
    joined = ours.merge(reference, on=["rate", "domain"], how="inner", validate="one_to_one", suffixes=("", "_r"))
    assert len(joined) == len(reference) == len(ours)
    np.testing.assert_allclose(joined["estimate"], joined["p"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(joined["se"], joined["se_r"], rtol=1e-4, atol=1e-10)
    assert (joined["n"] == joined["n_r"]).all()

    inside = (joined["p"] > 1e-12) & (joined["p"] < 1 - 1e-12)
    converged = joined[inside & joined["converged"]]
    assert len(converged) >= (80 if by == "community" else 30)
    np.testing.assert_allclose(converged["ci_low"], converged["logit_low"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(converged["ci_high"], converged["logit_high"], rtol=0, atol=1e-4)
    # Where survey 4.1.1's glm diverges, method "xlogit" is the same interval without the fit.
    np.testing.assert_allclose(joined.loc[inside, "ci_low"], joined.loc[inside, "xlogit_low"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(joined.loc[inside, "ci_high"], joined.loc[inside, "xlogit_high"], rtol=0, atol=1e-4)

    # One respondent (df 0): no interval, as R's NaN. Otherwise, at p = 0 or 1, the one-sided
    # Clopper-Pearson bound with the Kish effective sample size.
    assert (joined["ci_low"].isna() == (joined["df"] < 1)).all() and (joined["df"] == joined["df_r"]).all()
    joined = joined[joined["df"] >= 1]
    inside = inside[joined.index]
    assert ((joined["ci_low"] >= 0) & (joined["ci_high"] <= 1) & (joined["ci_low"] <= joined["ci_high"])).all()
    edge = joined[~inside]
    assert len(edge) > 0 or by == "street"  # streets are large enough to have both answers
    bound = 0.025 ** (1 / np.maximum(edge["n_eff"], 1))
    zero = edge["p"] < 0.5
    np.testing.assert_allclose(edge.loc[zero, "ci_high"], 1 - bound[zero], rtol=1e-12)
    assert (edge.loc[zero, "ci_low"] == 0).all() and (edge.loc[~zero, "ci_high"] == 1).all()
    np.testing.assert_allclose(edge.loc[~zero, "ci_low"], bound[~zero], rtol=1e-12)

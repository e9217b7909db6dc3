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
    from_rows = analyze(r, margins, by="community", items=ITEMS, strata="district", model_by="district", simulations=300)
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
                                    strata="district", model_by="district", simulations=300)
    pd.testing.assert_frame_equal(from_rows.domains, from_cells.domains, rtol=1e-9)
    key = ["item", "domain"]
    pd.testing.assert_frame_equal(
        from_rows.items.sort_values(key).reset_index(drop=True),
        from_cells.items.sort_values(key).reset_index(drop=True),
        rtol=1e-9,
    )
    for name in ("estimate", "se", "points", "third_party_prob_pass", "residual_sd"):
        assert from_cells.city[name] == pytest.approx(from_rows.city[name], rel=1e-9)

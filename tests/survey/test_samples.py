"""An imported designed sample (issue 25): stored with its design columns, analysed with its design.

The hidden stratified two-stage city of tests/analysis (city2: districts -> streets -> buildings,
base weights, population sizes per stage) imported as a third-party assessment's CSV; the stored
results equal analysis.pipeline.analyze on the respondents with the same design, which
tests/analysis/test_multistage.py holds equal to R's svydesign(...) then rake.
"""
from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from analysis.pipeline import analyze
from analysis.raking import restrict_margins
from survey import db
from survey.areas import import_areas
from survey.models import AnalysisRun, Area, AreaResult, Response, SampleDesign, Wave
from survey.results import import_margins
from survey.waves import create_wave

DATA = Path(__file__).parents[1] / "analysis" / "data"
ITEMS = [f"q0{i}" for i in range(1, 6)]
DESIGN = {"strata": "district", "cluster": "street+building", "fpc": "streets_in_district+buildings_in_street",
          "weights": "base_weight"}
WAVE = "第三方测评模拟"


def city2() -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_csv(DATA / "city2_responses.csv", dtype=str), pd.read_csv(DATA / "city2_margins.csv")


def areas_csv(r: pd.DataFrame) -> str:
    rows = ["code,name,level,parent_code,adult_population,responsible_unit", "C,模拟市,city,,,"]
    rows += [f"{d},{d}区,district,C,," for d in sorted(r["district"].unique())]
    streets = r[["street", "district"]].drop_duplicates().sort_values("street")
    rows += [f"{s},{s}街道,street,{d},," for s, d in streets.itertuples(index=False)]
    communities = r[["community", "street"]].drop_duplicates().sort_values("community")
    rows += [f"{c},{c}社区,community,{s},," for c, s in communities.itertuples(index=False)]
    return "\n".join(rows) + "\n"


def sample_csv(r: pd.DataFrame) -> str:
    """The assessment's file: scores as the questionnaire's choice codes (20 points a step), blank = no answer."""
    out = r.copy()
    for item in ITEMS:
        score = pd.to_numeric(out[item])
        out[item] = np.where(score.isna(), "", (score / 20).round().astype("Int64").astype(str))
    return out.drop(columns=["aware"]).to_csv(index=False)


@pytest.fixture
def assessment(app, tmp_path):
    r, margins = city2()
    now = datetime.now(UTC)
    with app.app_context(), db.write_transaction() as session:
        import_areas(session, areas_csv(r))
        create_wave(session, WAVE, now - timedelta(days=2), now + timedelta(days=2), ["citizen"])
        buffer = io.StringIO()
        margins.to_csv(buffer, index=False)
        import_margins(session, buffer.getvalue())
    path = tmp_path / "assessment.csv"
    path.write_text(sample_csv(r), encoding="utf-8")
    return r, margins, path


def options(**design) -> list[str]:
    return [part for key, value in design.items() for part in (f"--{key.replace('_', '-')}", value)]


def test_an_imported_two_stage_sample_is_stored_with_its_design_and_analysed_as_r(app, runner, assessment):
    r, margins, path = assessment
    result = runner.invoke(args=["import-sample", str(path), "--wave", WAVE, *options(**DESIGN), "--lonely-psu", "adjust"])
    assert result.exit_code == 0, result.output
    assert "Imported 506 responses" in result.output
    with app.app_context():
        session = db.session()
        stored = session.scalars(select(SampleDesign)).one()
        assert (stored.strata, stored.cluster, stored.fpc, stored.weights, stored.lonely_psu) == (
            "district", "street+building", "streets_in_district+buildings_in_street", "base_weight", "adjust")
        responses = session.scalars(select(Response)).all()
        assert len(responses) == 506 and {x.channel for x in responses} == {"paper"}
        first = next(x for x in responses if x.submission_key.endswith("-P1_1"))
        assert first.attributes["building"] == "D0S1B1" and float(first.attributes["base_weight"]) == pytest.approx(34.2857142857143)
        assert first.attributes["sex"] == "F" and first.attributes["age_band"] == "60+"
        scores = pd.Series({x.submission_key.rsplit("-", 1)[1]: x.score for x in responses}, dtype=float)
        expected_scores = r.set_index("respondent_id")[ITEMS].apply(pd.to_numeric).mean(axis=1)
        assert np.allclose(scores.reindex(expected_scores.index), expected_scores, atol=1e-9)

    result = runner.invoke(args=["analyze", "--wave", WAVE, "--include-flagged"])
    assert result.exit_code == 0, result.output

    data = r.copy()
    data[ITEMS] = data[ITEMS].apply(pd.to_numeric)
    restricted, _ = restrict_margins(margins, "community", set(data["community"]))
    reference = analyze(data, restricted, by="community", items=ITEMS, simulations=5, lonely_psu="adjust", **DESIGN)
    district = analyze(data, restricted, by="district", items=ITEMS, simulations=5, lonely_psu="adjust", **DESIGN)
    with app.app_context():
        session = db.session()
        run = session.scalars(select(AnalysisRun).join(Wave).where(Wave.name == WAVE)).one()
        rows = {(a.code, x.level): x for x, a in session.execute(
            select(AreaResult, Area).join(Area, Area.id == AreaResult.area_id).where(AreaResult.run_id == run.id)).all()}
        domains = reference.domains.set_index("domain")
        assert len(domains) == 36
        for code, want in domains.iterrows():
            got = rows[(code, "community")]
            assert got.n == want["n"], code
            assert got.estimate == pytest.approx(want["estimate"], rel=1e-9), code
            assert got.se == pytest.approx(want["se"], rel=1e-7, abs=1e-9), code
            assert got.df == want["df"] and (got.variance_warning or "") == want["variance_warning"], code
            assert (got.ci_low is None) == bool(np.isnan(want["ci_low"])), code
            if got.ci_low is not None:
                assert (got.ci_low, got.ci_high) == pytest.approx((want["ci_low"], want["ci_high"]), rel=1e-7), code
            assert got.eb_estimate == pytest.approx(want["eb_estimate"], rel=1e-7), code
            assert got.status == want["status"], code
        city = rows[("C", "city")]
        assert city.estimate == pytest.approx(reference.city["estimate"], rel=1e-9)
        assert city.se == pytest.approx(reference.city["se"], rel=1e-7)
        assert city.df == reference.city["df"] == 12  # PSUs (streets) minus strata (districts), as R's degf
        for code, want in district.domains.set_index("domain").iterrows():
            got = rows[(code, "district")]
            assert got.estimate == pytest.approx(want["estimate"], rel=1e-9), code
            assert got.se == pytest.approx(want["se"], rel=1e-7, abs=1e-9), code
            assert got.df == want["df"], code
        # D5 has one street: its district has no design degrees of freedom (R: NaN) -> 数据不足, no interval
        d5 = rows[("D5", "district")]
        assert d5.variance_warning == "single_psu" and d5.ci_low is None and d5.status == "undecided"
        assert run.summary["rake"]["lonely"]  # the lonely stratum is named for the office page and the CLI
    assert "lonely PSUs" in result.output and "lie within one PSU per stratum" in result.output


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: pd.concat([r, r.iloc[[3]]]), "appears twice (first on line 5)"),
    (lambda r: r.assign(base_weight=["0"] + list(r["base_weight"][1:])), "line 2: base weight base_weight = '0'"),
    (lambda r: r.assign(community=["NOWHERE"] + list(r["community"][1:])), "line 2: community 'NOWHERE' is not a known"),
    (lambda r: r.assign(building=[""] + list(r["building"][1:])), "line 2: design column building is blank"),
])
def test_a_bad_sample_is_refused_with_its_line_and_nothing_is_stored(app, runner, assessment, tmp_path, edit, message):
    r, _margins, _path = assessment
    bad = tmp_path / "bad.csv"
    bad.write_text(sample_csv(edit(r.copy()).reset_index(drop=True)), encoding="utf-8")
    result = runner.invoke(args=["import-sample", str(bad), "--wave", WAVE, *options(**DESIGN)])
    assert result.exit_code != 0 and message in result.output and "nothing was imported" in result.output
    with app.app_context():
        session = db.session()
        assert session.scalars(select(Response)).first() is None and session.scalars(select(SampleDesign)).first() is None


def test_without_a_cluster_the_respondents_are_the_psus(app, runner, assessment):
    r, margins, path = assessment
    design = {"strata": "district", "weights": "base_weight"}
    assert runner.invoke(args=["import-sample", str(path), "--wave", WAVE, *options(**design)]).exit_code == 0
    result = runner.invoke(args=["analyze", "--wave", WAVE, "--include-flagged"])
    assert result.exit_code == 0, result.output
    data = r.copy()
    data[ITEMS] = data[ITEMS].apply(pd.to_numeric)
    restricted, _ = restrict_margins(margins, "community", set(data["community"]))
    reference = analyze(data, restricted, by="community", items=ITEMS, simulations=5, **design)
    with app.app_context():
        session = db.session()
        assert session.scalars(select(SampleDesign)).one().cluster == "respondent_id"
        city = session.scalars(select(AreaResult).where(AreaResult.level == "city")).one()
        assert city.estimate == pytest.approx(reference.city["estimate"], rel=1e-9)
        assert city.se == pytest.approx(reference.city["se"], rel=1e-7)
        assert city.df == reference.city["df"] == 500  # respondents minus strata

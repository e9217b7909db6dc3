"""Stored analysis: what the server keeps for areas and items, on the 80 line and for rates."""
from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from survey import db
from survey.auth import create_user
from survey.models import Area, AreaResult, ItemResult
from tests.conftest import PASSWORD, form_fields, full_answers, logged_in

PEOPLE = [("F", "30-44"), ("M", "60+"), ("F", "18-29"), ("M", "45-59")]


def test_everyone_at_80_is_stored_as_80_undecided_with_a_warning_and_rates_at_0_and_1_get_a_bounded_interval(
        app, runner, city):
    # Identical answers everywhere: a variance of 0 is no evidence of certainty (straight-lining, one
    # interviewer, a tiny area), so no area gets a certain flag from it: 数据不足 with the warning
    # zero_variance, no probability, no interval (issue 25 items 3 and 7).
    for code in ("A1", "A2", "B1"):
        for sex, age in PEOPLE:
            client = app.test_client()
            fields = form_fields(client.get(f"/s/{city[code]}").get_data(as_text=True))
            # Every satisfaction item "4" (80 points); k01-k03 "Y" (rate 1), k04 "N" (rate 0).
            page = client.post(f"/s/{city[code]}", data=fields | full_answers(sex=sex, age_band=age))
            assert page.status_code == 200
    result = runner.invoke(args=["analyze", "--include-flagged"])  # all answers alike: straight-lining flags
    assert result.exit_code == 0, result.output
    assert "[warning: zero_variance]" in result.output and "warning: 1 city area(s) have identical answers" in result.output
    with app.app_context():
        session = db.session()
        areas = session.execute(select(AreaResult, Area).join(Area, Area.id == AreaResult.area_id)).all()
        assert {a.level for _, a in areas} == {"city", "district", "street", "community"}
        for r, area in areas:
            assert (r.estimate, r.se, r.prob_below_80, r.status) == (80.0, 0.0, None, "undecided"), area.code
            assert r.variance_warning == "zero_variance" and r.answers_to_decide is None, area.code
            assert r.df is not None and r.df >= 1, area.code
        items = session.scalars(select(ItemResult)).all()
        rates = {}
        for r in items:
            if r.item_code.startswith("q"):
                assert r.estimate == 80.0
            else:
                rates.setdefault(r.item_code, []).append(r)
        assert set(rates) == {"k01", "k02", "k03", "k04"}
        for code, rows in rates.items():
            for r in rows:
                assert r.ci_low is not None and r.ci_high is not None
                if code == "k04":  # nobody: [0, 1 - 0.025 ** (1 / n_eff)]
                    assert r.estimate == 0 and r.ci_low == 0 and 0 < r.ci_high < 1
                else:  # everybody: [0.025 ** (1 / n_eff), 1]
                    assert r.estimate == 1 and 0 < r.ci_low < 1 and r.ci_high == 1
        four = [r for r in rates["k01"] if r.n == 4]
        assert four and four[0].ci_low == pytest.approx(0.025 ** (1 / 4), rel=1e-9)
        with db.write_transaction() as session:
            create_user(session, "city", PASSWORD, "city", "C")
    # The pages say why there is no interval and no flag; the export carries the new columns.
    client = logged_in(app.test_client(), "city")
    for url in ("/office/area/C", "/office/area/S1", "/office/community/A1"):
        page = client.get(url).get_data(as_text=True)
        assert "答卷完全相同，误差无法估计" in page, url
    community = client.get("/office/community/A1").get_data(as_text=True)
    assert "数据不足" in community and "—–—" not in community
    rows = list(csv.DictReader(io.StringIO(client.get("/office/area/C/export/estimates.csv").get_data(as_text=True)
                                           .lstrip("\ufeff"))))
    assert rows and all(r["方差提示"] == "答卷完全相同" and r["状态"] == "数据不足" and r["95%下限"] == "" for r in rows)


def test_rates_from_a_run_stored_before_the_logit_interval_are_shown_within_0_and_100_percent(app, runner, city):
    from survey.models import AnalysisRun
    from survey.reading.dashboard import rates, run_definition

    for sex, age in PEOPLE:
        client = app.test_client()
        fields = form_fields(client.get(f"/s/{city['A1']}").get_data(as_text=True))
        client.post(f"/s/{city['A1']}", data=fields | full_answers(sex=sex, age_band=age, q01=str(2 + len(sex + age) % 4)))
    assert runner.invoke(args=["analyze", "--include-flagged"]).exit_code == 0
    with app.app_context(), db.write_transaction() as session:
        run = session.scalars(select(AnalysisRun)).one()
        area = session.scalars(select(Area).where(Area.code == "A1")).one()
        old = session.scalars(select(ItemResult).where(ItemResult.run_id == run.id, ItemResult.area_id == area.id,
                                                       ItemResult.item_code.in_(["k01", "k04"]))).all()
        for r in old:  # what the mean's t interval stored
            r.ci_low, r.ci_high = r.estimate - 0.2, r.estimate + 0.2
        shown = rates(session, run, area, run_definition(run))
        assert {r.question for r in shown} and all(0 <= r.ci_low <= r.estimate <= r.ci_high <= 1 for r in shown)

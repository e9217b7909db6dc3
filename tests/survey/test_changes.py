"""Changes between waves on pages, in the estimates export and in the PDF: a community that truly
changed is marked significant, a stable one is not, a small one is compared on its shrunk estimates."""
from __future__ import annotations

import csv
import io
import re
import secrets
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from analysis.changes import bh_adjust
from survey import db
from survey.areas import import_areas
from survey.auth import create_user
from survey.links import make_community_links
from survey.models import AnalysisRun, Area, AreaResult, Wave
from survey.questionnaires import definition_of
from survey.results import run_analysis
from survey.submissions import build_response
from survey.waves import create_wave
from tests.conftest import BACKENDS, PASSWORD, dispose, make_app
from tests.conftest import logged_in as login
from tests.reports.test_pdf import poppler

CHANGED, STABLE, SMALL = "D1S1C1", "D1S1C2", "D2S2C3"
AREAS = ["code,name,level,parent_code,adult_population,responsible_unit", "C,比较市,city,,,"]
for d in (1, 2):
    AREAS.append(f"D{d},{'东西'[d - 1]}区,district,C,,")
    for s in (1, 2):
        AREAS.append(f"D{d}S{s},{'一二三四'[(d - 1) * 2 + s - 1]}街道,street,D{d},,")
        for c in (1, 2, 3):
            number = ((d - 1) * 2 + s - 1) * 3 + c - 1
            AREAS.append(f"D{d}S{s}C{c},{'甲乙丙丁戊己庚辛壬癸子丑'[number]}社区,community,D{d}S{s},{3000 + 500 * number},")
AREAS_CSV = "\n".join(AREAS) + "\n"


def _answers(definition, rng, mean: float) -> dict[str, str]:
    answers = {"sex": "F" if rng.random() < 0.5 else "M", "age_band": str(rng.choice(["18-29", "30-44", "45-59", "60+"])),
               "resident": "Y"}
    person = mean + rng.normal(0, 6)
    for item in definition.scored_items:
        value = person + rng.normal(0, 10)
        answers[item.code] = str(int(np.clip(np.rint((value - 20) / 20), 0, 4)) + 1)
    for item in definition.rate_items:
        answers[item.code] = "Y" if rng.random() < 0.8 else "N"
    return answers


def build_two_waves(session) -> dict[str, int]:
    """Two waves of the citizen questionnaire, both analysed: CHANGED goes from about 66 to 88,
    STABLE and the others keep their mean, SMALL has 8 answers a wave. Returns the waves' ids."""
    import_areas(session, AREAS_CSV)
    now = datetime.now(UTC)
    first = create_wave(session, "春季测评", now - timedelta(days=150), now - timedelta(days=100), ["citizen"])
    second = create_wave(session, "秋季测评", now - timedelta(days=20), now + timedelta(days=30), ["citizen"])
    links = {link.area.code: link for link in make_community_links(session, "citizen")}
    rng = np.random.default_rng(14)
    means = {code: float(rng.normal(85, 3)) for code in links}
    for wave, shift in ((first, -11.0), (second, 11.0)):
        version = wave.versions[0]
        definition = definition_of(version)
        for code, link in sorted(links.items()):
            mean = means[code] + (shift if code == CHANGED else 0.0)
            for _ in range(8 if code == SMALL else 45):
                submitted = wave.opens_at + timedelta(days=float(rng.uniform(1, 20)))
                session.add(build_response(
                    definition, _answers(definition, rng, mean), key=f"t-{secrets.token_hex(10)}", wave_id=wave.id,
                    version_id=version.id, link_id=link.id, area_id=link.area_id, channel="qr",
                    started_at=submitted - timedelta(seconds=float(rng.uniform(150, 300))), submitted_at=submitted))
        session.flush()
        run_analysis(session, wave, include_flagged=True)
    create_user(session, "city", PASSWORD, "city", "C")
    create_user(session, "east", PASSWORD, "district", "D2")
    return {"first": first.id, "second": second.id}


@pytest.fixture(scope="module", params=BACKENDS)
def waves(request, tmp_path_factory):
    app = make_app(request.param, tmp_path_factory.mktemp("changes"))
    with app.app_context(), db.write_transaction() as session:
        ids = build_two_waves(session)
    yield app, ids
    dispose(app)


def _text(html: str) -> str:
    """Return a page's text without its tags (what a reader sees, spaces kept)."""
    return re.sub(r"<[^>]+>", "", html)


def _ids(session) -> dict[str, Area]:
    return {a.code: a for a in session.scalars(select(Area))}


def test_the_changed_community_is_significant_the_stable_one_not_the_small_one_on_shrunk_estimates(waves):
    from survey.reading.wave_changes import comparison, previous_run

    app, ids = waves
    with app.app_context():
        session = db.session()
        runs = {r.wave_id: r for r in session.scalars(select(AnalysisRun))}
        run = runs[ids["second"]]
        assert previous_run(session, run).id == runs[ids["first"]].id
        assert previous_run(session, runs[ids["first"]]) is None
        found = comparison(session, run)
        areas = _ids(session)
        changed, stable, small = (found.area(areas[c]) for c in (CHANGED, STABLE, SMALL))
        assert found.label == "比上轮"
        assert changed.significant and 15 < changed.change < 30 and changed.basis == "direct", changed
        assert changed.ci_low > 0 and changed.q_value < 0.001
        assert not stable.significant and abs(stable.change) < 5 and stable.basis == "direct", stable
        assert small.basis == "eb" and (small.n_before, small.n_after) == (8, 8)
        small_before = session.scalars(select(AreaResult).where(
            AreaResult.run_id == runs[ids["first"]].id, AreaResult.area_id == areas[SMALL].id)).one()
        assert small.before == pytest.approx(small_before.eb_estimate) != pytest.approx(small_before.estimate)
        # One family: the twelve communities; their q-values are BH of their p-values.
        community = {a.id for a in areas.values() if a.level == "community"}
        family = [c for area_id, c in found.areas.items() if area_id in community]
        assert len(family) == 12
        assert [c.q_value for c in family] == pytest.approx(bh_adjust([c.p_value for c in family]).tolist())
        assert sum(c.significant for c in family) == 1
        # The city, its districts and streets have their change; the city moved by CHANGED's share only.
        assert found.area(areas["C"]).basis == "direct" and 0 < found.area(areas["C"]).change < changed.change
        assert found.area(areas["D1"]) is not None and found.area(areas["D1S1"]) is not None
        # Topics: every scored item of every area, in whole-level families; CHANGED's topics mostly marked.
        topics = {code: c for (area_id, code), c in found.topics.items() if area_id == areas[CHANGED].id}
        assert len(topics) == 10 and sum(c.significant for c in topics.values()) >= 8
        assert not any(c.significant for (area_id, _), c in found.topics.items() if area_id == areas[STABLE].id)
        chosen = comparison(session, run, ids["first"])
        assert chosen.label == "比上轮" and chosen.area(areas[CHANGED]).change == changed.change
        assert comparison(session, run, ids["second"]) is None


def test_city_dashboard_shows_changes_marks_and_the_fdr_sentence(waves):
    app, ids = waves
    client = app.test_client()
    login(client, "city")
    html = client.get("/office/area/C").get_data(as_text=True)
    assert "比上轮（春季测评 → 秋季测评）" in html
    assert "Benjamini–Hochberg" in html and "错误发现率" in html
    # The significant community is listed with "+xx.x 显著"; the districts' table has a 比上轮 column.
    section = html[html.index('id="changes"'):html.index("重点关注社区")]
    assert re.search(r"甲社区</a>.*?<summary>\+\d+\.\d 显著</summary>", section, re.S)
    assert "乙社区" not in section  # stable: not among the significant ones
    assert re.search(r"东区</a>.*?<summary>[+−]?\d+\.\d( 显著)?</summary><span class=\"detail\">[\d.]+→[\d.]+<br>95%区间", section, re.S)
    # The headline KPI says the city's change.
    assert re.search(r"比上轮 [+−]?\d+\.\d，(不)?显著", html)
    # A district account sees its own district's communities only, with the city-wide marks.
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.7.0.2"
    login(other, "east")
    east = other.get("/office/area/D2").get_data(as_text=True)
    assert "甲社区" not in east and "本区域没有变化显著的社区" in east


def test_community_pages_say_changed_and_significant_or_not(waves):
    app, ids = waves
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.7.0.3"
    login(client, "city")
    changed = client.get(f"/office/community/{CHANGED}").get_data(as_text=True)
    assert re.search(r"比上轮 \+\d+\.\d，显著", _text(changed)), changed
    assert "Benjamini–Hochberg" in changed and "直接估计" in changed
    assert len(re.findall(r"<summary>\+\d+\.\d 显著</summary>", changed)) >= 8  # the topics' column
    stable = client.get(f"/office/community/{STABLE}").get_data(as_text=True)
    assert re.search(r"比上轮 [+−]?\d+\.\d，不显著", _text(stable))
    small = client.get(f"/office/community/{SMALL}").get_data(as_text=True)
    assert "修正估计（样本少，收缩后）" in small
    # A chosen wave to compare with; the run's own wave, or one without a run, is not found.
    assert client.get(f"/office/community/{CHANGED}?compare={ids['first']}").status_code == 200
    assert client.get(f"/office/community/{CHANGED}?compare={ids['second']}").status_code == 404
    assert client.get("/office/area/C?compare=99999").status_code == 404
    # The first wave has no earlier one: no change shown, pages still work.
    first = client.get(f"/office/community/{CHANGED}?wave={ids['first']}").get_data(as_text=True)
    assert "比上轮" not in first and "历次测评" in first


def test_estimates_export_has_the_change_columns(waves):
    app, ids = waves
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.7.0.4"
    login(client, "city")
    body = client.get("/office/area/C/export/estimates.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(body)))
    header = rows[0]  # the small tables carry one row of Chinese labels
    for name in ("对比轮次", "变化比较依据", "对比轮估计", "变化（本轮减对比轮）", "变化95%下限", "变化95%上限", "变化p值",
                 "变化q值（BH校正）", "变化显著（FDR 5%）"):
        assert name in header, name
    records = [dict(zip(header, r)) for r in rows[1:]]
    by_code = {r["区域编码"]: r for r in records}
    assert len(records) == 12
    changed = by_code[CHANGED]
    assert changed["变化显著（FDR 5%）"] == "是" and float(changed["变化（本轮减对比轮）"]) > 15
    assert float(changed["变化95%下限"]) < float(changed["变化（本轮减对比轮）"]) < float(changed["变化95%上限"])
    assert float(changed["变化q值（BH校正）"]) < 0.001
    assert by_code[STABLE]["变化显著（FDR 5%）"] == "否"
    assert by_code[SMALL]["变化比较依据"].startswith("修正估计")
    assert {r["对比轮次"] for r in records} == {"春季测评"}
    # XLSX (and the other formats) carry the same columns.
    book = load_workbook(io.BytesIO(client.get("/office/area/C/export/estimates.xlsx").data), read_only=True)
    assert "变化显著（FDR 5%）" in next(book.active.iter_rows(values_only=True))
    # SPSS and Stata files too, also when every change is empty (the first wave).
    for fmt in ("sav", "dta"):
        for query in ("", f"?wave={ids['first']}"):
            download = client.get(f"/office/area/C/export/estimates.{fmt}{query}")
            assert download.status_code == 200 and len(download.data) > 1000, (fmt, query)
    # The first wave's export keeps the columns, empty.
    first = client.get(f"/office/area/C/export/estimates.csv?wave={ids['first']}").get_data(as_text=True).lstrip("\ufeff")
    first_rows = list(csv.reader(io.StringIO(first)))
    assert first_rows[0] == header and all(r[header.index("变化（本轮减对比轮）")] == "" for r in first_rows[1:])


def test_pdf_area_report_gives_the_change(waves):
    app, ids = waves
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.7.0.5"
    login(client, "city")
    text = poppler("pdftotext", client.get("/office/area/D1/report.pdf").data)
    assert "比上轮" in text and "Benjamini–Hochberg" in text
    assert re.search(r"\+\d+\.\d 显著", text), text
    assert re.search(r"95%区间 [+−]?\d+\.\d 至\s*[+−]?\d+\.\d", text)


def test_the_newest_run_of_the_previous_wave_of_the_same_questionnaire_is_compared(waves):
    """The newest run of a wave is the one compared, and a wave without a citizen run is skipped."""
    from survey.reading.wave_changes import previous_run

    app, ids = waves
    with app.app_context():
        session = db.session()
        second = session.scalars(select(AnalysisRun).where(AnalysisRun.wave_id == ids["second"])).one()
        between = Wave(name="只有未成年人问卷的一轮", opens_at=second.wave.opens_at - timedelta(days=50),
                       closes_at=second.wave.opens_at - timedelta(days=40))
        session.add(between)
        session.flush()
        session.add(AnalysisRun(wave_id=between.id, questionnaire_code="minor", respondents=1, summary={}))
        session.flush()
        assert previous_run(session, second).wave_id == ids["first"]
        first = session.scalars(select(AnalysisRun).where(AnalysisRun.wave_id == ids["first"])).one()
        again = AnalysisRun(wave_id=first.wave_id, questionnaire_code="citizen", respondents=1, summary={})
        session.add(again)
        session.flush()
        assert previous_run(session, second).id == again.id  # the newest run of the earlier wave
        session.rollback()


@pytest.mark.e2e
def test_community_page_with_its_change_on_a_phone(waves, browser):
    """390x844 Chromium: the change headline, the topics' 比上轮 column opened by a tap, the dashboard's
    比上轮 card; no sideways page scroll."""
    import threading

    from werkzeug.serving import make_server

    from tests.conftest import PHONE, shot
    from tests.survey.test_e2e_office_phone import assert_fits_a_phone

    app, ids = waves
    server_name, app.config["SERVER_NAME"] = app.config["SERVER_NAME"], None
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        context = browser.new_context(**PHONE)
        page = context.new_page()
        page.goto(f"{base}/office/login")
        page.get_by_label("用户名").fill("city")
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url("**/office/area/C")
        page.goto(f"{base}/office/community/{CHANGED}")
        headline = page.locator(".change-kpi .v")
        assert re.fullmatch(r"比上轮\s\+\d+\.\d，显著", headline.inner_text())
        assert page.locator("script").count() == 0
        cell = page.locator("details.change").first
        assert not cell.locator(".detail").is_visible()
        cell.locator("summary").tap()
        assert cell.locator(".detail").is_visible() and "95%区间" in cell.locator(".detail").inner_text()
        assert page.get_by_text("Benjamini–Hochberg").is_visible()
        assert_fits_a_phone(page, "community page with changes")
        shot(page, "40-phone-community-changes")
        page.goto(f"{base}/office/area/C")
        section = page.locator("#changes")
        assert section.get_by_text("甲社区").is_visible() and section.get_by_text("Benjamini–Hochberg").is_visible()
        assert_fits_a_phone(page, "dashboard with changes")
        section.scroll_into_view_if_needed()
        shot(page, "41-phone-dashboard-changes")
        context.close()
    finally:
        server.shutdown()
        thread.join(timeout=5)
        app.config["SERVER_NAME"] = server_name

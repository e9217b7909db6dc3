"""Office pages: login, scoping of every staff endpoint, dashboard content, exports, reports."""
from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from survey import db
from survey.auth import create_user
from survey.models import Answer, Area, ExportLog, School, Site, User
from tests.conftest import BACKENDS, PASSWORD, client_from_own_address, dispose, make_app
from tests.conftest import office_login as login

USERS = {"city": ("city", "C"), "district": ("d1", "D01"), "street": ("s1", "D01S1"), "community": ("c1", "D01S1C1")}
OUTSIDE = {"city": None, "district": "D02", "street": "D01S2", "community": "D01S1C2"}
ENDPOINTS = [
    "/office/area/{code}",
    "/office/community/{code}",
    "/office/area/{code}/problems",
    "/office/area/{code}/problems?format=csv",
    "/office/area/{code}/export/responses.csv",
    "/office/area/{code}/export/estimates.xlsx",
    "/office/area/{code}/export/responses.sav",
    "/office/area/{code}/problems?format=dta",
    "/office/area/{code}/exports",
    "/office/area/{code}/report.pdf",
    "/office/area/{code}/qr.pdf",
    "/rectification/area/{code}/new",
    "/office/map/{code}",
    "/office/area/{code}/sites",
]
# Pages that take no area: a unit account (role unit) gets none of them, nor any page above.
OFFICE_ONLY = ["/rectification/tasks", "/rectification/units", "/rectification/units/new", "/office/fieldwork",
               "/office/questionnaires/", "/office/map", "/office/site/D01S1C1-P1", "/office/vendor/plotly.min.js"]


@pytest.fixture(scope="module", params=BACKENDS)
def demo(request, tmp_path_factory):
    """The demo city with 500 responses analysed, and one account per role (built once per module).

    Tests here only read, or change rows no other test looks at.
    """
    app = make_app(request.param, tmp_path_factory.mktemp("office"))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo", "--respondents", "500"]).exit_code == 0
    assert runner.invoke(args=["analyze"]).exit_code == 0
    with app.app_context(), db.write_transaction() as session:
        for role, (username, code) in USERS.items():
            create_user(session, username, PASSWORD, role, code)
    yield app
    dispose(app)


@pytest.fixture
def client(demo):
    """A client with its own address, so the login rate limit of one test does not hit another."""
    client = client_from_own_address(demo, "10.9")
    return client


def test_anonymous_visitors_are_sent_to_login(demo, client):
    for endpoint in ENDPOINTS:
        page = client.get(endpoint.format(code="C"))
        assert page.status_code == 302 and "/office/login" in page.headers["Location"], endpoint


@pytest.mark.parametrize("role", list(USERS))
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_role_sees_its_area_and_nothing_outside(demo, client, role, endpoint):
    username, own = USERS[role]
    assert login(client, username).status_code == 302
    inside = client.get(endpoint.format(code=own), follow_redirects=True)
    assert inside.status_code == 200, (role, endpoint)
    if OUTSIDE[role]:
        outside = client.get(endpoint.format(code=OUTSIDE[role]), follow_redirects=True)
        assert outside.status_code == 404, (role, endpoint)
    if role != "city":
        assert client.get(endpoint.format(code="C"), follow_redirects=True).status_code == 404


def district_communities(app, code="D01"):
    with app.app_context():
        district = db.session().scalars(select(Area).where(Area.code == code)).one()
        return {a.code: a.name for a in db.session().scalars(select(Area).where(Area.level == "community", Area.path.startswith(district.path)))}


def test_district_user_sees_only_their_district_in_pages_exports_and_pdf(demo, client):
    login(client, "d1")
    own = district_communities(demo, "D01")
    others = district_communities(demo, "D02") | district_communities(demo, "D03")
    page = client.get("/office/area/D01").get_data(as_text=True)
    problems = client.get("/office/area/D01/problems").get_data(as_text=True)
    for name in others.values():
        assert name not in page and name not in problems
    responses = list(csv.reader(io.StringIO(client.get("/office/area/D01/export/responses.csv").get_data().decode("utf-8-sig"))))
    assert responses[0][:3] == ["id", "community_code", "community"]
    assert responses[1][:3] == ["编号", "社区编码", "社区"]
    assert responses[2:] and {row[1] for row in responses[2:]} <= set(own)
    workbook = load_workbook(io.BytesIO(client.get("/office/area/D01/export/estimates.xlsx").data))
    codes = {row[0] for row in workbook.active.iter_rows(min_row=2, values_only=True)}
    assert codes and codes <= set(own)
    pdf_text = pdftotext(client.get("/office/area/D01/report.pdf").data)
    assert "东城区群众满意度测评报告" in pdf_text
    assert any(name in pdf_text for name in own.values())
    assert not any(name in pdf_text for name in others.values())


@pytest.mark.parametrize("account", [("grid1", "grid", "D01S1C1", None), ("unit1", "unit", "C", "市教育局")])
@pytest.mark.parametrize("endpoint", ENDPOINTS + OFFICE_ONLY + ["/office/area/{code}/schools"])
def test_school_grid_and_unit_accounts_see_no_office_page(demo, client, endpoint, account):
    username, role, code, unit = account
    with demo.app_context(), db.write_transaction() as session:
        if not session.scalar(select(User).where(User.username == username)):
            create_user(session, username, PASSWORD, role, code, unit_name=unit)
    login(client, username)
    # D01S1C2 is a community of the unit 市教育局: helping it opens its results on the unit's own pages only.
    for place in ("D01S1C1", "D01S1C2", "C"):
        assert client.get(endpoint.format(code=place)).status_code == 403, (username, endpoint, place)


def pdftotext(data: bytes) -> str:
    assert shutil.which("pdftotext"), "poppler-utils is missing: sudo apt-get install poppler-utils"
    return subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True).stdout.decode()


def test_city_dashboard_shows_points_pass_probability_heatmap_and_flags(demo, client):
    login(client, "city")
    html = client.get("/office/area/C").get_data(as_text=True)
    for text in ("问卷预计得分 / 20分", "模拟第三方测评", "分项满意度热力图", "重点关注社区", "创文知晓率", "活动参与率"):
        assert text in html, text
    # The heatmap drills down to districts; cells carry n and the interval on hover.
    assert 'href="/office/area/D01' in html
    assert re.search(r'title="东城区：\d+\.\d分，n=\d+，95%区间 \d+\.\d–\d+\.\d"', html)
    # The points-lost chart is inline SVG drawn on the server: no script on the page at all.
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="cost"' in html and "<script" not in html
    assert "cdn" not in html.lower()


def test_community_page_escapes_comments_and_counts_terms(demo, client):
    with demo.app_context(), db.write_transaction() as session:
        answer = session.scalars(select(Answer).where(Answer.item_code == "comment").order_by(Answer.id).limit(1)).one()
        answer.text = "<script>alert('x')</script> 停车位太少，停车位乱收费"
        community = session.get(Area, answer.response.area_id).code
    login(client, "city")
    html = client.get(f"/office/community/{community}").get_data(as_text=True)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    # The terms are the ones the analysis counted and stored with the run (no jieba in a request):
    # the comment edited after it is listed, its words are counted at the next refresh (test_refresh).
    with demo.app_context():
        from survey.models import AnalysisRun

        stored = db.session().scalars(select(AnalysisRun)).one().summary["terms"][community]
    assert stored and re.findall(r'<span class="term">(\S+) <b>(\d+)</b></span>', html) == [(w, str(n)) for w, n in stored]


def test_problem_list_is_lowest_first_and_exports_are_logged(demo, client):
    login(client, "s1")
    html = client.get("/office/area/D01S1/problems").get_data(as_text=True)
    scores = [float(s) for s in re.findall(r'<td class="num">(\d+\.\d)</td><td class="num">\d+\.\d–', html)]
    assert scores == sorted(scores) and all(s <= 80.0 for s in scores)  # shown rounded
    exported = client.get("/office/area/D01S1/problems?format=xlsx")
    assert exported.headers["Content-Disposition"].startswith("attachment; filename*=UTF-8''")
    rows = list(load_workbook(io.BytesIO(exported.data)).active.iter_rows(values_only=True))
    assert rows[0][0] == "序号" and len(rows) - 1 == len(scores)
    with demo.app_context():
        logged = db.session().execute(select(ExportLog.what, ExportLog.file_format, ExportLog.rows, User.username).join(User)).all()
    assert ("problems", "xlsx", len(scores), "s1") in logged


def test_exports_neutralise_formulas(demo, client):
    with demo.app_context(), db.write_transaction() as session:
        answer = session.scalars(select(Answer).where(Answer.item_code == "comment").order_by(Answer.id.desc()).limit(1)).one()
        answer.text = '=HYPERLINK("http://evil","点我")'
    login(client, "city")
    body = client.get("/office/area/C/export/responses.csv").get_data().decode("utf-8-sig")
    assert "'=HYPERLINK" in body
    assert not re.search(r'(^|,)"?=HYPERLINK', body, re.M)


def test_login_needs_the_csrf_token(demo, client):
    no_token = client.post("/office/login", data={"username": "d1", "password": PASSWORD})
    assert no_token.status_code == 400 and "页面已过期" in no_token.get_data(as_text=True)
    assert login(client, "d1").status_code == 302


def test_login_attempts_are_rate_limited(demo, client):
    replies = [login(client, "nobody", "x") for _ in range(12)]
    assert [r.status_code for r in replies[:10]] == [401] * 10
    assert replies[-1].status_code == 429
    # The login page again, saying 登录 (not 提交) and how long to wait; the form is there to try later.
    html = replies[-1].get_data(as_text=True)
    assert "登录太频繁了，请" in html and ("秒后再登录" in html or "分钟后再登录" in html) and "提交太频繁" not in html
    assert 'name="password"' in html and 0 < int(replies[-1].headers["Retry-After"]) <= 60


def test_logout_needs_a_post_with_csrf(demo, client):
    login(client, "city")
    assert client.get("/office/logout").status_code == 405
    page = client.get("/office/area/C").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    client.post("/office/logout", data={"csrf_token": token})
    assert client.get("/office/area/C").status_code == 302


def test_create_user_enforces_roles_levels_and_password_policy(demo):
    runner = demo.test_cli_runner()
    weak = runner.invoke(args=["create-user", "x1", "--role", "district", "--area", "D01", "--password", "12345678"])
    assert weak.exit_code == 1 and "至少10个字符" in weak.output
    wrong_level = runner.invoke(args=["create-user", "x2", "--role", "district", "--area", "D01S1", "--password", PASSWORD])
    assert wrong_level.exit_code == 1 and "district 账号需绑定 district 级区域" in wrong_level.output
    ok = runner.invoke(args=["create-user", "x3", "--role", "street", "--area", "D01S1", "--password", PASSWORD])
    assert ok.exit_code == 0, ok.output
    with demo.app_context():
        stored = db.session().scalars(select(User).where(User.username == "x3")).one()
        assert stored.password_hash != PASSWORD and stored.password_hash.startswith(("scrypt:", "pbkdf2:"))
        assert db.session().scalar(select(func.count()).select_from(User).where(User.username == "x3")) == 1


def test_rate_intervals_are_the_logit_interval_and_stay_within_0_and_100_percent(demo, client):
    """Rates (0/1 items) store R's svyciprop logit interval; pages and PDFs show it, never past 100%."""
    from scipy.stats import t

    from analysis.estimates import proportion_interval
    from survey.models import AnalysisRun, ItemResult, Response
    from survey.questionnaires import definition_of

    with demo.app_context():
        session = db.session()
        run = session.scalars(select(AnalysisRun).where(AnalysisRun.questionnaire_code == "citizen")).first()
        versions = [v for v in run.wave.versions if v.questionnaire.code == "citizen"]
        codes = {i.code for v in versions for i in definition_of(v).rate_items}
        rows = session.execute(
            select(ItemResult, Area).join(Area, Area.id == ItemResult.area_id)
            .where(ItemResult.run_id == run.id, ItemResult.item_code.in_(codes))
        ).all()
        assert len(rows) > 50
        # The design's respondents per community (the degrees of freedom are that minus one).
        scored = dict(session.execute(
            select(Response.area_id, func.count()).where(Response.wave_id == run.wave_id, Response.score.is_not(None),
                                                         Response.questionnaire_version_id.in_([v.id for v in versions]))
            .group_by(Response.area_id)
        ).all())
        past_100 = 0
        for r, area in rows:
            assert 0 <= r.ci_low <= r.estimate <= r.ci_high <= 1, (area.code, r.item_code)
            if area.level == "community" and 0 < r.estimate < 1 and area.id in scored and r.n == scored[area.id]:
                low, high = proportion_interval([r.estimate], [r.se], [scored[area.id]], [r.n])
                assert (r.ci_low, r.ci_high) == pytest.approx((low[0], high[0]), abs=1e-9)
            if r.n >= 2 and r.estimate + t.ppf(0.975, r.n - 1) * r.se > 1:
                past_100 += 1  # the mean's t interval would have gone above 100%
        assert past_100 > 0
        def worst(level: str) -> str:
            return max((pair for pair in rows if pair[1].level == level), key=lambda pair: pair[0].estimate + pair[0].se)[1].code

        street, community = worst("street"), worst("community")
    login(client, "city")
    for html in (client.get(f"/office/area/{street}").get_data(as_text=True),
                 pdftotext(client.get(f"/office/area/{community}/report.pdf").data)):
        shown = [float(x) for pair in re.findall(r"(\d+\.\d)%\s*–\s*(\d+\.\d)%", html) for x in pair]
        assert shown and max(shown) <= 100.0


def test_undecided_communities_show_data_insufficient_with_answers_needed(demo, client):
    from survey.models import AnalysisRun, AreaResult

    with demo.app_context():
        session = db.session()
        run = session.scalars(select(AnalysisRun)).one()
        undecided = session.execute(
            select(Area.code, Area.name, Area.path).join(AreaResult, AreaResult.area_id == Area.id)
            .where(AreaResult.status == "undecided", Area.level == "community")
        ).all()
        assert undecided, "the demo city's small communities should include an undecided one"
        code, name, _ = undecided[0]
        assert run.summary["answers_needed"][code] >= 1
        district = code[:3]
    login(client, "city")
    page = client.get(f"/office/community/{code}").get_data(as_text=True)
    assert "数据不足" in page
    pdf_text = pdftotext(client.get(f"/office/area/{district}/report.pdf").data)
    assert "数据不足" in pdf_text


def test_pages_are_compressed_for_browsers_that_accept_it_and_downloads_are_not(demo, client):
    import gzip

    login(client, "city")
    plain = client.get("/office/area/C")
    assert "Content-Encoding" not in plain.headers and "分项满意度热力图" in plain.get_data(as_text=True)
    page = client.get("/office/area/C", headers={"Accept-Encoding": "gzip"})
    assert page.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in page.headers["Vary"]
    html = gzip.decompress(page.data).decode()
    assert "分项满意度热力图" in html and len(page.data) < len(plain.data) / 2
    css = client.get("/static/style.css", headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert css.headers["Content-Encoding"] in {"zstd", "br"}
    css.close()
    # PDFs and XLSX are compressed already and CSV downloads go out as they are: never re-encoded.
    for path, start in [("/office/area/C/report.pdf", b"%PDF"), ("/office/area/C/export/estimates.xlsx", b"PK"),
                        ("/office/area/C/problems?format=csv", "\ufeff".encode())]:
        download = client.get(path, headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
        assert "Content-Encoding" not in download.headers and download.data.startswith(start), path


def test_heatmap_scores_open_by_tap_to_n_and_interval_without_javascript(demo, client):
    login(client, "city")
    html = client.get("/office/area/D01").get_data(as_text=True)
    cells = re.findall(r'<details><summary>(\d+\.\d)</summary><span class="detail">n=(\d+)<br>(\d+\.\d)–(\d+\.\d)</span></details>',
                       html)
    assert len(cells) >= 10
    assert all(float(low) <= float(score) <= float(high) for score, _, low, high in cells)
    assert "<script" not in html and "鼠标悬停" not in html


def test_qr_sheets_keep_each_questionnaire_and_each_audience_together(demo, client):
    """Issue 26 item 7: a sheet lists one questionnaire's codes after another (or only ?q='s), and a
    school's parent cards before its pupil cards, never interleaved."""
    from survey.questionnaires import questionnaire_named
    from survey.reading import reporting

    with demo.app_context():
        session = db.session()
        city = session.scalar(select(Area).where(Area.code == "C"))
        details = [detail for _, detail, _ in reporting.qr_entries(session, city)]
        kinds = [d.split(" · ")[0] for d in details]
        assert kinds == sorted(kinds, key=kinds.index)  # each kind in one run
        citizen = questionnaire_named(session, "citizen")
        only = reporting.qr_entries(session, city, questionnaire=citizen)
        assert only and all(detail.startswith(citizen.title) or detail.startswith("家长扫码") for _, detail, _ in only)
        school = session.scalars(select(School).order_by(School.name)).first()
        audiences = [detail for _, detail, _ in reporting.school_qr_entries(session, school)]
        assert audiences == sorted(audiences, key=lambda d: not d.startswith("家长")) and len(set(audiences)) == 2
    login(client, "city")
    assert client.get("/office/area/C/qr.pdf?q=citizen").mimetype == "application/pdf"
    assert client.get("/office/area/C/qr.pdf?q=nothing").status_code == 404


@pytest.mark.parametrize("role", list(USERS))
def test_every_role_sees_the_map_and_sites_of_its_area_and_nothing_outside(demo, client, role):
    """The demo city has outlines and sites: each office's map draws exactly its communities, its site pages open."""
    username, own = USERS[role]
    login(client, username)
    with demo.app_context():
        session = db.session()
        area = session.scalars(select(Area).where(Area.code == own)).one()
        mine = set(session.scalars(select(Area.code).where(Area.level == "community", Area.path.startswith(area.path))))
        sites = {s.code: s.area.code for s in session.scalars(select(Site))}
    html = client.get("/office/map").get_data(as_text=True)
    assert set(re.findall(r'class="area" aria-label="[^"]*" data-code="(\w+)"', html)) == mine
    assert set(re.findall(r'href="/office/site/([\w-]+)"', html)) == {s for s, c in sites.items() if c in mine}
    for site, community in list(sites.items())[::7]:
        assert client.get(f"/office/site/{site}").status_code == (200 if community in mine else 404), (role, site)

"""The fieldwork monitor for offices: scoping, the numbers against the stored analysis, the CSV export."""
from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from survey import db
from survey.auth import create_user
from survey.models import AnalysisRun, Area, AreaResult, ExportLog, Response
from survey.reading.fieldwork import fieldwork_plan
from tests.conftest import BACKENDS, PASSWORD, client_from_own_address, dispose, make_app
from tests.conftest import logged_in as login

USERS = {"boss": ("city", "C"), "d1": ("district", "D01"), "s1": ("street", "D01S1"), "s2": ("street", "D01S2")}
NEW = "D01S1C1"  # a community of street D01S1 whose answers the fixture deletes: none yet


@pytest.fixture(scope="module", params=BACKENDS)
def demo(request, tmp_path_factory):
    """The demo city with 500 responses analysed, a community without answers, and office accounts."""
    app = make_app(request.param, tmp_path_factory.mktemp("fieldwork"))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo", "--respondents", "500"]).exit_code == 0
    with app.app_context(), db.write_transaction() as session:
        new = session.scalars(select(Area).where(Area.code == NEW)).one()
        for response in session.scalars(select(Response).where(Response.area_id == new.id)):
            session.delete(response)
        for username, (role, code) in USERS.items():
            create_user(session, username, PASSWORD, role, code)
    assert runner.invoke(args=["analyze"]).exit_code == 0
    yield app
    dispose(app)


@pytest.fixture
def client(demo):
    client = client_from_own_address(demo, "10.8")
    return client


def communities(app, code):
    with app.app_context():
        session = db.session()
        area = session.scalars(select(Area).where(Area.code == code)).one()
        return {a.code: a.name for a in session.scalars(
            select(Area).where(Area.level == "community", Area.path.startswith(area.path)))}


def read_csv(response):
    assert response.data.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))


def test_anonymous_visitors_are_sent_to_login(demo, client):
    for url in ("/office/fieldwork", "/office/fieldwork.csv"):
        response = client.get(url)
        assert response.status_code == 302 and "/office/login" in response.headers["Location"]


def test_a_street_office_sees_its_own_communities_only(demo, client):
    login(client, "s1")
    own, other = communities(demo, "D01S1"), communities(demo, "D01S2")
    assert own and other and NEW in own
    html = client.get("/office/fieldwork").get_data(as_text=True)
    assert all(name in html for name in own.values())
    assert not any(name in html for name in other.values())
    for url in ("/office/fieldwork?area=D01S2", "/office/fieldwork.csv?area=D01S2", "/office/fieldwork?area=D01",
                "/office/fieldwork?area=C", "/office/fieldwork?area=nowhere"):
        assert client.get(url).status_code == 404, url
    rows = read_csv(client.get("/office/fieldwork.csv"))
    assert {r[1] for r in rows[1:]} == set(own)


def test_a_district_office_can_narrow_to_a_street(demo, client):
    login(client, "d1")
    html = client.get("/office/fieldwork?area=D01S2").get_data(as_text=True)
    own, other = communities(demo, "D01S2"), communities(demo, "D01S1")
    assert all(name in html for name in own.values()) and not any(name in html for name in other.values())
    assert client.get("/office/fieldwork?area=D02").status_code == 404


def test_the_office_navigation_links_to_the_page(demo, client):
    login(client, "boss")
    html = client.get("/office/area/C").get_data(as_text=True)
    assert 'href="/office/fieldwork"' in html and 'href="/office/fieldwork?area=C"' in html


def test_the_numbers_follow_the_stored_analysis_and_the_counts(demo):
    with demo.app_context():
        session = db.session()
        street = session.scalars(select(Area).where(Area.code == "D01")).one()
        plan = fieldwork_plan(session, street)
        run = session.scalars(select(AnalysisRun).order_by(AnalysisRun.id.desc())).first()
        stored = {a.code: r for r, a in session.execute(
            select(AreaResult, Area).join(Area, Area.id == AreaResult.area_id)
            .where(AreaResult.run_id == run.id, AreaResult.level == "community")).all()}
        needed = run.summary["answers_needed"]
        citizen = [v.id for v in plan.wave.versions if v.questionnaire.code == "citizen"]
        counts = dict(session.execute(
            select(Area.code, func.count()).select_from(Response).join(Area, Area.id == Response.area_id)
            .where(Response.wave_id == plan.wave.id, Response.questionnaire_version_id.in_(citizen),
                   Response.score.is_not(None), ~Response.flag_speeder, ~Response.flag_straightline,
                   ~Response.flag_repeat_device).group_by(Area.code)).all())
    assert plan.run is not None and plan.run.id == run.id
    rows = {r.community.code: r for r in plan.rows}
    assert set(rows) == set(communities(demo, "D01"))
    for code, row in rows.items():
        assert row.answers == counts.get(code, 0), code
        if code == NEW:
            continue
        assert row.status == stored[code].status, code
        # the planner's number (80% probability of deciding), stored with the run at the same count
        assert row.answers_to_decide == (stored[code].answers_to_decide if row.status == "undecided" else 0), code
        assert (needed.get(code) is not None) == (row.status == "undecided"), code
    # The community without answers comes first, and is short of every group.
    assert plan.rows[0].community.code == NEW and plan.rows[0].answers == 0 and plan.rows[0].status == "no_data"
    assert plan.rows[0].answers_to_decide is None and plan.rows[0].answers_for_precision > 0
    assert {g.label for g in plan.rows[0].groups} >= {"男", "女", "60岁及以上"}
    assert [r.city_rank for r in plan.rows] == sorted(r.city_rank for r in plan.rows)


def test_sorting_works_without_javascript(demo, client):
    login(client, "d1")
    html = client.get("/office/fieldwork?sort=answers").get_data(as_text=True)
    answers = [int(x) for x in re.findall(r'</span></td>\s*<td class="num">(\d+)</td>', html)]
    assert len(answers) == len(communities(demo, "D01")) and answers == sorted(answers) and answers[0] == 0
    assert '<strong aria-current="true">答卷最少</strong>' in html
    assert 'href="/office/fieldwork?area=D01&amp;sort=decide"' in html
    assert client.get("/office/fieldwork?sort=nonsense").status_code == 200


def test_csv_export_has_chinese_headers_every_community_and_is_logged(demo, client):
    login(client, "s1")
    with demo.app_context():
        before = db.session().scalar(select(func.count()).select_from(ExportLog).where(ExportLog.what == "fieldwork"))
    response = client.get("/office/fieldwork.csv")
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["Content-Disposition"] and "%E8%B0%83%E6%9F%A5%E8%BF%9B%E5%BA%A6" in \
        response.headers["Content-Disposition"]  # 调查进度
    rows = read_csv(response)
    header = rows[0]
    assert header[:6] == ["序号", "社区编码", "社区", "街道", "已回收答卷", "状态"]
    assert {"需补充：男", "需补充：女", "需补充：60岁及以上"} <= set(header)
    body = rows[1:]
    assert len(body) == len(communities(demo, "D01S1"))
    assert [r[0] for r in body] == [str(i) for i in range(1, len(body) + 1)]
    first = dict(zip(header, body[0], strict=True))
    assert first["社区编码"] == NEW and first["已回收答卷"] == "0" and first["状态"] == "尚无估计"
    assert first["判定状态还需答卷（80%把握）"] == "" and int(first["达到目标精度还需答卷"]) > 0 and first["需补充：男"] == "1"
    for row in body[1:]:
        record = dict(zip(header, row, strict=True))
        assert record["状态"] in {"低于80分", "有风险", "达标", "数据不足"}
        assert int(record["判定状态还需答卷（80%把握）"]) >= (1 if record["状态"] == "数据不足" else 0)
    with demo.app_context():
        session = db.session()
        after = session.scalar(select(func.count()).select_from(ExportLog).where(ExportLog.what == "fieldwork"))
        log = session.scalars(select(ExportLog).where(ExportLog.what == "fieldwork").order_by(ExportLog.id.desc())).first()
        assert after == before + 1 and log.file_format == "csv" and log.rows == len(body)
        assert log.area_id == session.scalars(select(Area.id).where(Area.code == "D01S1")).one()


def test_before_the_first_analysis_the_plan_uses_the_plain_means(app):
    assert app.test_cli_runner().invoke(args=["seed-demo", "--respondents", "200"]).exit_code == 0
    with app.app_context():
        session = db.session()
        city = session.scalars(select(Area).where(Area.code == "C")).one()
        plan = fieldwork_plan(session, city)
        assert plan.run is None and session.scalar(select(func.count()).select_from(AnalysisRun)) == 0
        citizen = [v.id for v in plan.wave.versions if v.questionnaire.code == "citizen"]
        means = dict(session.execute(
            select(Area.code, func.avg(Response.score)).select_from(Response).join(Area, Area.id == Response.area_id)
            .where(Response.wave_id == plan.wave.id, Response.questionnaire_version_id.in_(citizen),
                   Response.score.is_not(None), ~Response.flag_speeder, ~Response.flag_straightline,
                   ~Response.flag_repeat_device).group_by(Area.code)).all())
    answered = [r for r in plan.rows if r.answers > 0]
    assert answered and sum(r.answers for r in plan.rows) == plan.answers
    for row in answered:
        assert row.estimate == pytest.approx(means[row.community.code]), row.community.code
        assert row.status in {"below", "at_risk", "ok", "undecided"}
        assert row.answers_for_precision is not None and row.answers_to_decide is not None

"""Schools: class links, parents picking their community, pupils, the school board, paper entry."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from survey import db
from survey.auth import create_user
from survey.models import Area, Link, Response, SchoolClass
from tests.conftest import PASSWORD, form_fields, full_answers
from tests.conftest import office_login as login

SCHOOLS = "school,district,class,grade,pupils\n一小,D1,三年级1班,3,40\n一小,D1,三年级2班,3,38\n一中,一区,初一（1）班,7,45\n"


@pytest.fixture
def schools(app, city, runner, tmp_path):
    path = tmp_path / "schools.csv"
    path.write_text(SCHOOLS, encoding="utf-8")
    result = runner.invoke(args=["import-schools", str(path)])
    assert result.exit_code == 0, result.output
    assert "Imported 3 classes of 2 schools; 6 class links" in result.output
    with app.app_context():
        links = db.session().scalars(select(Link).where(Link.school_class_id.is_not(None))).all()
        return {(link.school_class.name, link.audience): link.token for link in links}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("school,district,class,grade,pupils\n一小,D9,一班,3,40\n", "line 2: district 'D9' is not a district code or name"),
        ("school,district,class,grade,pupils\n一小,D1,一班,13,40\n", "line 2: grade 13 is not between 1 and 12"),
        ("school,district,class,grade,pupils\n一小,D1,一班,3,x\n", "line 2: grade and pupils must be whole numbers"),
        ("school,district,class,grade,pupils\n一小,D1,一班,3,40\n一小,D1,一班,3,41\n", "line 3: class 一班 of 一小 appears twice"),
        ("school,class\n一小,一班\n", "line 1: missing column(s) district, grade, pupils"),
    ],
)
def test_school_import_errors_name_the_line(app, city, runner, tmp_path, text, message):
    path = tmp_path / "schools.csv"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(args=["import-schools", str(path)])
    assert result.exit_code == 1 and message in result.output and "nothing was imported" in result.output


def test_parent_picks_their_community_and_the_answer_counts_there_and_for_the_class(app, client, schools):
    token = schools[("三年级1班", "parent")]
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert "一小 三年级1班" in page and 'name="community"' in page and "丙社区" in page
    # Forgetting the community keeps the answers and says what is missing.
    fields = form_fields(page)
    missing = client.post(f"/s/{token}", data=fields | full_answers(q02="5"))
    assert missing.status_code == 422 and "请选择您居住的社区" in missing.get_data(as_text=True)
    assert 'name="q02" value="5" checked' in missing.get_data(as_text=True)
    wrong = client.post(f"/s/{token}", data=fields | full_answers() | {"community": "D1"})  # a district, not a community
    assert wrong.status_code == 422 and "请从列表中选择" in wrong.get_data(as_text=True)
    done = client.post(f"/s/{token}", data=fields | full_answers() | {"community": "B1"})
    assert done.status_code == 200 and "提交成功" in done.get_data(as_text=True)
    with app.app_context():
        response = db.session().scalars(select(Response)).one()
        community = db.session().get(Area, response.area_id)
        klass = db.session().get(SchoolClass, response.school_class_id)
        assert (community.code, response.channel, klass.name) == ("B1", "school", "三年级1班")


def test_pupil_link_asks_the_minors_questionnaire_and_records_no_identity(app, client, schools):
    token = schools[("初一（1）班", "pupil")]
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert "未成年人思想道德建设问卷调查" in page and 'name="community"' not in page
    answers = {"grade_band": "J1-3", "mk1": "Y", "mk2": "N"} | {f"m{i:02d}": "4" for i in range(1, 11)}
    assert client.post(f"/s/{token}", data=form_fields(page) | answers).status_code == 200
    with app.app_context():
        response = db.session().scalars(select(Response)).one()
        assert response.attributes == {"grade_band": "J1-3"}
        assert db.session().get(Area, response.area_id).code == "D1"  # the school's district
        assert {a.item_code for a in response.answers} == set(answers)


def test_school_board_shows_counts_per_class_never_answers(app, client, schools):
    parent = schools[("三年级2班", "parent")]
    for community in ("A1", "A2"):
        phone = app.test_client()
        fields = form_fields(phone.get(f"/s/{parent}").get_data(as_text=True))
        comment = "校门口乱停车" if community == "A1" else ""
        phone.post(f"/s/{parent}", data=fields | full_answers(comment=comment) | {"community": community})
    with app.app_context(), db.write_transaction() as session:
        create_user(session, "yixiao", PASSWORD, "school", "D1", "一小")
        create_user(session, "boss", PASSWORD, "city", "C")
    assert login(client, "yixiao").headers["Location"].endswith("/school/")
    board = client.get("/school/").get_data(as_text=True)
    row = re.search(r'<td class="row-name">三年级2班</td><td class="num" data-label="学生数">38</td>\s*'
                    r'<td class="num" data-label="家长答卷">(\d+)</td>', board)
    assert row and row.group(1) == "2" and "全校合计" in board  # and the school's total row (issue 26)
    assert "校门口乱停车" not in board and "一中" not in board
    assert client.get("/office/area/C").status_code == 403  # a school sees no office pages
    office = app.test_client()
    login(office, "boss")
    schools_page = office.get("/office/area/C/schools").get_data(as_text=True)
    assert re.search(r"<td>一小</td><td class=\"num\">2</td><td class=\"num\">78</td><td class=\"num\">2</td>", schools_page)
    assert office.get("/school/").status_code == 403


def test_paper_entry_stores_a_serial_once_and_counts_per_worker(app, client, city):
    with app.app_context(), db.write_transaction() as session:
        create_user(session, "wangge", PASSWORD, "grid", "A2")
    assert login(client, "wangge").headers["Location"].endswith("/entry/")
    page = client.get("/entry/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    numbers = {"sex": "2", "age_band": "4", "resident": "1", "k01": "1", "k02": "1", "k03": "1", "k04": "2"}
    numbers |= {f"q{i:02d}": str(1 + i % 6) for i in range(1, 11)}
    first = client.post("/entry/", data={"csrf_token": token, "serial": "A2-0001"} | numbers)
    assert first.status_code == 200 and "已保存：编号 A2-0001" in first.get_data(as_text=True)
    again = client.post("/entry/", data={"csrf_token": token, "serial": "A2-0001"} | numbers)
    assert again.status_code == 409
    assert "编号 A2-0001 的问卷已经录入过（wangge" in again.get_data(as_text=True)
    bad = client.post("/entry/", data={"csrf_token": token, "serial": "A2-0002"} | numbers | {"q03": "9", "sex": ""})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "请输入1到6" in html and "未填写" in html and 'value="A2-0002"' in html
    assert "您已录入 <strong id=\"mine\">1</strong> 份" in html
    with app.app_context():
        response = db.session().scalars(select(Response)).one()
        assert (response.channel, response.attributes["sex"], response.attributes["age_band"]) == ("paper", "F", "60+")
        assert db.session().get(Area, response.area_id).code == "A2"
        q01 = next(a for a in response.answers if a.item_code == "q01")
        assert (q01.choice_code, q01.score) == ("4", 80.0)  # typed 2 = second printed choice, 满意
        assert db.session().scalar(select(func.count()).select_from(Response)) == 1
    assert client.get("/office/area/C").status_code == 403


def test_minors_are_weighted_to_enrolment_by_grade_band(app, runner, schools):
    def pupil(token, grade_band, rating):
        phone = app.test_client()
        fields = form_fields(phone.get(f"/s/{token}").get_data(as_text=True))
        answers = {"grade_band": grade_band, "mk1": "Y", "mk2": "N"} | {f"m{i:02d}": rating for i in range(1, 11)}
        answers["m01"] = "3" if rating == "5" else "5"  # not straight-lining
        assert phone.post(f"/s/{token}", data=fields | answers).status_code == 200

    # Primary pupils (78 enrolled) answer 9 times, secondary (45 enrolled) 3 times.
    for _ in range(9):
        pupil(schools[("三年级1班", "pupil")], "P1-3", "5")
    for _ in range(3):
        pupil(schools[("初一（1）班", "pupil")], "J1-3", "2")
    with app.app_context(), db.write_transaction() as session:
        for response in session.scalars(select(Response)):
            response.duration_s = 200.0  # nobody is a speeder here
    result = runner.invoke(args=["analyze", "--questionnaire", "minor"])
    assert result.exit_code == 0, result.output
    primary, secondary = (60 + 9 * 100) / 10, (100 + 9 * 40) / 10  # respondent means with the m01 twist
    expected = (78 * primary + 45 * secondary) / 123  # weighted to enrolment, not to who answered
    assert f"city {expected:.1f}" in result.output
    with app.app_context():
        from survey.models import AreaResult

        rows = db.session().execute(select(Area.code, AreaResult.estimate, AreaResult.n).join(Area, Area.id == AreaResult.area_id)).all()
    assert {code: round(estimate, 6) for code, estimate, _ in rows} == {"D1": round(expected, 6), "C": round(expected, 6)}


def test_a_parent_refused_for_posting_too_often_keeps_the_chosen_community(app, schools):
    from survey.limits import PUBLIC_POST_LIMIT

    token = schools[("三年级1班", "parent")]
    phone = app.test_client()
    phone.environ_base["REMOTE_ADDR"] = "10.30.40.50"
    fields = form_fields(phone.get(f"/s/{token}").get_data(as_text=True))
    for _ in range(int(PUBLIC_POST_LIMIT.split()[0])):
        assert phone.post(f"/s/{token}", data=fields | full_answers()).status_code == 422  # no community yet
    refused = phone.post(f"/s/{token}", data=fields | full_answers(q03="2") | {"community": "B1"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    assert re.search(r'<option value="B1"[^>]*selected', html) and 'name="q03" value="2" checked' in html

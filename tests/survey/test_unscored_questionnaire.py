"""A questionnaire without a scored item (a registration, a special survey) imports, runs and is analysed.

Issue 24 item 4: what the dashboards show for it belongs to issue 29; here every office page answers
(no 500), the analysis runs, and the answers of the new types are stored where they belong.
"""
from __future__ import annotations

from sqlalchemy import select

from survey import db
from survey.models import Answer, Area, Link, Questionnaire, Response, Wave
from tests.conftest import form_fields
from tests.forms.workbooks import workbook
from tests.survey.test_questionnaire_admin import login, post, staff, upload_and_publish  # noqa: F401 (fixture)

REGISTRATION = {
    "survey": [
        ["type", "name", "label", "required", "constraint", "constraint_message", "relevant", "appearance"],
        ["select_multiple how", "heard", "您通过哪些渠道了解创建活动？", "yes"],
        ["integer", "age", "您的年龄", "yes", None, "年龄应在16到100岁之间"],
        ["date", "last_visit", "您最近一次参加志愿服务的日期"],
        ["text", "idea", "您的建议"],
    ],
    "choices": [
        ["list_name", "name", "label", "exclusive"],
        ["how", "tv", "电视"],
        ["how", "wechat", "微信"],
        ["how", "none", "以上都没有", "yes"],
    ],
    "settings": [["form_title", "form_id"], ["志愿者登记", "volunteers"]],
}


def test_a_questionnaire_without_scores_is_fielded_answered_and_analysed(app, client, staff, runner, tmp_path):  # noqa: F811
    login(client, "city")
    _pending, published = upload_and_publish(client, workbook(REGISTRATION), "志愿者登记.xlsx")
    assert published.status_code == 303, published.get_data(as_text=True)
    with app.app_context():
        wave_id = db.session().scalar(select(Wave.id))
    assert post(client, "/office/questionnaires/volunteers/v1/field", wave=str(wave_id)).status_code == 200
    post(client, "/office/questionnaires/volunteers/links")
    with app.app_context():
        token = db.session().scalar(select(Link.token).join(Link.area).join(Questionnaire)
                                    .where(Questionnaire.code == "volunteers", Area.code == "A1"))
    resident = app.test_client()
    page = resident.get(f"/s/{token}").get_data(as_text=True)
    assert "志愿者登记" in page and 'name="heard"' in page
    mixed = resident.post(f"/s/{token}", data=form_fields(page) | {"heard": ["tv", "none"], "age": "30"})
    assert mixed.status_code == 422 and "选了“以上都没有”就不能再选其他选项" in mixed.get_data(as_text=True)
    thanks = resident.post(f"/s/{token}", data=form_fields(page) | {
        "heard": ["wechat", "tv"], "age": "４５", "last_visit": "2026年11月3日", "idea": "多办活动"})
    assert thanks.status_code == 200, thanks.get_data(as_text=True)
    with app.app_context():
        session = db.session()
        stored = dict(session.execute(select(Answer.item_code, Answer.value).join(Response)).all())
        assert stored == {"heard": "tv wechat", "age": "45", "last_visit": "2026-11-03", "idea": None}
        assert session.scalar(select(Answer.text).where(Answer.item_code == "idea")) == "多办活动"
        assert session.scalar(select(Response.score)) is None

    analysed = runner.invoke(args=["analyze", "--questionnaire", "volunteers", "--include-flagged"])
    assert analysed.exit_code == 1 and "has no scored question: there is no satisfaction to estimate" in analysed.output
    for path in ("/office/", "/office/area/C?q=volunteers", "/office/community/A1?q=volunteers",
                 "/office/area/C/problems?q=volunteers", "/office/area/C/at-risk?q=volunteers",
                 "/office/area/C/exports?q=volunteers"):
        response = client.get(path)
        assert response.status_code in (200, 302, 303, 404), (path, response.status_code)
    # Its answers come out whole (the office pages' export of a questionnaire without results: issue 29).
    out = tmp_path / "volunteers.csv"
    exported = runner.invoke(args=["export", "responses", "--questionnaire", "volunteers", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    text = out.read_text(encoding="utf-8-sig")
    assert "tv wechat" in text and "2026-11-03" in text and "多办活动" in text

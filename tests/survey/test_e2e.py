"""End to end in headless Chromium on a phone-sized screen: a resident fills the questionnaire.

Set SCREENSHOT_DIR to keep the screenshots (the form, an error state, the thank-you page).
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from survey import db
from survey.models import Area, Response
from tests.conftest import shot

pytestmark = pytest.mark.e2e


def test_resident_fills_the_citizen_questionnaire_on_a_phone(app, city, live_server, phone):
    page = phone
    page.goto(f"{live_server}/s/{city['A1']}")
    assert page.locator("h1").first.inner_text() == "全国文明城市创建工作市民问卷调查"
    # Nothing wider than the screen: no sideways scrolling on a 390 px phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "01-form-top")

    # Submit with questions left out: the page (form.js) marks each and goes to the first, answers stay.
    page.get_by_role("radio", name="女").check()
    page.get_by_role("group", name="您的年龄").get_by_role("radio", name="60岁及以上").check()
    page.get_by_role("button", name="提交问卷").click()
    first = page.locator(".question.invalid").first
    assert first.locator(".error").inner_text() == "请选择一项"
    assert first.get_attribute("data-item") == "resident"  # the first unanswered, focused
    assert page.evaluate("document.activeElement.name") == "resident"
    assert page.get_by_role("radio", name="女").is_checked()
    shot(page, "02-errors")

    page.get_by_role("group", name="您在本市居住是否满6个月").get_by_role("radio", name="是").check()
    for group in page.locator("fieldset.question").all():
        if not group.locator("input:checked").count():
            group.locator("label.choice").nth(1).click()  # tap the label, as a thumb would
    page.get_by_label("您觉得本社区（村）最需要改进的是什么？（选填）").fill("<script>alert(1)</script> 停车难")
    page.get_by_role("button", name="提交问卷").click()
    assert page.locator("h1").inner_text() == "提交成功"
    shot(page, "03-thanks")

    with app.app_context():
        response = db.session().scalars(select(Response)).one()
        assert response.attributes == {"sex": "F", "age_band": "60+", "resident_6m": "Y"}
        assert response.scored_items == 10 and response.score == 80.0
        comment = next(a.text for a in response.answers if a.item_code == "comment")
        assert comment == "<script>alert(1)</script> 停车难"


def test_office_dashboard_in_a_browser_heatmap_chart_and_drill_down(app, live_server, phone):
    runner = app.test_cli_runner()
    # enough answers that some community is clearly under 80 (数据不足 is symmetric around 80: 400 leave none flagged)
    assert runner.invoke(args=["seed-demo", "--respondents", "1500"]).exit_code == 0
    assert runner.invoke(args=["analyze"]).exit_code == 0
    assert runner.invoke(args=["create-user", "boss", "--role", "city", "--area", "C", "--password", "Str0ng-pass-2026"]).exit_code == 0
    page = phone
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/office/")
    page.get_by_label("用户名").fill("boss")
    page.get_by_label("密码").fill("Str0ng-pass-2026")
    page.get_by_role("button", name="登录").click()
    assert page.locator("h1").inner_text().startswith("示范市")
    assert page.locator("table.heatmap tbody tr").count() == 3
    # The chart is inline SVG from the server: nothing to wait for, nothing the Content-Security-Policy blocks.
    assert page.locator("svg#cost rect").count() >= 1
    shot(page, "10-office-city")
    page.locator("table.heatmap").get_by_role("link", name="东城区").click()
    assert page.locator("h1").inner_text().startswith("东城区")
    assert page.locator("table.heatmap tbody tr").count() == 3
    shot(page, "11-office-district")
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_parent_picks_community_with_the_search_box_on_a_phone(app, live_server, phone, tmp_path):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo", "--respondents", "50"]).exit_code == 0
    with app.app_context():
        from survey.demo import demo_school_link

        token = demo_school_link(db.session()).token
        guihua = db.session().scalar(select(Area.code).where(Area.name == "桂花社区"))
    page = phone
    page.goto(f"{live_server}/s/{token}")
    assert "东城区实验小学 3年级1班" in page.locator(".place").inner_text()
    search = page.get_by_role("searchbox", name="查找社区")
    search.fill("桂花")  # the list narrows and the match is chosen
    assert page.locator("#f-community").input_value() == guihua
    assert page.locator("#f-community option:not([hidden])").count() == 2  # the placeholder and 桂花社区
    shot(page, "20-parent-picker")
    for group in page.locator("fieldset.question").all():
        group.locator("label.choice").first.click()
    page.get_by_role("button", name="提交问卷").click()
    assert page.locator("h1").inner_text() == "提交成功"
    with app.app_context():
        response = db.session().scalars(select(Response).where(Response.channel == "school").order_by(Response.id.desc())).first()
        assert response.area_id == db.session().scalar(select(Area.id).where(Area.code == guihua))
        assert response.school_class_id is not None and response.link_id is not None


def test_paper_entry_with_the_keyboard_only(app, live_server, phone):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo", "--respondents", "20"]).exit_code == 0
    assert runner.invoke(args=["create-user", "luru", "--role", "grid", "--area", "D01S1C2", "--password", "Str0ng-pass-2026"]).exit_code == 0
    page = phone
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/office/login")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'username'")  # autofocus
    page.keyboard.type("luru")
    page.keyboard.press("Tab")
    page.keyboard.type("Str0ng-pass-2026")
    page.keyboard.press("Enter")
    page.wait_for_url("**/entry/")
    assert page.evaluate("document.activeElement.id") == "serial"  # autofocus: start typing at once
    page.keyboard.type("P-7")
    page.keyboard.press("Tab")
    # sex, age, resident, four yes/no, ten ratings: one digit each; the page moves on by itself.
    page.keyboard.type("2" + "4" + "1" + "1112" + "4444355512")
    assert page.evaluate("document.activeElement.name") == "comment"
    page.keyboard.type("楼道灯坏了")
    page.keyboard.press("Enter")
    assert "已保存：编号 P-7" in page.locator("[role=status]").inner_text()
    shot(page, "21-paper-entry")
    with app.app_context():
        response = db.session().scalars(select(Response).where(Response.channel == "paper", Response.entered_by_id.is_not(None))).one()
        assert response.attributes == {"sex": "F", "age_band": "60+", "resident_6m": "Y"}
        answers = {a.item_code: a.choice_code for a in response.answers}
        assert answers["q01"] == "2" and answers["q06"] == "1" and answers["k04"] == "N"
        assert next(a.text for a in response.answers if a.item_code == "comment") == "楼道灯坏了"

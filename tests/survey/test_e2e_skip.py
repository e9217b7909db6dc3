"""Skip rules in headless Chromium on a 390x844 phone: with JavaScript a follow-up question appears
only once its trigger answer is chosen; without, it is marked and the server checks it.

Set SCREENSHOT_DIR to keep the screenshots.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from survey import db
from survey.models import Response
from tests.conftest import PHONE, shot
from tests.survey.skip_form import skip_links
from tests.survey.test_e2e_board import axe_violations

pytestmark = pytest.mark.e2e
MARKER = "（第2题选“听说过”的请回答）"


@pytest.fixture
def skip_city(app, city):
    with app.app_context(), db.write_transaction() as session:
        return skip_links(session)


def answers(app) -> list[dict[str, str | None]]:
    with app.app_context():
        return [{a.item_code: a.choice_code or a.text for a in r.answers}
                for r in db.session().scalars(select(Response).order_by(Response.id))]


def group(page, name: str):
    return page.get_by_role("group", name=name)


def test_with_javascript_a_follow_up_appears_only_after_its_trigger_answer(app, skip_city, live_server, phone):
    page = phone
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{live_server}/s/{skip_city['A1']}")
    follow_up = page.locator("#q-s1")
    assert follow_up.is_hidden() and page.locator("#q-comment").is_visible()  # comment: 4 is unanswered, not 不了解
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    group(page, "您的文化程度").get_by_role("radio", name="大专及以上").check()
    group(page, "您是否听说过").get_by_role("radio", name="没听说过").check()
    assert follow_up.is_hidden()
    group(page, "您是否听说过").get_by_role("radio", name="听说过", exact=True).check()
    assert follow_up.is_visible() and follow_up.get_by_text(MARKER).is_visible()
    group(page, "您对老旧小区改造满意吗").get_by_role("radio", name="一般").check()
    group(page, "您对背街小巷整治满意吗").get_by_role("radio", name="满意", exact=True).check()
    page.get_by_label("您还有什么意见？").fill("多设休息座椅")
    shot(page, "30-skip-follow-up-shown")
    # 不了解 hides the comment; its fields are disabled and not sent.
    group(page, "您对背街小巷整治满意吗").get_by_role("radio", name="不了解").check()
    assert page.locator("#q-comment").is_hidden() and page.locator("#f-comment").is_disabled()
    page.get_by_role("button", name="提交问卷").click()
    assert page.locator("h1").inner_text() == "提交成功"
    assert answers(app) == [{"education": "college", "heard": "Y", "s1": "3", "s2": "0"}]
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_without_javascript_the_follow_up_is_marked_and_the_server_asks_for_it(app, skip_city, live_server, phone):
    context = phone.context.browser.new_context(java_script_enabled=False, **PHONE)
    page = context.new_page()
    page.goto(f"{live_server}/s/{skip_city['A2']}")
    follow_up = group(page, "您对老旧小区改造满意吗")
    assert follow_up.is_visible() and follow_up.get_by_text(MARKER).is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    group(page, "您的文化程度").get_by_role("radio", name="初中或高中").check()
    group(page, "您是否听说过").get_by_role("radio", name="听说过", exact=True).check()
    group(page, "您对背街小巷整治满意吗").get_by_role("radio", name="一般").check()
    page.get_by_role("button", name="提交问卷").click()
    summary = page.locator("#error-summary")
    assert "还有 1 题需要处理" in summary.inner_text() and summary.get_by_role("link", name="第3题").is_visible()
    assert follow_up.get_by_text("请选择一项").is_visible()
    assert group(page, "您是否听说过").get_by_role("radio", name="听说过", exact=True).is_checked()
    shot(page, "31-skip-no-js-error")
    follow_up.get_by_role("radio", name="不满意").check()
    page.get_by_role("button", name="提交问卷").click()
    assert page.locator("h1").inner_text() == "提交成功"
    assert answers(app) == [{"education": "middle", "heard": "Y", "s1": "1", "s2": "3"}]
    context.close()


def test_the_skip_page_has_no_serious_accessibility_violations(skip_city, live_server, phone):
    context = phone.context.browser.new_context(bypass_csp=True, **PHONE)  # to inject axe-core
    page = context.new_page()
    page.goto(f"{live_server}/s/{skip_city['A1']}")
    found = {"hidden": axe_violations(page)}
    group(page, "您是否听说过").get_by_role("radio", name="听说过", exact=True).check()
    page.get_by_role("button", name="提交问卷").click()  # an error state with the follow-up shown
    page.wait_for_load_state()
    found["errors"] = axe_violations(page)
    assert found == {"hidden": [], "errors": []}
    context.close()


def test_paper_entry_passes_over_a_follow_up_not_asked(app, city, live_server, phone):
    from survey.auth import create_user
    from tests.survey.skip_form import install_skip_form, open_skip_wave

    with app.app_context(), db.write_transaction() as session:
        install_skip_form(session, "citizen", 2)  # paper entry keys the newest citizen version of the open wave
        open_skip_wave(session, ["citizen"])
        create_user(session, "luru", "Str0ng-pass-2026", "grid", "A1")
    page = phone
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/office/login")
    page.get_by_label("用户名").fill("luru")
    page.get_by_label("密码").fill("Str0ng-pass-2026")
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/entry/")
    assert page.locator("#r-s1").is_hidden()  # 2 is unanswered: 3 is not asked
    page.keyboard.type("P-9")
    page.keyboard.press("Tab")
    page.keyboard.type("3" + "1")  # 大专及以上, 听说过: 3 appears and takes the next digit
    assert page.evaluate("document.activeElement.name") == "s1"
    shot(page, "32-paper-entry-follow-up")
    page.keyboard.type("2" + "4")  # s1 一般, s2 不了解: 5 is not asked either
    assert page.locator("#r-comment").is_hidden() and page.evaluate("document.activeElement.name") == "s2"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.name") == "heard"
    page.keyboard.type("2")  # 没听说过: the box of 3 is passed over
    assert page.locator("#r-s1").is_hidden() and page.evaluate("document.activeElement.name") == "s2"
    page.keyboard.press("Enter")
    assert "已保存：编号 P-9" in page.locator("[role=status]").inner_text()
    assert answers(app) == [{"education": "college", "heard": "N", "s2": "0"}]

"""The phone page of tests/survey/phone_forms.py in headless Chromium on a 390x844 phone, with
JavaScript (pages, progress, exclusive choices, checks, the cascade, piping, drafts) and axe-core.

Set SCREENSHOT_DIR to keep the screenshots.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from survey import db
from survey.models import Response
from tests.conftest import PHONE, shot
from tests.survey.phone_forms import ENGINE_READY, phone_links
from tests.survey.test_e2e_board import axe_violations

pytestmark = pytest.mark.e2e
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN"}


@pytest.fixture
def life(app, city):
    with app.app_context(), db.write_transaction() as session:
        return phone_links(session)


def stored(app) -> list[dict[str, str | None]]:
    with app.app_context():
        return [{a.item_code: a.value or a.choice_code or a.text for a in r.answers}
                for r in db.session().scalars(select(Response).order_by(Response.id))]


def group(page, name: str):
    return page.get_by_role("group", name=re.compile(re.escape(name)))


def choose_street(page, label: str) -> None:
    """Pick a street: a list cut by the district with the expression engine, radio buttons without it."""
    street = page.locator("#q-street")
    if street.locator("select").count():
        street.locator("select").select_option(label=label)
    else:
        street.get_by_role("radio", name=label).check()


def status(page) -> str:
    return page.locator(".pages p").inner_text()


def test_a_resident_answers_page_by_page_and_a_reload_keeps_the_draft(app, life, live_server, phone):
    page = phone
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server}/s/{life['A1']}")
    assert status(page) == "第1页，共4页"
    assert page.get_by_role("button", name="提交问卷").is_hidden() and page.locator("#q-age").is_hidden()
    bar = page.get_by_role("progressbar", name="已答题目")
    assert bar.get_attribute("aria-valuenow") == "0"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # Page 1: the consent; 以上都没有 stands alone; 其他 opens its box right under the question.
    page.get_by_role("checkbox", name="确认").check()
    used = group(page, "过去一年您用过哪些社区服务")
    used.get_by_role("checkbox", name="社区卫生服务站").check()
    used.get_by_role("checkbox", name="以上都没有").check()
    assert not used.get_by_role("checkbox", name="社区卫生服务站").is_checked()
    used.get_by_role("checkbox", name="图书室").check()
    assert not used.get_by_role("checkbox", name="以上都没有").is_checked()
    other = page.locator("#q-used_other")
    assert other.is_hidden()
    used.get_by_role("checkbox", name="其他").check()
    assert other.is_visible()
    page.get_by_label("请注明其他").fill("老年食堂")
    assert bar.get_attribute("aria-valuenow") == "3"
    shot(page, "40-phone-page-1")
    page.get_by_role("button", name="下一页").click()

    # Page 2: required questions are said before moving on, focus on the first.
    assert status(page) == "第2页，共4页" and page.locator("header.intro").is_hidden()
    page.get_by_role("button", name="下一页").click()
    assert status(page) == "第2页，共4页"
    assert page.locator("#e-age").inner_text() == "请填写此项"
    assert page.evaluate("document.activeElement.id") == "f-age"
    assert page.get_by_label("您的年龄").get_attribute("aria-describedby") == "h-age e-age"
    shot(page, "41-phone-page-2-required")
    page.get_by_label("您的年龄").fill("３５")  # full-width digits, as some keyboards type them
    assert page.locator("#e-age").count() == 0  # the message goes as soon as the answer is right
    group_or_box = page.locator("#q-district")
    group_or_box.get_by_role("radio", name="东城区").check()
    choose_street(page, "安定街道")
    assert page.locator("#q-years label").inner_text() == "7. 您在安定街道住了几年？"
    page.get_by_label("住了几年").fill("8")
    page.get_by_label("您搬来的日期").fill("2018-05-01")

    # A reload (the phone dropped the page): the answers come back from the draft, with a notice.
    page.reload()
    notice = page.get_by_role("status").filter(has_text="已恢复您上次未提交的回答")
    expect(notice).to_be_visible()
    assert status(page) == "第2页，共4页"  # back on the page the resident was on
    assert page.locator("#q-consent input[type=checkbox]").is_checked()  # on page 1, kept too
    assert page.get_by_label("请注明其他").input_value() == "老年食堂"
    assert page.get_by_label("您的年龄").input_value() == "３５"
    assert page.locator("#q-years label").inner_text() == "7. 您在安定街道住了几年？"
    shot(page, "42-phone-draft-restored")
    notice.get_by_role("button", name="关闭提示").click()
    expect(notice).to_be_hidden()
    page.get_by_role("button", name="下一页").click()

    # Page 3: the table-list, a card per question on a phone.
    assert status(page) == "第3页，共4页"
    assert page.locator(".tl-head").is_hidden()
    for code, label in (("环境卫生", "非常满意"), ("公共秩序", "满意"), ("交通出行", "不清楚"), ("社区服务", "一般")):
        group(page, code).get_by_role("radio", name=label, exact=True).check()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "43-phone-table-list")
    page.get_by_role("button", name="下一页").click()

    # Page 4: the 0-10 range as buttons, a location typed, then submit.
    assert status(page) == "第4页，共4页" and page.get_by_role("button", name="下一页").is_hidden()
    group(page, "推荐").get_by_role("radio", name="9", exact=True).check()
    page.get_by_label("纬度").fill("39.91")
    page.get_by_label("经度").fill("116.40")
    assert page.get_by_role("button", name="获取当前位置").is_visible()
    shot(page, "44-phone-last-page")
    page.get_by_role("button", name="提交问卷").click()
    assert page.locator("h1").inner_text() == "提交成功"
    page.wait_for_load_state()  # thanks.js (deferred) has run: the draft is gone
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('survey-draft:'))") == []
    [answers] = stored(app)
    assert answers == {"consent": "OK", "used": "library other", "used_other": "老年食堂", "age": "35",
                       "district": "d1", "street": "s12", "years": "8", "moved": "2018-05-01", "s1": "5", "s2": "4",
                       "s3": "0", "s4": "3", "recommend": "9", "place": "39.91 116.4"}
    assert not errors, errors


def test_the_age_constraint_and_the_street_list_work_live(app, life, live_server, phone):
    assert ENGINE_READY, "the stand-in expression engine reads neither the constraint nor the choice filter"
    page = phone
    page.goto(f"{live_server}/s/{life['A2']}")
    page.get_by_role("button", name="下一页").click()
    page.get_by_role("checkbox", name="确认").check()
    group(page, "过去一年您用过哪些社区服务").get_by_role("checkbox", name="图书室").check()
    page.get_by_role("button", name="下一页").click()
    age = page.get_by_label("您的年龄")
    age.fill("12")
    age.press("Tab")
    assert page.locator("#e-age").inner_text() == "年龄应在16到100岁之间"
    street = page.get_by_label("您住在哪个街道")
    assert page.locator("#p-street").inner_text() == "请先回答第5题"
    page.locator("#q-district").get_by_role("radio", name="西城区").check()
    assert page.locator("#p-street").is_hidden()
    assert street.locator("option").all_inner_texts() == ["— 请选择 —", "金融街道", "月坛街道"]
    street.select_option(label="月坛街道")
    page.locator("#q-district").get_by_role("radio", name="东城区").check()
    assert street.input_value() == ""  # no longer offered: cleared, not sent unseen
    assert street.locator("option").all_inner_texts() == ["— 请选择 —", "和平街道", "安定街道"]
    age.fill("40")
    assert page.locator("#e-age").count() == 0
    shot(page, "45-phone-cascade")


def test_a_page_back_from_the_server_opens_on_its_first_error_and_ignores_the_draft(app, life, live_server, phone):
    page = phone
    url = f"{live_server}/s/{life['B1']}"
    page.goto(url)
    page.evaluate("""key => localStorage.setItem(key, JSON.stringify({t: Date.now(), v: [["comment", "旧草稿"]]}))""",
                  "survey-draft:" + url.split(live_server)[1])
    context = page.context.browser.new_context(java_script_enabled=False, **PHONE)
    nojs = context.new_page()
    nojs.goto(url)
    nojs.get_by_role("checkbox", name="确认").check()
    nojs.get_by_role("button", name="提交问卷").click()
    html = nojs.content()
    context.close()
    assert "还有" in html
    # The same 422 page in the phone with scripts: opens on page 1 (the first error), no draft over it.
    page.route(url, lambda route: route.fulfill(status=422, content_type="text/html; charset=utf-8", body=html))
    page.goto(url)
    assert status(page) == "第1页，共4页"
    assert page.get_by_text("已恢复您上次未提交的回答").count() == 0
    page.get_by_role("link", name="第9题").click()
    assert status(page) == "第3页，共4页" and page.locator("#q-s1").is_visible()


@pytest.mark.parametrize("width", [390, 1280])
def test_the_page_has_no_serious_accessibility_violations(life, live_server, browser, width):
    context = browser.new_context(bypass_csp=True, **(PHONE if width == 390 else DESKTOP))  # to inject axe-core
    page = context.new_page()
    page.goto(f"{live_server}/s/{life['A1']}?lang=English")
    assert page.locator("html").get_attribute("lang") == "en"
    found = {"first page": axe_violations(page)}
    assert page.locator(".pages p").inner_text() == "Page 1 of 4"
    page.get_by_role("button", name="Next").click()  # errors on the first page
    found["errors"] = axe_violations(page)
    page.get_by_role("checkbox", name="OK").check()
    group(page, "Which community services").get_by_role("checkbox", name="None of these").check()
    for n in range(2, 5):
        page.get_by_role("button", name="Next").click()
        page.get_by_role("button", name="Next").or_(page.get_by_role("button", name="Submit")).first.wait_for()
        found[f"page {n}"] = axe_violations(page)
        if n == 2:
            page.get_by_label("Your age").fill("40")
            page.locator("#q-district input").first.check()
            choose_street(page, "Heping street")
            found["page 2 answered"] = axe_violations(page)
    shot(page, f"49-english-{width}")
    found["errors"] = axe_violations(page)
    assert all(not v for v in found.values()), found
    # Without scripts: one long page, every question at once.
    nojs = browser.new_context(java_script_enabled=False, bypass_csp=True, **(PHONE if width == 390 else DESKTOP))
    plain = nojs.new_page()
    plain.goto(f"{live_server}/s/{life['A1']}")
    shot(plain, f"46-phone-no-js-{width}")
    plain.get_by_role("button", name="提交问卷").click()
    shot(plain, f"47-phone-no-js-errors-{width}")
    context.close()
    nojs.close()


def test_wide_screens_show_the_table_list_as_a_grid(life, live_server, browser):
    page = browser.new_context(**DESKTOP).new_page()
    page.goto(f"{live_server}/s/{life['A1']}")
    page.get_by_role("checkbox", name="确认").check()
    group(page, "过去一年您用过哪些社区服务").get_by_role("checkbox", name="图书室").check()
    shot(page, "50-desktop-page-1")
    page.locator(".pager-nav .next").click()
    page.get_by_label("您的年龄").fill("50")
    page.locator("#q-district").get_by_role("radio", name="西城区").check()
    choose_street(page, "月坛街道")
    page.locator(".pager-nav .next").click()
    assert status(page) == "第3页，共4页"
    head = page.locator(".tl-head")
    assert head.is_visible() and head.locator("span").all_inner_texts()[:2] == ["非常满意", "满意"]
    # Each radio sits under its column's header.
    first_header = head.locator("span").nth(0).bounding_box()
    radio = page.locator("#q-s2 input").nth(0).bounding_box()
    assert abs((first_header["x"] + first_header["width"] / 2) - (radio["x"] + radio["width"] / 2)) < 4
    shot(page, "48-desktop-table-list")


def test_a_tap_that_leaves_a_wrong_answer_still_lands(app, life, live_server, phone):
    # The newcomer's finding: after a wrong age, tapping 东城区 did nothing, since the age's message
    # appeared under the finger. The message now waits for the tap.
    assert ENGINE_READY
    page = phone
    page.goto(f"{live_server}/s/{life['A2']}")
    page.get_by_role("button", name="下一页").click()
    page.get_by_role("checkbox", name="确认").check()
    group(page, "过去一年您用过哪些社区服务").get_by_role("checkbox", name="图书室").check()
    page.get_by_role("button", name="下一页").click()
    page.get_by_label("您的年龄").fill("12")
    page.locator("#q-district").get_by_text("东城区").click()  # a real pointer: down, blur, up, click
    assert page.locator("#q-district").get_by_role("radio", name="东城区").is_checked()
    assert page.locator("#e-age").inner_text() == "年龄应在16到100岁之间"

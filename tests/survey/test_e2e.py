"""End to end in headless Chromium on a phone-sized screen: a resident fills the questionnaire.

Set SCREENSHOT_DIR to keep the screenshots (the form, an error state, the thank-you page).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from survey import db
from survey.models import Response

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.e2e


@pytest.fixture
def phone():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: sudo apt-get install chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )
        context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                      is_mobile=True, has_touch=True, locale="zh-CN")
        yield context.new_page()
        browser.close()


def shot(page, name: str) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_resident_fills_the_citizen_questionnaire_on_a_phone(app, city, live_server, phone):
    page = phone
    page.goto(f"{live_server}/s/{city['A1']}")
    assert page.locator("h1").first.inner_text() == "全国文明城市创建工作市民问卷调查"
    # Nothing wider than the screen: no sideways scrolling on a 390 px phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "01-form-top")

    # Submit with two questions left out: the error summary links to them, answers stay.
    page.get_by_role("radio", name="女").check()
    page.get_by_role("group", name="您的年龄").get_by_role("radio", name="60岁及以上").check()
    page.get_by_role("button", name="提交问卷").click()
    assert "还有" in page.locator("#error-summary").inner_text()
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
        assert (response.sex, response.age_band, response.resident_6m) == ("F", "60+", "Y")
        assert response.scored_items == 10 and response.score == 80.0
        comment = next(a.text for a in response.answers if a.item_code == "comment")
        assert comment == "<script>alert(1)</script> 停车难"


def test_office_dashboard_in_a_browser_heatmap_chart_and_drill_down(app, live_server, phone):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo", "--respondents", "400"]).exit_code == 0
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
    # plotly.js comes from this server and runs under the Content-Security-Policy.
    page.wait_for_selector("#cost svg.main-svg", timeout=15_000)
    shot(page, "10-office-city")
    page.locator("table.heatmap").get_by_role("link", name="东城区").click()
    assert page.locator("h1").inner_text().startswith("东城区")
    assert page.locator("table.heatmap tbody tr").count() == 3
    shot(page, "11-office-district")
    assert not [e for e in errors if "Content Security Policy" in e], errors

"""In headless Chromium: the community picker's empty search, the school board and axe-core checks.

axe-core (MPL-2.0) is vendored in tests/survey/vendor/axe.min.js so the accessibility checks always run.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from survey import db
from survey.models import Area, Response
from tests.conftest import build_once

pytestmark = pytest.mark.e2e
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
PASSWORD = "Str0ng-pass-2026"
SCHOOL = "东城区实验小学"


def seed_demo(app) -> None:
    assert app.test_cli_runner().invoke(args=["seed-demo", "--respondents", "400"]).exit_code == 0


@pytest.fixture
def demo(app):
    """The demo city with 400 responses (built once a session, copied into each test's database); a CLI runner."""
    build_once(app, "demo-400", seed_demo)
    return app.test_cli_runner()


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/office/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state()


def axe_violations(page) -> list[str]:
    """Run axe-core on the page; return its critical and serious violations as readable lines."""
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    violations = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        f"{v['impact']}: {v['id']} ({v['help']}) at {[(n['target'], n.get('failureSummary', '')[-120:]) for n in v['nodes'][:3]]}"
        for v in violations if v["impact"] in ("critical", "serious")
    ]


def test_the_vendored_axe_core_keeps_its_licence_header():
    head = AXE.read_text(encoding="utf-8")[:600]
    assert head.startswith("/*! axe v4.") and "Mozilla Public" in head and "mozilla.org/MPL/2.0" in head


def test_picker_drops_a_hidden_choice_when_the_search_finds_nothing(app, demo, live_server, phone):
    with app.app_context():
        from survey.demo import demo_school_link

        token = demo_school_link(db.session()).token
        guihua = db.session().scalar(select(Area.code).where(Area.name == "桂花社区"))
        stored = db.session().scalar(select(func.count()).select_from(Response))
    page = phone
    page.goto(f"{live_server}/s/{token}")
    page.locator("#f-community").select_option(guihua)  # picked from the list by hand
    search = page.get_by_role("searchbox", name="查找社区")
    search.fill("桂花")
    assert page.locator("#f-community").input_value() == guihua  # still visible: kept
    search.fill("火星社区")
    assert page.locator("#f-community").input_value() == ""  # hidden: dropped, not sent unseen
    status = page.get_by_role("status")
    assert "没有找到“火星社区”，请换个关键词" in status.inner_text() and "已取消" in status.inner_text()
    for group in page.locator("fieldset.question").all():
        group.locator("label.choice").first.click()
    page.get_by_role("button", name="提交问卷").click()
    # The server asks for a community instead of storing one the parent could not see.
    assert "请选择您居住的社区" in page.locator("#q-community").inner_text()
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Response)) == stored
    page.get_by_role("searchbox", name="查找社区").fill("桂花")  # a match again: it is chosen and said
    assert page.locator("#f-community").input_value() == guihua
    assert "找到 1 个社区" in page.get_by_role("status").inner_text()
    for typed in ("guihua", "GuiHua", "ghsq"):  # pinyin and initials find it too (issue 26 item 9)
        page.get_by_role("searchbox", name="查找社区").fill(typed)
        assert page.locator("#f-community").input_value() == guihua, typed
        assert "找到 1 个社区" in page.get_by_role("status").inner_text()


def test_school_board_refreshes_by_button_and_polls_the_counts_politely(app, demo, live_server, phone):
    assert demo.invoke(args=["create-user", "xiaoxue", "--role", "school", "--area", "D01", "--school", SCHOOL,
                             "--password", PASSWORD]).exit_code == 0
    page = phone
    page.set_viewport_size({"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.clock.install()
    log_in(page, live_server, "xiaoxue")
    assert page.locator("h1").inner_text().startswith(SCHOOL)
    assert page.locator("meta[http-equiv=refresh]").count() == 0
    first_row = page.locator("#board tbody tr").first
    before = int(first_row.locator("td").nth(2).inner_text())
    assert page.get_by_role("status").inner_text() == ""

    # A parent of the first class answers; the next poll shows it and says so once.
    with app.app_context():
        from survey.demo import demo_school_link

        token = demo_school_link(db.session()).token
        community = db.session().scalar(select(Area.code).where(Area.name == "桂花社区"))
    # The parent answers in a browser context of their own, so the board's tab stays visible
    # (a hidden tab skips its polls by design).
    parent_context = page.context.browser.new_context(viewport={"width": 390, "height": 844})
    parent = parent_context.new_page()
    parent.goto(f"{live_server}/s/{token}")
    parent.locator("#f-community").select_option(community)
    for group in parent.locator("fieldset.question").all():
        group.locator("label.choice").nth(1).click()
    parent.get_by_role("button", name="提交问卷").click()
    assert parent.locator("h1").inner_text() == "提交成功"
    parent_context.close()

    # Each minute of the page's (fake) clock fires one poll; its fetch answers in real time, so
    # move the clock on and let the driver retry until the count shows (no fixed waits).
    status = page.get_by_role("status")
    deadline = time.monotonic() + 60
    while f"{before + 1} 份" not in status.inner_text() and time.monotonic() < deadline:
        page.clock.run_for(61_000)
        try:
            expect(status).to_contain_text(f"{before + 1} 份", timeout=5_000)
        except AssertionError:
            continue
    assert first_row.locator("td").nth(2).inner_text() == str(before + 1)
    assert f"家长答卷 {before} → {before + 1} 份" in status.inner_text()
    assert status.get_attribute("aria-live") == "polite"

    # Without JavaScript the button reloads the same page with the same counts.
    page.get_by_role("button", name="刷新").click()
    page.wait_for_load_state()
    assert page.locator("#board tbody tr").first.locator("td").nth(2).inner_text() == str(before + 1)
    assert not [e for e in errors if "Content Security Policy" in e], errors


@pytest.fixture
def axe_page(phone):
    """A desktop-sized page that lets the test inject axe-core despite the Content-Security-Policy."""
    context = phone.context.browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True, locale="zh-CN")
    yield context.new_page()
    context.close()


def test_board_dashboard_and_community_page_have_no_serious_accessibility_violations(app, demo, live_server, axe_page):
    assert demo.invoke(args=["analyze"]).exit_code == 0
    assert demo.invoke(args=["analyze", "--questionnaire", "minor"]).exit_code == 0
    for username, role, area in (("boss", "city", "C"), ("xiaoxue", "school", "D01")):
        extra = ["--school", SCHOOL] if role == "school" else []
        assert demo.invoke(args=["create-user", username, "--role", role, "--area", area, *extra,
                                 "--password", PASSWORD]).exit_code == 0
    with app.app_context():
        community = db.session().scalar(select(Area.code).where(Area.name == "桂花社区"))
    page = axe_page
    found = {}
    log_in(page, live_server, "xiaoxue")
    found["board"] = axe_violations(page)
    page.context.clear_cookies()
    log_in(page, live_server, "boss")
    for name, path in (("city", "/office/area/C"), ("district", "/office/area/D01"), ("community", f"/office/community/{community}")):
        page.goto(f"{live_server}{path}")
        page.wait_for_load_state("networkidle")
        found[name] = axe_violations(page)
    assert found == {"board": [], "city": [], "district": [], "community": []}

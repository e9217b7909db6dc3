"""The office map in headless Chromium: SVG on a 390 px phone (no plotly.js fetched), plotly's choropleth on a
desktop (plotly.js and its empty base map from this server, nothing from elsewhere), axe-core on both, a site page.

Set SCREENSHOT_DIR to keep the screenshots.
"""
from __future__ import annotations

import pytest

from tests.conftest import PHONE, build_once, shot
from tests.survey.test_e2e_board import axe_violations
from tests.survey.test_e2e_office_phone import BUDGET, assert_fits_a_phone, build_office, first_load, logged_in_state

pytestmark = pytest.mark.e2e
DESKTOP = {"viewport": {"width": 1400, "height": 1000}, "locale": "zh-CN"}


@pytest.fixture
def office(app):
    return build_once(app, "office-phone", build_office)


def test_the_map_on_a_phone_is_svg_with_links_and_no_plotly(app, office, live_server, browser):
    state = logged_in_state(browser, live_server)
    page, decoded, wire, encodings = first_load(browser, state, f"{live_server}/office/map")
    assert not any("plotly" in url for url in encodings), list(encodings)
    assert decoded < BUDGET and wire < BUDGET, (decoded, wire)
    assert page.locator("svg.map a.area").count() == 36 and page.locator("svg.map a.site").count() >= 36
    assert page.locator("#map-static").is_visible() and page.locator("#map-interactive").is_hidden()
    assert_fits_a_phone(page, "map")
    shot(page, "60-phone-map")
    first = page.locator("svg.map a.area").first
    name = first.get_attribute("aria-label").split("：")[0]
    first.tap()
    page.wait_for_url("**/office/community/*")
    page.wait_for_load_state("load")  # its style sheet sent whole before the context closes
    assert page.locator("h1").inner_text().startswith(name)
    page.context.close()

    page, _, _, _ = first_load(browser, state, f"{live_server}/office/site/{office['community']}-P1")
    assert page.locator("dl.facts").is_visible() and page.locator("svg#site-map a.site").count() == 1
    assert_fits_a_phone(page, "site")
    shot(page, "61-phone-site")
    page.context.close()

    checked = browser.new_context(storage_state=state, bypass_csp=True, **PHONE)  # axe-core is added inline
    page = checked.new_page()
    for path in ("/office/map", f"/office/site/{office['community']}-P1", f"/office/area/{office['district']}/sites"):
        page.goto(f"{live_server}{path}")
        assert axe_violations(page) == [], path
    checked.close()


def test_the_map_on_a_desktop_is_plotlys_choropleth_from_this_server(app, office, live_server, browser):
    state = logged_in_state(browser, live_server)
    context = browser.new_context(storage_state=state, **DESKTOP)
    page = context.new_page()
    errors: list[str] = []
    elsewhere: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: None if request.url.startswith(live_server) else elsewhere.append(request.url))
    page.goto(f"{live_server}/office/map/{office['district']}")
    page.wait_for_selector("#map-interactive .main-svg", timeout=30_000)
    assert page.locator("#map-interactive path.choroplethlocation").count() == 12  # the district's communities
    assert page.locator("#map-static").is_hidden()
    assert errors == [] and elsewhere == []  # under the Content-Security-Policy
    shot(page, "62-desktop-map-plotly")
    page.get_by_role("button", name="显示静态地图").click()
    assert page.locator("#map-static").is_visible() and page.locator("svg.map a.area").count() == 12
    shot(page, "63-desktop-map-static")
    page.wait_for_load_state("load")
    context.close()

    checked = browser.new_context(storage_state=state, bypass_csp=True, **DESKTOP)  # axe-core is added inline
    page = checked.new_page()
    page.goto(f"{live_server}/office/map/{office['district']}")
    page.wait_for_selector("#map-interactive .main-svg", timeout=30_000)
    assert axe_violations(page) == []
    checked.close()

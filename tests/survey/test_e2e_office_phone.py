"""Office pages on a 390x844 phone in headless Chromium: no sideways page scroll, tables that keep
names on one line, a heatmap read by tapping, and a first load under 1 MB.

Set SCREENSHOT_DIR to keep the screenshots.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from benchmarks.page_weight import add_past_wave
from survey import db
from survey.auth import create_user
from survey.models import Area
from tests.conftest import PASSWORD, PHONE, build_once, shot

pytestmark = pytest.mark.e2e
BUDGET = 1_000_000

# For every table cell whose text wraps onto more lines, its text and the width of its content in
# ems: a cell that breaks a name one character a line is about 1 em wide.
WRAPPED_CELL_WIDTHS = """() => {
  const out = [];
  for (const cell of document.querySelectorAll('main table td, main table th')) {
    const text = cell.innerText.trim();
    if (!text || cell.offsetParent === null || cell.querySelector('details[open], br, .note')) continue;
    const style = getComputedStyle(cell);
    const line = parseFloat(style.lineHeight) || 1.6 * parseFloat(style.fontSize);
    const range = document.createRange();
    range.selectNodeContents(cell);
    if (range.getBoundingClientRect().height > 1.5 * line) {
      const inner = cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      out.push([text, inner / parseFloat(style.fontSize)]);
    }
  }
  return out;
}"""


@pytest.fixture
def office(app):
    """The demo city analysed, with a past wave (a trend on community pages) and a city account; the codes of
    its first district, street and community. Built once a session, copied into each test's database."""
    return build_once(app, "office-phone", build_office)


def build_office(app) -> dict[str, str]:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo", "--respondents", "600"]).exit_code == 0
    assert runner.invoke(args=["analyze"]).exit_code == 0
    with app.app_context(), db.write_transaction() as session:
        create_user(session, "boss", PASSWORD, "city", "C")
        add_past_wave(session)
        district = session.scalars(select(Area).where(Area.level == "district").order_by(Area.code)).first()
        street = session.scalars(select(Area).where(Area.level == "street").order_by(Area.code)).first()
        community = session.scalars(select(Area).where(Area.level == "community").order_by(Area.code)).first()
        return {"district": district.code, "street": street.code, "community": community.code}


def logged_in_state(browser, base: str) -> dict:
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(f"{base}/office/login")
    page.get_by_label("用户名").fill("boss")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/office/area/C")
    state = context.storage_state()
    context.close()
    return state


def first_load(browser, state: dict, url: str):
    """Open ``url`` in a fresh context (empty cache) with the session cookie; return the page and its bytes.

    Bytes are (decoded bodies, bodies + headers as transferred) summed over every response.
    """
    context = browser.new_context(storage_state=state, **PHONE)
    page = context.new_page()
    responses = []
    page.on("response", lambda response: responses.append(response))
    page.goto(url)
    page.wait_for_load_state("load")
    decoded = sum(len(r.body()) for r in responses)
    sizes = [r.request.sizes() for r in responses]
    wire = sum(s["responseBodySize"] + s["responseHeadersSize"] for s in sizes)
    encodings = {r.url: r.headers.get("content-encoding", "") for r in responses}
    return page, decoded, wire, encodings


def assert_fits_a_phone(page, name: str) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
    wrapped = page.evaluate(WRAPPED_CELL_WIDTHS)
    assert all(width >= 3 for _, width in wrapped), (name, wrapped)  # three characters a line at least


def test_dashboard_and_community_page_on_a_phone(app, office, live_server, browser):
    state = logged_in_state(browser, live_server)

    page, decoded, wire, encodings = first_load(browser, state, f"{live_server}/office/area/C")
    assert page.locator("h1").inner_text().startswith("示范市")
    assert decoded < BUDGET and wire < BUDGET, (decoded, wire)
    assert encodings[f"{live_server}/office/area/C"] in {"gzip", "br", "zstd"}  # compressed on the wire
    assert wire < decoded / 2, (decoded, wire)
    assert page.locator("script").count() == 0  # charts are inline SVG: no JavaScript at all
    assert_fits_a_phone(page, "city dashboard")
    # The communities at risk keep their names on one line (one line box per link).
    names = page.locator("table.data.sticky tbody tr td:first-child a")
    assert names.count() >= 3
    assert page.evaluate("""() => [...document.querySelectorAll('table.data.sticky tbody td:first-child a')]
                            .every(a => a.getClientRects().length === 1)""")
    at_risk = page.locator("section", has=page.locator("h2", has_text="重点关注社区")).locator("tbody tr td:first-child a")
    assert page.locator("svg#cost rect").count() == min(at_risk.count(), 12) >= 1
    shot(page, "30-phone-city-dashboard")

    # Tapping a heatmap score shows its sample size and 95% interval; tapping again hides them.
    cell = page.locator("table.heatmap td.score").first
    detail = cell.locator(".detail")
    assert not detail.is_visible()
    cell.locator("summary").tap()
    assert detail.is_visible()
    text = detail.inner_text()
    assert text.startswith("n=") and "–" in text, text
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    cell.scroll_into_view_if_needed()
    shot(page, "31-phone-heatmap-tapped")
    cell.locator("summary").tap()
    assert not detail.is_visible()
    page.context.close()

    community_url = f"{live_server}/office/community/{office['community']}"
    page, decoded, wire, _ = first_load(browser, state, community_url)
    assert decoded < BUDGET and wire < BUDGET, (decoded, wire)
    assert_fits_a_phone(page, "community page")
    assert page.locator("svg#trend polygon").count() == 1 and page.locator("svg#trend circle").count() == 2
    shot(page, "32-phone-community")
    page.context.close()

    for name, path in [("district", f"/office/area/{office['district']}"), ("street", f"/office/area/{office['street']}"),
                       ("problems", f"/office/area/{office['district']}/problems"),
                       ("schools", f"/office/area/{office['district']}/schools")]:
        page, decoded, wire, _ = first_load(browser, state, f"{live_server}{path}")
        assert decoded < BUDGET, (name, decoded)
        assert_fits_a_phone(page, name)
        shot(page, f"33-phone-{name}")
        page.context.close()

"""The fieldwork monitor on a 390x844 phone in headless Chromium: fits the screen, sorts by plain links.

Set SCREENSHOT_DIR to keep the screenshots.
"""
from __future__ import annotations

import pytest

from tests.conftest import PHONE, shot
from tests.survey.test_e2e_office_phone import assert_fits_a_phone, logged_in_state, office  # noqa: F401  (a fixture)

pytestmark = pytest.mark.e2e


def test_fieldwork_page_on_a_phone(app, office, live_server, browser):  # noqa: F811
    state = logged_in_state(browser, live_server)
    context = browser.new_context(storage_state=state, **PHONE)
    page = context.new_page()
    page.goto(f"{live_server}/office/area/C")
    page.get_by_role("link", name="调查进度", exact=True).tap()  # the office navigation
    page.wait_for_url("**/office/fieldwork")
    assert page.locator("h1").inner_text().startswith("调查进度")
    assert page.locator("script").count() == 0
    assert_fits_a_phone(page, "fieldwork")
    rows = page.locator("table.fieldwork tbody tr")
    assert rows.count() >= 30
    # Names stay on one line in the sticky first column.
    assert page.evaluate("""() => [...document.querySelectorAll('table.fieldwork tbody td:first-child a')]
                            .every(a => a.getClientRects().length === 1)""")
    shot(page, "40-phone-fieldwork")
    # Sorting is a plain link: the fewest answers first.
    page.get_by_role("link", name="答卷最少").tap()
    page.wait_for_url("**sort=answers")
    answers = [int(t) for t in page.locator("table.fieldwork tbody td:nth-child(2)").all_inner_texts()]
    assert answers == sorted(answers)
    context.close()

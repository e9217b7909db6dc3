"""Ids in paths and query strings beyond what a database key holds are unknown ids (404 / ignored), never a 500."""
from __future__ import annotations

import pytest

from survey import db
from survey.auth import create_user
from tests.conftest import PASSWORD, client_from_own_address, logged_in

HUGE = ["2147483648", "9223372036854775808", "99999999999999999999999", "0"]
PATHS = ["/rectification/tasks/{n}", "/rectification/photos/{n}", "/rectification/units/{n}",
         "/office/questionnaires/citizen/v{n}.xlsx"]
POSTS = ["/rectification/tasks/{n}/start", "/office/refresh/{n}", "/office/accounts/{n}/reset",
         "/office/accounts/{n}/disable", "/office/questionnaires/citizen/v{n}/field"]
QUERIES = ["/rectification/tasks?unit={n}", "/office/questionnaires/?published={n}", "/office/?wave={n}",
           "/office/area/C?compare={n}", "/office/area/C/export/estimates.csv?compare={n}",
           "/rectification/community/A1?wave={n}"]


@pytest.fixture
def boss(app, city):
    with app.app_context(), db.write_transaction() as session:
        create_user(session, "boss", PASSWORD, "city", "C")
    return logged_in(client_from_own_address(app), "boss")


@pytest.mark.parametrize("number", HUGE)
def test_ids_too_large_for_the_database_are_unknown_ids(app, boss, number):
    for path in PATHS:
        assert boss.get(path.format(n=number)).status_code == 404, path
    for path in POSTS:
        assert boss.post(path.format(n=number)).status_code in (400, 404), path  # 400: no CSRF token
    for path in QUERIES:
        assert boss.get(path.format(n=number)).status_code < 500, path

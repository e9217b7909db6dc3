"""What an outside attack session sent that once gave 500: now a plain 4xx or a message."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from survey import db
from survey.auth import create_user
from survey.models import Area, Unit
from survey.rectification.tasks import Pick, TaskError, create_tasks
from tests.conftest import PASSWORD, client_from_own_address, logged_in

NAMELESS_PART = (b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n"
                 b"--b\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nx\r\n--b--\r\n")


@pytest.mark.parametrize("path", ["/office/login", "/office/logout", "/entry/", "/rectification/tasks/1/report"])
def test_a_multipart_part_without_a_name_is_a_400_not_a_500(app, client, path):
    reply = client.post(path, data=NAMELESS_PART, content_type="multipart/form-data; boundary=b")
    assert reply.status_code == 400


@pytest.mark.parametrize("host", ["x" * 64, "a." * 140 + "cn", "bad host", "例子.cn"])
def test_a_host_that_is_no_host_name_is_a_400_not_a_500(app, client, host):
    assert client.get("/office/login", headers={"Host": host}).status_code == 400


@pytest.mark.parametrize("host", ["survey.example.cn", "127.0.0.1:8000", "[::1]:5000", "localhost"])
def test_ordinary_hosts_still_work(app, client, host):
    assert client.get("/office/login", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("name", ["code", "endpoint", "_method", "_external"])
def test_odd_query_names_on_a_redirecting_page_are_dropped(app, city, name):
    with app.app_context(), db.write_transaction() as session:
        create_user(session, "boss", PASSWORD, "city", "C")
    boss = logged_in(client_from_own_address(app), "boss")
    assert boss.get(f"/office/area/A1?{name}=x&q=citizen").status_code in (302, 404)
    assert boss.get(f"/office/community/S1?{name}=x").status_code in (302, 404)


@pytest.mark.parametrize("typed", ["9999-12-31", "0001-01-01", "2100-01-01"])
def test_dates_outside_the_surveys_years_are_refused_with_a_message(app, city, typed):
    with app.app_context(), db.write_transaction() as session:
        create_user(session, "boss", PASSWORD, "city", "C")
    boss = logged_in(client_from_own_address(app), "boss")
    assert boss.get(f"/rectification/rates?from={typed}").status_code == 400
    assert boss.get(f"/rectification/rates.csv?to={typed}").status_code == 400
    result = app.test_cli_runner().invoke(args=["create-wave", "w", "--opens", typed, "--closes", "2027-01-01"])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_a_deadline_more_than_five_years_ahead_is_refused(app, city):
    with app.app_context(), db.write_transaction() as session:
        boss = create_user(session, "boss", PASSWORD, "city", "C")
        unit = Unit(name="市城管局")
        session.add(unit)
        area = session.scalars(select(Area).where(Area.code == "A1")).one()
        with pytest.raises(TaskError, match="最多5年"):
            create_tasks(session, boss, [(Pick(area, "路灯", topic="环境卫生"), unit)],
                         datetime.now(UTC) + timedelta(days=6 * 365), "normal")

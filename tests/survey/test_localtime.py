"""Times are stored in UTC and shown, exported and typed in the city's zone (TIMEZONE)."""
from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from survey import create_app, db
from survey.auth import create_user
from survey.localtime import format_local, parse_local
from survey.models import AnalysisRun, Area, Response, Wave
from survey.reading.reporting import area_report
from tests.conftest import PASSWORD, dispose, form_fields, full_answers
from tests.conftest import office_login as login

LUNCH_UTC = datetime(2026, 11, 26, 12, 38, tzinfo=UTC)  # 20:38 in Beijing
LATE_UTC = datetime(2026, 11, 26, 17, 5, tzinfo=UTC)  # already 27 November in Beijing
OPENS_UTC = datetime(2020, 1, 2, 12, 38, tzinfo=UTC)


def pdftotext(data: bytes) -> str:
    assert shutil.which("pdftotext"), "poppler-utils is missing: sudo apt-get install poppler-utils"
    return subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True).stdout.decode()


def same_database(app, **config):
    """Return a second app on ``app``'s database with other settings (as after a restart)."""
    return create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": "test-secret",
                       "SERVER_NAME": "survey.test"} | config)


@pytest.fixture
def analysed(app, runner, city):
    """Six answers, one submitted at 12:38 UTC and one commented at 17:05 UTC, analysed at 12:38 UTC."""
    for i in range(6):
        client = app.test_client()
        fields = form_fields(client.get(f"/s/{city['A1']}").get_data(as_text=True))
        answers = full_answers(q01=str(1 + i % 5), comment=f"意见{i}号")
        assert client.post(f"/s/{city['A1']}", data=fields | answers).status_code == 200
    with app.app_context(), db.write_transaction() as session:
        for response in session.scalars(select(Response)):
            response.duration_s, response.flag_straightline = 240.0, False  # no speeders in this test
    result = runner.invoke(args=["analyze"])
    assert result.exit_code == 0, result.output
    with app.app_context(), db.write_transaction() as session:
        first, *_, last = session.scalars(select(Response).order_by(Response.id)).all()
        first.submitted_at = LUNCH_UTC
        last.submitted_at = LATE_UTC
        session.scalars(select(AnalysisRun)).one().created_at = LUNCH_UTC
        session.scalars(select(Wave)).one().opens_at = OPENS_UTC
        create_user(session, "boss", PASSWORD, "city", "C")
        return first.id


def test_pages_exports_and_pdf_show_beijing_time(app, analysed):
    client = app.test_client()
    login(client, "boss")
    area = client.get("/office/area/C").get_data(as_text=True)
    assert "分析于 2026-11-26 20:38" in area and "12:38" not in area
    community = client.get("/office/community/A1").get_data(as_text=True)
    assert re.search(r'<span class="muted">2026-11-27</span> 意见5号', community)  # the local date, not 11-26

    rows = list(csv.reader(io.StringIO(client.get("/office/area/C/export/responses.csv").get_data().decode("utf-8-sig"))))
    column = rows[1].index("提交时间")  # the first row holds variable names, the second the Chinese labels
    assert [r[column][:16] for r in rows[2:] if r[0] == str(analysed)] == ["2026-11-26 20:38"]
    assert "2026-11-27 01:05" in [r[column][:16] for r in rows[2:]]
    sheet = load_workbook(io.BytesIO(client.get("/office/area/C/export/responses.xlsx").data)).active
    cells = {row[0]: row[column] for row in sheet.iter_rows(min_row=3, values_only=True)}
    assert cells[analysed].strftime("%Y-%m-%d %H:%M") == "2026-11-26 20:38"  # a local date-time cell

    pdf = pdftotext(client.get("/office/area/C/report.pdf").data)
    assert "2020-01-02 20:38" in pdf  # the wave opened at 12:38 UTC
    with app.app_context():
        session = db.session()
        run = session.scalars(select(AnalysisRun)).one()
        city = session.scalars(select(Area).where(Area.code == "C")).one()
        pdf = pdftotext(area_report(session, run, city, now=LUNCH_UTC))
    assert "生成时间：2026-11-26 20:38" in pdf


def test_another_timezone_setting_changes_what_is_shown(app, analysed):
    other = same_database(app, TIMEZONE="Europe/London")
    client = other.test_client()
    login(client, "boss")
    assert "分析于 2026-11-26 12:38" in client.get("/office/area/C").get_data(as_text=True)
    body = client.get("/office/area/C/export/responses.csv").get_data().decode("utf-8-sig")
    assert "2026-11-26 12:38" in body and "20:38" not in body
    dispose(other)


def test_duplicate_paper_message_gives_the_local_time(app, client, city):
    with app.app_context(), db.write_transaction() as session:
        create_user(session, "wangge", PASSWORD, "grid", "A2")
    login(client, "wangge")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/entry/").get_data(as_text=True)).group(1)
    numbers = {"sex": "2", "age_band": "4", "resident": "1", "k01": "1", "k02": "1", "k03": "1", "k04": "2"}
    numbers |= {f"q{i:02d}": str(1 + i % 6) for i in range(1, 11)}
    assert client.post("/entry/", data={"csrf_token": token, "serial": "A2-7"} | numbers).status_code == 200
    with app.app_context(), db.write_transaction() as session:
        session.scalars(select(Response)).one().submitted_at = LUNCH_UTC
    again = client.post("/entry/", data={"csrf_token": token, "serial": "A2-7"} | numbers)
    assert again.status_code == 409 and "（wangge，11-26 20:38）" in again.get_data(as_text=True)


@pytest.mark.parametrize(
    ("zone", "opens", "stored", "printed"),
    [
        (None, "2026-10-01", datetime(2026, 9, 30, 16, 0, tzinfo=UTC), "2026-10-01 00:00 Asia/Shanghai"),
        (None, "2026-10-01T08:00", datetime(2026, 10, 1, 0, 0, tzinfo=UTC), "2026-10-01 08:00 Asia/Shanghai"),
        (None, "2026-10-01T08:00+00:00", datetime(2026, 10, 1, 8, 0, tzinfo=UTC), "2026-10-01 16:00 Asia/Shanghai"),
        ("UTC", "2026-10-01", datetime(2026, 10, 1, 0, 0, tzinfo=UTC), "2026-10-01 00:00 UTC"),
        ("America/New_York", "2026-10-01", datetime(2026, 10, 1, 4, 0, tzinfo=UTC), "2026-10-01 00:00 America/New_York"),
    ],
)
def test_create_wave_reads_dates_in_the_local_zone(app, zone, opens, stored, printed):
    target = same_database(app, TIMEZONE=zone) if zone else app
    result = target.test_cli_runner().invoke(args=["create-wave", "秋季", "--opens", opens, "--closes", "2027-01-01"])
    assert result.exit_code == 0, result.output
    assert f"Created wave 秋季: {printed} to 2027-01-01 00:00 {zone or 'Asia/Shanghai'}" in result.output
    with target.app_context():
        assert db.session().scalars(select(Wave)).one().opens_at == stored
    bad = target.test_cli_runner().invoke(args=["create-wave", "错", "--opens", "10/01/2026", "--closes", "2027-01-01"])
    assert bad.exit_code == 2 and "is not a date like 2026-12-01" in bad.output
    if zone:
        dispose(target)


def test_unknown_zone_stops_the_app_with_a_clear_error(app, monkeypatch):
    with pytest.raises(ValueError, match=r"TIMEZONE 'Asia/Shangai' is not a known time zone name \(did you mean Asia/Shanghai\?\)"):
        same_database(app, TIMEZONE="Asia/Shangai")
    with pytest.raises(ValueError, match="TIMEZONE '../etc/passwd' is not a known time zone name"):
        same_database(app, TIMEZONE="../etc/passwd")
    monkeypatch.setenv("TIMEZONE", "Asia/Urumqi")
    from_env = create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": "s"})
    assert from_env.extensions["timezone"] == ZoneInfo("Asia/Urumqi")
    dispose(from_env)


def test_typed_times_round_trip_through_local_time():
    shanghai = ZoneInfo("Asia/Shanghai")
    assert format_local(parse_local("2026-12-31 23:59", shanghai), tz=shanghai) == "2026-12-31 23:59"
    assert parse_local("2027-01-01", shanghai) == datetime(2026, 12, 31, 16, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive datetime"):
        format_local(datetime(2026, 1, 1), tz=shanghai)

"""整改率 and on-time rates on a hand-computed example; the page, CSV, XLSX and the PDF 通报."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from survey import db
from survey.auth import create_user
from survey.localtime import format_local
from survey.models import Area, User
from survey.rectification.rates import rates
from survey.rectification.tasks import Pick, create_tasks, transition
from survey.rectification.units import save_unit
from tests.conftest import PASSWORD
from tests.conftest import logged_in as login
from tests.survey.test_office import pdftotext

NOW = datetime.now(UTC)
# (unit, community, deadline in days from now, steps with the day each was taken)
PLAN = [
    ("U1", "A1", -10, [("start", -14), ("report", -12), ("close", -11)]),  # due, closed on time
    ("U1", "A1", -8, [("start", -9), ("report", -5), ("close", -4)]),      # due, closed late
    ("U1", "A2", -5, [("start", -6)]),                                      # due, still 整改中: overdue
    ("U1", "A2", 5, []),                                                    # not due yet
    ("U2", "B1", -3, []),                                                   # due, still 待整改: overdue
    ("U2", "B1", -30, [("start", -35), ("report", -33), ("close", -32)]),  # due before the period
    ("U2", "B1", -2, [("start", -6), ("report", -4)]),                      # due, reported, not yet closed
]


@pytest.fixture
def tasks(app, city):
    with app.app_context(), db.write_transaction() as session:
        boss = create_user(session, "boss", PASSWORD, "city", "C")
        create_user(session, "s2", PASSWORD, "street", "S2")
        units = {"U1": save_unit(session, None, "一号单位", "", "", ["A1", "A2"]),
                 "U2": save_unit(session, None, "二号单位", "", "", ["B1"])}
        members = {name: create_user(session, f"member{name}", PASSWORD, "unit", "C", unit_name=unit.name)
                   for name, unit in units.items()}
        for n, (unit, community, days, steps) in enumerate(PLAN):
            area = session.scalars(select(Area).where(Area.code == community)).one()
            (task,) = create_tasks(session, boss, [(Pick(area, f"任务{n}"), units[unit])], NOW + timedelta(days=days),
                                   "normal", now=NOW - timedelta(days=40))
            for action, day in steps:
                actor = boss if action == "close" else members[unit]
                transition(session, actor, task, action, "说明", now=NOW + timedelta(days=day))
    return app


def test_rates_by_unit_street_and_community_match_the_hand_count(tasks):
    start, end = NOW - timedelta(days=20), NOW + timedelta(days=1)
    with tasks.app_context():
        session = db.session()
        boss = session.scalars(select(User).where(User.username == "boss")).one()
        by_unit, total = rates(session, boss, "unit", start, end, NOW)
        assert [(r.name, r.due, r.closed, r.on_time, r.overdue_open) for r in by_unit] == [
            ("二号单位", 2, 0, 0, 1), ("一号单位", 3, 2, 1, 1)]
        assert by_unit[0].rate == 0.0 and by_unit[1].rate == pytest.approx(2 / 3)
        assert by_unit[1].on_time_rate == pytest.approx(1 / 3)
        assert (total.due, total.closed, total.on_time, total.overdue_open) == (5, 2, 1, 2)
        assert total.rate == pytest.approx(0.4) and total.on_time_rate == pytest.approx(0.2)
        streets, _ = rates(session, boss, "street", start, end, NOW)
        assert [(r.name, r.due, r.closed) for r in streets] == [("二街道", 2, 0), ("一街道", 3, 2)]
        communities, _ = rates(session, boss, "community", start, end, NOW)
        # 丙 and 乙 both at 0%: the one with more tasks due comes first.
        assert [(r.name, r.due, r.closed, r.on_time) for r in communities] == [
            ("丙社区", 2, 0, 0), ("乙社区", 1, 0, 0), ("甲社区", 2, 2, 1)]
        # A street office counts only its own area's tasks.
        s2 = session.scalars(select(User).where(User.username == "s2")).one()
        rows, total = rates(session, s2, "community", start, end, NOW)
        assert [(r.name, r.due) for r in rows] == [("丙社区", 2)] and total.due == 2
        # The task due 30 days ago counts in a period that holds its deadline.
        _, longer = rates(session, boss, "unit", NOW - timedelta(days=31), end, NOW)
        assert (longer.due, longer.closed, longer.on_time) == (6, 3, 2)


def test_rates_page_exports_and_pdf_bulletin(tasks, client):
    login(client, "boss")
    start = format_local(NOW - timedelta(days=20), "%Y-%m-%d")
    end = format_local(NOW, "%Y-%m-%d")
    args = {"by": "unit", "from": start, "to": end}
    html = client.get("/rectification/rates", query_string=args).get_data(as_text=True)
    assert html.index("二号单位") < html.index("一号单位") and "66.7%" in html and "40.0%" in html
    rows = list(csv.reader(io.StringIO(client.get("/rectification/rates.csv", query_string=args).data.decode("utf-8-sig"))))
    assert rows[0][:6] == ["倒数名次", "名称", "所属/联系人", "到期任务", "已销号", "整改率(%)"]
    assert rows[1][:6] == ["1", "二号单位", "", "2", "0", "0.0"] and rows[2][5] == "66.7" and rows[-1][1] == "合计"
    sheet = load_workbook(io.BytesIO(client.get("/rectification/rates.xlsx", query_string=args).data)).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[2][1] == "一号单位" and values[2][5] == 66.7 and values[2][7] == 33.3
    pdf = client.get("/rectification/rates.pdf", query_string=args)
    assert pdf.mimetype == "application/pdf"
    text = pdftotext(pdf.data)
    assert "测试市整改情况通报" in text and "整改率最低的是二号单位（0.0%）" in text.replace("\n", "")
    assert text.index("二号单位") < text.index("一号单位")
    # A unit account has no ranking page; an unknown grouping or a bad date is refused.
    assert client.get("/rectification/rates", query_string={"by": "school"}).status_code == 404
    assert client.get("/rectification/rates", query_string={"from": "yesterday"}).status_code == 400
    login(client, "memberU1")
    assert client.get("/rectification/rates").status_code == 403

"""Moving an area in `flask import-areas`: its subtree, users and tasks follow it; bad files stop with a line."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from survey import db
from survey.auth import create_user
from survey.models import Area, Task, Unit, User
from survey.reading import documents
from survey.rectification.tasks import Pick, create_tasks
from tests.conftest import PASSWORD, client_from_own_address, logged_in

MOVED = "D03S3"


@pytest.fixture
def moved_city(app):
    """The demo city with accounts of the old and new district and of the street that moves, and a task below it."""
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo", "--respondents", "60"]).exit_code == 0
    with app.app_context(), db.write_transaction() as session:
        boss = create_user(session, "boss", PASSWORD, "city", "C")
        create_user(session, "old_district", PASSWORD, "district", "D03")
        create_user(session, "new_district", PASSWORD, "district", "D02")
        create_user(session, "moved_street", PASSWORD, "street", MOVED)
        street = session.scalars(select(Area).where(Area.code == MOVED)).one()
        community = street.children[0]
        unit = session.scalars(select(Unit)).first()
        (task,) = create_tasks(session, boss, [(Pick(community, "楼道清理", topic="环境卫生"), unit)],
                               datetime.now(UTC) + timedelta(days=7), "normal")
        return {"street": street.name, "community": community.code, "task": task.id,
                "below": [a.code for a in session.scalars(select(Area).where(Area.path.startswith(street.path)))]}


def pages(client, place: dict) -> list[int]:
    return [client.get(f"/office/community/{place['community']}").status_code,
            client.get(f"/office/area/{MOVED}").status_code,
            client.get(f"/rectification/tasks/{place['task']}").status_code]


def test_a_street_moved_to_another_district_takes_its_communities_tasks_and_users_along(app, moved_city, tmp_path):
    old, new, street = (client_from_own_address(app) for _ in range(3))
    logged_in(old, "old_district"), logged_in(new, "new_district"), logged_in(street, "moved_street")
    assert (pages(old, moved_city), pages(new, moved_city)) == ([200] * 3, [404] * 3)
    cached_report = documents.cache_root(app) / "run-1-x" / "report-D03.pdf"  # lists the street's communities
    cached_report.parent.mkdir(parents=True)
    cached_report.write_bytes(b"%PDF-1.7")
    csv_file = tmp_path / "move.csv"
    csv_file.write_text(f"code,name,level,parent_code\n{MOVED},{moved_city['street']},street,D02\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["import-areas", str(csv_file)])
    assert result.exit_code == 0, result.output
    assert not cached_report.exists()
    assert (pages(old, moved_city), pages(new, moved_city), pages(street, moved_city)) == ([404] * 3, [200] * 3, [200] * 3)
    with app.app_context():
        session = db.session()
        d02 = session.scalars(select(Area).where(Area.code == "D02")).one()
        below = session.scalars(select(Area).where(Area.path.startswith(d02.path))).all()
        assert set(moved_city["below"]) <= {a.code for a in below}
        assert all(a.path == f"{a.parent.path}{a.id}/" for a in session.scalars(select(Area).where(Area.level != "city")))
        user = session.scalars(select(User).where(User.username == "moved_street")).one()
        assert user.area.code == MOVED and session.get(Task, moved_city["task"]).area.code == moved_city["community"]


def test_an_area_with_areas_under_it_cannot_change_its_level(app, moved_city, tmp_path):
    csv_file = tmp_path / "level.csv"
    csv_file.write_text(f"code,name,level,parent_code\n{MOVED},{moved_city['street']},community,D03S1\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["import-areas", str(csv_file)])
    assert result.exit_code == 1 and "line 2" in result.output and "level cannot change" in result.output


@pytest.mark.parametrize("command", ["import-areas", "import-units", "import-schools", "import-margins"])
@pytest.mark.parametrize("bad", ["\x00", "\x1b", "\u202e"], ids=["NUL", "ESC", "bidi"])
def test_a_control_character_in_an_imported_csv_names_its_line_and_stores_nothing(app, tmp_path, command, bad):
    header = {"import-areas": "code,name,level,parent_code", "import-units": "name,contact,phone,communities,grids",
              "import-schools": "school,district,class,grade,pupils", "import-margins": "variable,category,total"}
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text(f"{header[command]}\nC,测{bad}试市,city,\n", encoding="utf-8")
    with app.app_context():
        before = db.session().scalar(select(Area.id).limit(1))
    result = app.test_cli_runner().invoke(args=[command, str(csv_file)])
    assert result.exit_code == 1, result.output
    assert "line 2" in result.output and "control character" in result.output and "Traceback" not in result.output
    with app.app_context():
        assert db.session().scalar(select(Area.id).limit(1)) == before

"""The data-quality box counts the responses of the area shown, not the whole city."""
from __future__ import annotations

import re

from sqlalchemy import func, select, update

from survey import db
from survey.auth import create_user
from survey.models import AnalysisRun, Area, Response
from survey.quality import unflagged
from survey.scope import within
from tests.conftest import PASSWORD
from tests.conftest import office_login as login


def counts(app, code: str) -> tuple[int, int, int]:
    """Return (responses, flagged, same choice throughout) of the area's subtree, straight from the table."""
    with app.app_context():
        session = db.session()
        area = session.scalar(select(Area).where(Area.code == code))
        base = select(func.count()).select_from(Response).join(Area, Area.id == Response.area_id).where(within(area))
        return (session.scalar(base), session.scalar(base.where(~unflagged())),
                session.scalar(base.where(Response.flag_straightline)))


def box(html: str) -> tuple[str, int, int, int]:
    found = re.search(r"<h2>数据质量（(\w+)本轮）</h2>\s*<p>共 (\d+) 份答卷，(\d+) 份被标记.*?全部同一选项 (\d+) 份", html, re.S)
    assert found, html
    return found.group(1), int(found.group(2)), int(found.group(3)), int(found.group(4))


def test_district_and_street_users_see_the_flagged_counts_of_their_own_area(app, client, runner):
    assert runner.invoke(args=["seed-demo", "--respondents", "400"]).exit_code == 0
    with app.app_context(), db.write_transaction() as session:
        # Straight-liners: 2 in the first district, 9 in the second, so the city's count is not any district's.
        for code, how_many in (("D01S1C1", 2), ("D02S1C1", 9)):
            area = session.scalar(select(Area).where(Area.code == code))
            ids = session.scalars(select(Response.id).where(Response.area_id == area.id).order_by(Response.id).limit(how_many)).all()
            assert len(ids) == how_many
            session.execute(update(Response).where(Response.id.in_(ids)).values(flag_straightline=True))
        create_user(session, "d1", PASSWORD, "district", "D01")
        create_user(session, "s1", PASSWORD, "street", "D01S1")
        create_user(session, "boss", PASSWORD, "city", "C")
    assert runner.invoke(args=["analyze"]).exit_code == 0
    with app.app_context():
        stored = db.session().scalars(select(AnalysisRun)).one().summary["quality"]
        district_name = db.session().scalar(select(Area.name).where(Area.code == "D01"))
        street_name = db.session().scalar(select(Area.name).where(Area.code == "D01S1"))

    login(client, "d1")
    name, total, flagged, straight = box(client.get("/office/area/D01").get_data(as_text=True))
    assert name == district_name and (total, flagged, straight) == counts(app, "D01")
    assert straight >= 2 and total < stored["responses"] and flagged < stored["flagged"]
    assert straight < stored["flag_straightline"]

    street = app.test_client()
    login(street, "s1")
    name, total, flagged, straight = box(street.get("/office/area/D01S1").get_data(as_text=True))
    assert name == street_name and (total, flagged, straight) == counts(app, "D01S1") and straight >= 2

    city = app.test_client()
    login(city, "boss")
    _, total, flagged, straight = box(city.get("/office/area/C").get_data(as_text=True))
    assert (total, flagged, straight) == (stored["responses"], stored["flagged"], stored["flag_straightline"]) == counts(app, "C")
    assert straight >= 11

"""Rectification (整改): units, the unit role's scope, tasks and their status machine, history, photos."""
from __future__ import annotations

import io
import itertools
import re
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from survey import db
from survey.auth import create_user, set_password
from survey.models import TASK_STATUSES, Area, Task, TaskEvent, TaskPhoto, Unit, User
from survey.rectification import photos
from survey.rectification.tasks import ACTIONS, OPEN, Pick, TaskError, create_tasks, transition
from survey.scope import visible_units
from tests.conftest import BACKENDS, PASSWORD, client_from_own_address, dispose, make_app
from tests.conftest import logged_in as login

OWN_UNIT, OTHER_UNIT = "市教育局", "市民政局"  # the demo's units: 市教育局 helps D01S1C2, D01S3C3, D02S2C4, D03S1C1


@pytest.fixture(scope="module", params=BACKENDS)
def demo(request, tmp_path_factory):
    """The demo city (its units and tasks in every status) analysed, with accounts of every kind (built once)."""
    app = make_app(request.param, tmp_path_factory.mktemp("rect"))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo", "--respondents", "300"]).exit_code == 0
    assert runner.invoke(args=["analyze"]).exit_code == 0
    with app.app_context(), db.write_transaction() as session:
        create_user(session, "boss", PASSWORD, "city", "C")
        create_user(session, "d1", PASSWORD, "district", "D01")
        create_user(session, "d2", PASSWORD, "district", "D02")
        set_password(session, session.scalars(select(User).where(User.username == "jiaoyu")).one(), PASSWORD)
        create_user(session, "minzheng", PASSWORD, "unit", "C", unit_name=OTHER_UNIT)
    yield app
    dispose(app)


@pytest.fixture
def client(demo):
    client = client_from_own_address(demo, "10.8")
    return client


def token(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def user(session, name: str) -> User:
    return session.scalars(select(User).where(User.username == name)).one()


def new_task(session, unit_name: str = OWN_UNIT, community: str | None = None, title: str = "测试任务") -> Task:
    unit = session.scalars(select(Unit).where(Unit.name == unit_name)).one()
    area = session.scalars(select(Area).where(Area.code == community)).one() if community else unit.communities[0]
    (task,) = create_tasks(session, user(session, "boss"), [(Pick(area, title, topic="环境卫生"), unit)],
                           datetime.now(UTC) + timedelta(days=7), "normal")
    return task


# The status machine ---------------------------------------------------------------------------------

def test_only_the_four_changes_of_the_machine_are_allowed_from_any_status(demo):
    """Every (status, action) pair is tried by an account that may act; exactly the machine's changes succeed."""
    allowed = set()
    with demo.app_context():
        session = db.session()
        for status, action in itertools.product(TASK_STATUSES, ACTIONS):
            with db.write_transaction(session):
                task = new_task(session)
                task.status = status
                session.flush()
                actor = user(session, "jiaoyu" if ACTIONS[action][2] == "unit" else "boss")
                try:
                    event = transition(session, actor, task, action, "说明")
                except TaskError:
                    assert task.status == status
                else:
                    allowed.add((status, task.status))
                    assert (event.from_status, event.to_status, event.user_id) == (status, task.status, actor.id)
                session.rollback()
                session.begin()
    assert allowed == {("todo", "doing"), ("doing", "done"), ("done", "closed"), ("done", "doing")}
    # Seen as pairs of statuses: nothing else leads anywhere (closed is final, todo is never re-entered).
    for before, after in itertools.product(TASK_STATUSES, TASK_STATUSES):
        assert ((before, after) in allowed) == ((before, after) in {("todo", "doing"), ("doing", "done"),
                                                                     ("done", "closed"), ("done", "doing")})


def test_only_the_right_account_may_act_and_notes_are_required(demo):
    with demo.app_context():
        session = db.session()
        with db.write_transaction(session):
            task = new_task(session, community="D01S1C2")
            with pytest.raises(TaskError, match="不能"):
                transition(session, user(session, "minzheng"), task, "start")  # another unit
            with pytest.raises(TaskError, match="不能"):
                transition(session, user(session, "boss"), task, "start")  # an office does not start for the unit
            transition(session, user(session, "jiaoyu"), task, "start")
            with pytest.raises(TaskError, match="请写明整改情况"):
                transition(session, user(session, "jiaoyu"), task, "report", "  ")
            transition(session, user(session, "jiaoyu"), task, "report", "已清理")
            with pytest.raises(TaskError, match="不能"):
                transition(session, user(session, "jiaoyu"), task, "close")  # a unit cannot close its own task
            with pytest.raises(TaskError, match="不能"):
                transition(session, user(session, "d2"), task, "close")  # an office outside the community's district
            with pytest.raises(TaskError, match="请写明退回原因"):
                transition(session, user(session, "d1"), task, "return")
            transition(session, user(session, "d1"), task, "return", "照片看不出效果")
            transition(session, user(session, "jiaoyu"), task, "report", "补充了照片")
            transition(session, user(session, "boss"), task, "close", "核实到位")
            with pytest.raises(TaskError, match="已销号"):
                transition(session, user(session, "boss"), task, "return", "再看看")
            events = session.scalars(select(TaskEvent).where(TaskEvent.task_id == task.id).order_by(TaskEvent.id)).all()
            assert [(e.action, e.from_status, e.to_status, e.user.username) for e in events] == [
                ("create", None, "todo", "boss"), ("start", "todo", "doing", "jiaoyu"),
                ("report", "doing", "done", "jiaoyu"), ("return", "done", "doing", "d1"),
                ("report", "doing", "done", "jiaoyu"), ("close", "done", "closed", "boss")]
            assert events[3].note == "照片看不出效果" and task.report == "补充了照片" and task.closed_at is not None
            assert all(e.at.tzinfo is not None for e in events)
            session.rollback()


def test_an_office_gives_tasks_only_in_its_area_and_deadlines_must_be_ahead(demo):
    with demo.app_context():
        session = db.session()
        unit = session.scalars(select(Unit).where(Unit.name == OWN_UNIT)).one()
        outside = session.scalars(select(Area).where(Area.code == "D02S2C4")).one()
        with pytest.raises(TaskError, match="不在本账号的范围内"):
            create_tasks(session, user(session, "d1"), [(Pick(outside, "x"), unit)], datetime.now(UTC) + timedelta(days=1),
                         "normal")
        with pytest.raises(TaskError, match="晚于现在"):
            create_tasks(session, user(session, "boss"), [(Pick(outside, "x"), unit)], datetime.now(UTC), "normal")
        with pytest.raises(TaskError, match="文明办"):
            create_tasks(session, user(session, "jiaoyu"), [(Pick(outside, "x"), unit)],
                         datetime.now(UTC) + timedelta(days=1), "normal")
        session.rollback()


# Pages: from the problem list to tasks, and what each account sees -----------------------------------

def test_the_office_turns_checked_problems_into_tasks_for_units(demo, client):
    login(client, "boss")
    html = client.get("/office/area/C/problems").get_data(as_text=True)
    picks = re.findall(r'name="pick" value="(item:[^"]+)"', html)[:2]
    assert len(picks) == 2 and "责任单位" in html and "为勾选的问题交办整改任务" in html
    page = client.get("/rectification/area/C/new", query_string={"pick": picks})
    form = page.get_data(as_text=True)
    assert page.status_code == 200 and "交办 2 项任务" in form and "低于80分" in form
    units = re.findall(r'<select name="unit_0"[^>]*>.*?<option value="(\d+)" selected', form, re.S)
    assert units, "the community's own unit is chosen by default"
    due = (datetime.now(UTC) + timedelta(days=60)).date()
    reply = client.post(f"/rectification/area/C/new?pick={picks[0]}&pick={picks[1]}", data={
        "csrf_token": token(form), "deadline": due.isoformat(), "priority": "high", "detail": "限期整改",
        "unit_0": units[0], "unit_1": units[0], "title_0": "任务甲", "title_1": " 任务乙\r\n"})  # a textarea: one line kept
    assert reply.status_code == 303
    with demo.app_context():
        made = db.session().scalars(select(Task).where(Task.title.in_(["任务甲", "任务乙"])).order_by(Task.id)).all()
        assert len(made) == 2 and all(t.status == "todo" and t.priority == "high" for t in made)
        assert all(t.score_before is not None and t.score_before < 80 and t.wave_id for t in made)
        # The date typed is the whole day in Beijing time: the deadline is midnight after it, 16:00 UTC.
        assert made[0].deadline == datetime(due.year, due.month, due.day, 16, 0, tzinfo=UTC)
    again = client.get("/office/area/C/problems").get_data(as_text=True)
    assert ">待整改</a>" in again
    # Without the CSRF token nothing is created.
    refused = client.post(f"/rectification/area/C/new?pick={picks[0]}", data={"deadline": "2099-12-31", "unit_0": units[0]})
    assert refused.status_code in (400, 422)


def test_a_unit_sees_its_own_tasks_and_communities_and_nothing_else(demo, client):
    with demo.app_context():
        session = db.session()
        own = session.scalars(select(Task).join(Unit).where(Unit.name == OWN_UNIT)).all()
        others = session.scalars(select(Task).join(Unit).where(Unit.name != OWN_UNIT)).all()
        own_photo = session.scalars(select(TaskPhoto).where(TaskPhoto.task_id.in_([t.id for t in own]))).first()
        other_photo = session.scalars(select(TaskPhoto).where(TaskPhoto.task_id.in_([t.id for t in others]))).first()
        assert own and others and own_photo and other_photo
        own_communities = [a.code for a in session.scalars(select(Unit).where(Unit.name == OWN_UNIT)).one().communities]
        other_communities = [a.code for a in session.scalars(select(Unit).where(Unit.name == OTHER_UNIT)).one().communities]
    login(client, "jiaoyu")
    home = client.get("/office/", follow_redirects=True)
    html = home.get_data(as_text=True)
    assert home.request.path == "/rectification/" and OWN_UNIT in html and "逾期" in html
    assert '<span class="who">jiaoyu · 责任单位 · 市教育局</span>' in html
    for task in own:
        assert client.get(f"/rectification/tasks/{task.id}").status_code == 200
    for task in others:
        assert client.get(f"/rectification/tasks/{task.id}").status_code == 404
        assert client.post(f"/rectification/tasks/{task.id}/start").status_code in (400, 404)
    assert client.get(f"/rectification/photos/{own_photo.id}").status_code == 200
    assert client.get(f"/rectification/photos/{other_photo.id}").status_code == 404
    for code in own_communities:
        assert client.get(f"/rectification/community/{code}").status_code == 200
    for code in other_communities + ["D01", "C"]:
        assert client.get(f"/rectification/community/{code}").status_code == 404
    # Office pages, the office task list, units and new tasks are not a unit's.
    for path in ("/office/area/C", f"/office/community/{own_communities[0]}", "/office/area/C/problems",
                 "/office/area/C/export/responses.csv", "/rectification/tasks", "/rectification/units",
                 "/rectification/area/C/new", "/rectification/units/new", "/office/questionnaires/"):
        assert client.get(path).status_code == 403, path


def test_a_district_office_sees_only_its_districts_tasks(demo, client):
    with demo.app_context():
        rows = db.session().execute(select(Task.id, Area.path, Task.title).join(Area, Area.id == Task.area_id)).all()
        d1 = db.session().scalars(select(Area).where(Area.code == "D01")).one()
    login(client, "d1")
    listing = client.get("/rectification/tasks").get_data(as_text=True)
    for task_id, path, _title in rows:
        inside = path.startswith(d1.path)
        assert client.get(f"/rectification/tasks/{task_id}").status_code == (200 if inside else 404)
        assert (f'href="/rectification/tasks/{task_id}"' in listing) == inside


def test_only_the_city_office_edits_units(demo, client):
    login(client, "d1")
    assert client.get("/rectification/units").status_code == 200
    assert client.get("/rectification/units/new").status_code == 403
    login(client, "boss")
    form = client.get("/rectification/units/new").get_data(as_text=True)
    bad = client.post("/rectification/units/new", data={"csrf_token": token(form), "name": "市城管局", "communities": "NOPE"})
    assert bad.status_code == 422 and "没有这些社区编码：NOPE" in bad.get_data(as_text=True)
    good = client.post("/rectification/units/new", data={"csrf_token": token(form), "name": "市城管局", "contact": "王",
                                                           "phone": "123", "communities": "D01S1C1；D01S1C3"})
    assert good.status_code == 303
    with demo.app_context():
        unit = db.session().scalars(select(Unit).where(Unit.name == "市城管局")).one()
        assert [a.code for a in unit.communities] == ["D01S1C1", "D01S1C3"]
    assert "市城管局" in client.get("/rectification/units").get_data(as_text=True)


# Photos -----------------------------------------------------------------------------------------------

def jpeg_with_exif(size=(64, 48)) -> bytes:
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    Image.new("RGB", size, (30, 140, 60)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def bomb() -> bytes:
    """A 12 KB PNG that unpacks to 100 million pixels."""
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, "PNG")
    return out.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(document.cookie)</script></svg>'
REJECTED = [
    ("text named as a photo", b"just text, not a picture", "photo.jpg", "不是照片"),
    ("svg with a script", SVG, "photo.svg", "不是照片"),
    ("svg named png", SVG, "photo.png", "不是照片"),
    ("too large", b"\xff\xd8\xff" + b"0" * (photos.MAX_BYTES + 10), "big.jpg", "超过5MB"),
    ("decompression bomb", bomb(), "bomb.png", "像素过多"),
    ("truncated jpeg", jpeg_with_exif()[:200], "cut.jpg", "损坏"),
]


def post_report(client, task_id: int, note: str, files: list[tuple[bytes, str]]):
    page = client.get(f"/rectification/tasks/{task_id}").get_data(as_text=True)
    fields = MultiDict([("csrf_token", token(page)), ("note", note)])
    for data, name in files:
        fields.add("photos", FileStorage(io.BytesIO(data), name, content_type="image/jpeg"))
    # Encoded here in memory: the test client would spool a large body to a temporary file it never closes.
    boundary, body = encode_multipart(fields)
    return client.post(f"/rectification/tasks/{task_id}/report", data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")


def _doing_task(demo) -> int:
    with demo.app_context(), db.write_transaction() as session:
        task = new_task(session, title="照片测试")
        transition(session, user(session, "jiaoyu"), task, "start")
        return task.id


def _files(demo) -> set[str]:
    return {p.name for p in photos.folder(demo.instance_path).iterdir()}


@pytest.mark.parametrize(("case", "data", "filename", "message"), REJECTED, ids=[r[0] for r in REJECTED])
def test_a_report_with_anything_but_a_photo_is_refused_and_nothing_is_kept(demo, client, case, data, filename, message):
    task_id = _doing_task(demo)
    before = _files(demo)
    login(client, "jiaoyu")
    reply = post_report(client, task_id, "已整改", [(jpeg_with_exif(), "ok.jpg"), (data, filename)])
    assert reply.status_code == 422 and message in reply.get_data(as_text=True), case
    with demo.app_context():
        assert db.session().get(Task, task_id).status == "doing"
        assert db.session().scalar(select(func.count(TaskPhoto.id)).where(TaskPhoto.task_id == task_id)) == 0
    assert _files(demo) == before  # the good photo written first was removed again


def test_a_photo_is_re_encoded_without_metadata_and_served_only_through_the_scoped_view(demo, client):
    task_id = _doing_task(demo)
    login(client, "jiaoyu")
    png = io.BytesIO()
    Image.new("RGBA", (40, 30), (200, 0, 0, 128)).save(png, "PNG")
    reply = post_report(client, task_id, "路灯已修好", [(jpeg_with_exif(), "before.jpg"), (png.getvalue(), "after.png")])
    assert reply.status_code == 303
    with demo.app_context():
        stored = db.session().scalars(select(TaskPhoto).where(TaskPhoto.task_id == task_id).order_by(TaskPhoto.id)).all()
        assert db.session().get(Task, task_id).status == "done"
    assert len(stored) == 2 and all(re.fullmatch(r"[0-9a-f]{32}\.jpg", p.stored_name) for p in stored)
    html = client.get(f"/rectification/tasks/{task_id}").get_data(as_text=True)
    assert stored[0].stored_name not in html  # the page links the view, never the file's name
    served = client.get(f"/rectification/photos/{stored[0].id}")
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert served.headers["Cache-Control"] == "private, no-store" and served.headers["X-Content-Type-Options"] == "nosniff"
    assert b"SecretCam" not in served.data
    with Image.open(io.BytesIO(served.data)) as image:
        assert image.format == "JPEG" and image.size == (64, 48) and not image.getexif()
    assert client.get(f"/rectification/photos/{stored[1].id}").status_code == 200
    for other in ("minzheng", "d2"):
        login(client, other)
        assert client.get(f"/rectification/photos/{stored[0].id}").status_code == 404
    client.post("/office/logout", data={"csrf_token": token(client.get("/rectification/tasks").get_data(as_text=True))})
    assert client.get(f"/rectification/photos/{stored[0].id}").status_code == 302  # anonymous: to the login page


# Units from CSV ---------------------------------------------------------------------------------------

def test_import_units_reads_utf8_with_a_bom_and_names_the_bad_line(demo, tmp_path):
    runner = demo.test_cli_runner()
    good = tmp_path / "units.csv"
    good.write_bytes("\ufeffname,contact,phone,communities,grids\n市水务局,李四,0571-1,D01S1C1；D01S2C1,1-3号楼\n"
                     "市教育局,张三,0571-2,D01S1C2,\n".encode())
    result = runner.invoke(args=["import-units", str(good)])
    assert result.exit_code == 0 and "Imported 2 units" in result.output, result.output
    with demo.app_context():
        water = db.session().scalars(select(Unit).where(Unit.name == "市水务局")).one()
        assert ([a.code for a in water.communities], water.contact, water.grids) == (["D01S1C1", "D01S2C1"], "李四", "1-3号楼")
        education = db.session().scalars(select(Unit).where(Unit.name == "市教育局")).one()
        assert [a.code for a in education.communities] == ["D01S1C2"]  # the list is replaced
    bad = tmp_path / "bad.csv"
    bad.write_text("name,contact,phone,communities\n市林业局,,,D01S1C1\n市体育局,,,D09\n", encoding="utf-8")
    result = runner.invoke(args=["import-units", str(bad)])
    assert result.exit_code != 0 and "line 3" in result.output and "D09" in result.output
    with demo.app_context():
        assert db.session().scalar(select(Unit.id).where(Unit.name == "市林业局")) is None  # nothing imported
    with demo.app_context(), db.write_transaction() as session:  # put the demo unit's communities back
        from survey.rectification.units import save_unit

        unit = session.scalars(select(Unit).where(Unit.name == "市教育局")).one()
        save_unit(session, unit, unit.name, unit.contact, unit.phone, ["D01S1C2", "D01S3C3", "D02S2C4", "D03S1C1"])


def test_the_units_page_shows_an_office_only_its_own_area_and_a_unit_only_itself(demo, client):
    with demo.app_context():
        session = db.session()
        unit = session.scalars(select(Unit).where(Unit.name == OWN_UNIT)).one()
        inside = [a.name for a in unit.communities if a.code.startswith("D01")]
        outside = [a.name for a in unit.communities if not a.code.startswith("D01")]
        open_in_d01 = session.scalar(select(func.count(Task.id)).join(Area, Area.id == Task.area_id).where(
            Task.unit_id == unit.id, Task.status.in_(OPEN), Area.code.startswith("D01")))
        open_all = session.scalar(select(func.count(Task.id)).where(
            Task.unit_id == unit.id, Task.status.in_(OPEN)))
        unit.grids = "明珠社区5栋（西湖区）"  # free text about places anywhere: shown to the city office only
        db.session().commit()
    assert inside and outside and open_all > open_in_d01
    login(client, "boss")
    assert "明珠社区5栋" in client.get("/rectification/units").get_data(as_text=True)
    login(client, "d1")
    assert "明珠社区5栋" not in client.get("/rectification/units").get_data(as_text=True)
    html = client.get("/rectification/units").get_data(as_text=True)
    row = re.search(rf"<tr><td><a[^>]*>{OWN_UNIT}</a>.*?</tr>", html, re.S).group(0)
    assert all(name in row for name in inside) and not any(name in row for name in outside)
    assert f"另有{len(outside)}个社区在本辖区外" in row
    assert re.findall(r'<td class="num">(\d+)</td>', row) == [str(open_in_d01)]
    login(client, "minzheng")
    assert client.get("/rectification/units").status_code == 403  # a unit has its own landing page
    with demo.app_context():
        session = db.session()
        assert [u.name for u in visible_units(session, user(session, "minzheng"))] == [OTHER_UNIT]

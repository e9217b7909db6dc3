"""Uploads through a real gunicorn: phone-sized photos in a unit's report, a questionnaire workbook.

The test client passes the body to the app whole, so Werkzeug's multipart limits never applied
there; a served app reads it from a socket, where a 339 KB photo was refused with 413.
"""
from __future__ import annotations

import io
import random
import re

import pytest
from PIL import Image
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage, MultiDict

from survey import db
from survey.auth import create_user
from survey.models import Task, TaskPhoto
from survey.rectification import photos
from tests.conftest import BACKENDS, PASSWORD, dispose, make_app
from tests.forms.workbooks import city_form, workbook
from tests.served import Browser, serving
from tests.survey.test_rectification import OWN_UNIT, new_task, user

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def phone_photo(target_bytes: int, seed: int) -> bytes:
    """A JPEG of about ``target_bytes``: camera noise compresses as badly as a real photo's detail."""
    rng = random.Random(seed)
    side = int((target_bytes / 0.99) ** 0.5)  # noise at quality 92 costs about a byte a pixel
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


@pytest.fixture(scope="module", params=BACKENDS)
def served(request, tmp_path_factory):
    """The demo city with a unit account, served by gunicorn; yields (app, base URL)."""
    app = make_app(request.param, tmp_path_factory.mktemp("live"))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo", "--respondents", "60"]).exit_code == 0
    with app.app_context(), db.write_transaction() as session:
        create_user(session, "boss", PASSWORD, "city", "C")
        create_user(session, "unit1", PASSWORD, "unit", "C", unit_name=OWN_UNIT)
    with serving(app, tmp_path_factory.mktemp("gunicorn")) as url:
        yield app, url
    dispose(app)


def login(url: str, username: str) -> Browser:
    browser = Browser(url)
    page = browser.get("/office/login").text
    reply = browser.post("/office/login", MultiDict({"csrf_token": CSRF.search(page).group(1),
                                                     "username": username, "password": PASSWORD}))
    assert reply.status == 302, reply.text[:500]
    return browser


def test_a_unit_reports_with_several_phone_sized_photos(served):
    app, url = served
    with app.app_context(), db.write_transaction() as session:
        task = new_task(session, title="手机照片")
        task_id = task.id
    browser = login(url, "unit1")
    with app.app_context(), db.write_transaction() as session:
        from survey.rectification.tasks import transition
        transition(session, user(session, "unit1"), session.get(Task, task_id), "start")
    shots = [phone_photo(size, seed) for seed, size in enumerate((339_000, 1_000_000, 2_400_000, 4_200_000))]
    assert [round(len(s) / 1e6, 1) for s in shots] == pytest.approx([0.34, 1.0, 2.4, 4.2], rel=0.15)
    assert max(map(len, shots)) < photos.MAX_BYTES
    page = browser.get(f"/rectification/tasks/{task_id}").text
    fields = MultiDict([("csrf_token", CSRF.search(page).group(1)), ("note", "已清理，照片四张")])
    for number, data in enumerate(shots):
        fields.add("photos", FileStorage(io.BytesIO(data), f"IMG_{number}.jpg", content_type="image/jpeg"))
    reply = browser.post(f"/rectification/tasks/{task_id}/report", fields)
    assert reply.status == 303, reply.text[:800]
    with app.app_context():
        assert db.session().get(Task, task_id).status == "done"
        assert db.session().scalar(select(func.count(TaskPhoto.id)).where(TaskPhoto.task_id == task_id)) == 4


def test_a_photo_over_the_limit_is_refused_with_a_message_not_a_bare_413(served):
    app, url = served
    with app.app_context(), db.write_transaction() as session:
        task = new_task(session, title="超大照片")
        task_id = task.id
        from survey.rectification.tasks import transition
        transition(session, user(session, "unit1"), task, "start")
    browser = login(url, "unit1")
    page = browser.get(f"/rectification/tasks/{task_id}").text
    fields = MultiDict([("csrf_token", CSRF.search(page).group(1)), ("note", "已整改")])
    fields.add("photos", FileStorage(io.BytesIO(b"\xff\xd8\xff" + b"0" * (photos.MAX_BYTES + 100)), "big.jpg",
                                     content_type="image/jpeg"))
    reply = browser.post(f"/rectification/tasks/{task_id}/report", fields)
    assert reply.status == 422 and "超过5MB" in reply.text


def test_a_questionnaire_workbook_over_64_kib_uploads_through_gunicorn(served):
    _app, url = served
    sheets = city_form()
    # Padding rows of notes: a real city's workbook with many questions and long texts is a few hundred KB.
    filler = random.Random(7)
    sheets["survey"] = sheets["survey"][:1] + [
        ["note", f"n{i}", "说明：" + filler.randbytes(300).hex()] for i in range(200)] + sheets["survey"][1:]
    data = workbook(sheets)
    assert len(data) > 64 * 1024
    browser = login(url, "boss")
    page = browser.get("/office/questionnaires/").text
    fields = MultiDict([("csrf_token", CSRF.search(page).group(1)), ("code", "")])
    fields.add("file", FileStorage(io.BytesIO(data), "city.xlsx",
                                   content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
    reply = browser.post("/office/questionnaires/upload", fields)
    assert reply.status in (302, 303), reply.text[:800]


def test_a_text_field_over_a_mib_in_a_report_is_refused_not_held_in_memory(served):
    _app, url = served
    browser = Browser(url)  # not even signed in: the limit applies before anything else
    # 1.08 MB: over the 1 MiB a field may hold, and little enough that the whole body is sent before the 413
    reply = browser.post("/rectification/tasks/1/report", MultiDict({"note": "字" * 360_000}))
    assert reply.status == 413


def test_a_resident_answers_a_photo_question_with_a_phone_sized_photo(served):
    app, url = served
    from datetime import UTC, datetime

    from forms.xlsform import read_xlsform
    from survey.links import make_community_links
    from survey.models import Answer, Wave
    from survey.questionnaires import publish
    from survey.waves import field_version
    from tests.survey.test_answer_photos import PHOTO_FORM

    with app.app_context(), db.write_transaction() as session:
        version = publish(session, read_xlsform(workbook(PHOTO_FORM)).raw).version
        wave = session.scalars(select(Wave).order_by(Wave.opens_at.desc())).first()
        field_version(session, wave, version, datetime.now(UTC))
        token = make_community_links(session, "snap")[0].token
    browser = Browser(url)
    page = browser.get(f"/s/{token}").text
    fields = MultiDict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    fields.add("what", "井盖缺失")
    fields.add("spot", FileStorage(io.BytesIO(phone_photo(2_400_000, 9)), "IMG_1.jpg", content_type="image/jpeg"))
    reply = browser.post(f"/s/{token}", fields)
    assert reply.status == 200 and "提交成功" in reply.text, reply.text[:800]
    with app.app_context():
        assert re.fullmatch(r"[0-9a-f]{32}\.jpg", db.session().scalar(select(Answer.value).where(Answer.item_code == "spot")))

"""End to end in headless Chromium: the office turns a problem into a task, the unit reports it done with a
photo, the office closes it (销号). Writes a phone-sized screenshot of the unit's report to /tmp/rect.png
(and to SCREENSHOT_DIR when set)."""
from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import select

from survey import db
from survey.auth import create_user, set_password
from survey.models import Task, TaskEvent, TaskPhoto, User
from tests.conftest import PASSWORD, shot

pytestmark = pytest.mark.e2e


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/office/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()


LOADED_WIDTH = """img => img.complete ? img.naturalWidth : new Promise(done => {
    img.addEventListener("load", () => done(img.naturalWidth));
    img.addEventListener("error", () => done(0));
})"""


def test_problem_to_task_to_report_with_photo_to_closed(app, live_server, phone, tmp_path):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo", "--respondents", "300"]).exit_code == 0
    assert runner.invoke(args=["analyze"]).exit_code == 0
    with app.app_context(), db.write_transaction() as session:
        create_user(session, "boss", PASSWORD, "city", "C")
        set_password(session, session.scalars(select(User).where(User.username == "jiaoyu")).one(), PASSWORD)
    photo = tmp_path / "after.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (800, 600), (70, 150, 90)).save(buffer, "JPEG")
    photo.write_bytes(buffer.getvalue())
    page = phone
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    # The city office ticks the lowest problem and gives it to 市教育局 with a deadline.
    log_in(page, live_server, "boss")
    page.goto(f"{live_server}/office/area/C/problems")
    page.locator('input[name="pick"]').first.check()
    page.get_by_role("button", name="为勾选的问题交办整改任务").click()
    assert page.locator("h1").inner_text().startswith("交办整改任务")
    title = page.locator('[name="title_0"]').input_value()
    unit = page.locator('select[name="unit_0"] option', has_text="市教育局").first.get_attribute("value")
    page.locator('select[name="unit_0"]').select_option(unit)
    page.get_by_label("整改期限").fill((datetime.now(UTC) + timedelta(days=60)).date().isoformat())
    page.get_by_role("button", name="交办 1 项任务").click()
    assert "已交办 1 项整改任务" in page.content()
    page.get_by_role("button", name="退出").click()

    # The unit finds it on its landing page, starts, and reports it done with a photo.
    log_in(page, live_server, "jiaoyu")
    assert page.locator("h1").inner_text().startswith("市教育局")
    page.get_by_role("link", name=title).click()
    page.get_by_role("button", name="开始整改").click()
    page.get_by_label("整改情况").fill("已组织清理，设专人每日巡查。")
    page.locator('input[name="photos"]').set_input_files(str(photo))
    page.get_by_role("button", name="提交整改报告").click()
    assert "已整改" in page.locator("table.data").first.inner_text()
    # Read once the photo has loaded (on a busy machine it may not have when the page is shown).
    assert page.locator('img[alt="整改照片1"]').evaluate(LOADED_WIDTH) == 800
    page.screenshot(path="/tmp/rect.png", full_page=True)
    shot(page, "40-rectification-unit-report")
    page.get_by_role("button", name="退出").click()

    # The office checks it and closes it.
    log_in(page, live_server, "boss")
    page.goto(f"{live_server}/rectification/tasks?status=done")
    page.get_by_role("link", name=title).click()
    page.get_by_role("button", name="核实销号").click()
    assert "已销号" in page.locator("table.data").first.inner_text()
    with app.app_context():
        task = db.session().scalars(select(Task).where(Task.title == title)).one()
        actions = db.session().scalars(select(TaskEvent.action).where(TaskEvent.task_id == task.id).order_by(TaskEvent.id)).all()
        assert task.status == "closed" and actions == ["create", "start", "report", "close"]
        assert db.session().scalars(select(TaskPhoto).where(TaskPhoto.task_id == task.id)).one().width == 800
    assert not [e for e in errors if "Content Security Policy" in e], errors

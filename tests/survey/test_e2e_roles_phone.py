"""Every staff page of every demo role on a 390x844 phone in headless Chromium: the page never scrolls
sideways and axe-core finds nothing serious or critical (issue 26).

Each role logs in and walks the pages its own links reach (one page per kind of address: a second
community or a second task adds nothing), plus a task whose report has several photos, a long text
and a long 退回 reason. Set SCREENSHOT_DIR to keep the screenshots.
"""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import select

from survey import db
from survey.auth import set_password
from survey.demo import DEMO_LOGINS, reset_demo_logins
from survey.models import Task, TaskPhoto, Unit, User
from survey.rectification import photos
from survey.rectification.demo import DEMO_UNIT, _picture
from survey.rectification.tasks import transition
from tests.conftest import PASSWORD, PHONE, shot
from tests.survey.test_e2e_board import axe_violations

pytestmark = pytest.mark.e2e
SKIPPED = re.compile(r"\.(pdf|csv|xlsx|json|sav|dta)$|/photos/|/export|/download|/logout|/preview$")
DOWNLOADS = re.compile(r"(^|&)(format|fmt)=")
LONG_REPORT = ("已组织物业、城管和志愿者对小区内外的卫生死角进行全面清理，" * 12
               + "详见 https://example.gov.cn/zhenggai/report/2026/very-long-address-without-any-break-0123456789")
LONG_RETURN = "照片只拍了整改后的样子，缺少整改前后的对比；请按同一角度补拍，并写明每一处问题的整改时间和责任人。" * 3


def build(app) -> int:
    """The demo city with an earlier wave, analysed; every demo login's password is PASSWORD; a task
    with three photos, a long report and a long 退回 reason; return that task's id."""
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo", "--respondents", "400", "--previous-wave"]).exit_code == 0
    assert runner.invoke(args=["analyze"]).exit_code == 0
    assert runner.invoke(args=["analyze", "--questionnaire", "minor"]).exit_code == 0
    with app.app_context(), db.write_transaction() as session:
        reset_demo_logins(session)  # the demo's logins, as `make demo` makes them
        for username, *_ in DEMO_LOGINS:
            set_password(session, session.scalars(select(User).where(User.username == username)).one(), PASSWORD)
        unit_user = session.scalars(select(User).where(User.username == "jiaoyu")).one()
        city = session.scalars(select(User).where(User.username == "city")).one()
        unit = session.scalars(select(Unit).where(Unit.name == DEMO_UNIT)).one()
        task = session.scalars(select(Task).where(Task.unit_id == unit.id, Task.status == "todo")
                               .order_by(Task.id)).first()
        transition(session, unit_user, task, "start", "")
        for round_ in range(2):
            event = transition(session, unit_user, task, "report", LONG_REPORT)
            for n in range(3):
                stored = photos.store(app.instance_path, _picture(n + round_), "after.png")
                session.add(TaskPhoto(task_id=task.id, event_id=event.id, stored_name=stored.name, width=stored.width,
                                      height=stored.height, size=stored.size, uploaded_by_id=unit_user.id,
                                      uploaded_at=event.at))
            if round_ == 0:
                transition(session, city, task, "return", LONG_RETURN)
        return task.id


def shape(url: str) -> str:
    """The kind of page an address shows: codes and ids made alike, the query's names kept."""
    parts = urlsplit(url)
    path = "/".join("*" if re.fullmatch(r"C|[A-Z]\d[A-Z0-9]*|\d+|v\d+", segment) else segment
                    for segment in parts.path.split("/"))
    return path + "?" + ",".join(sorted({name for name, _ in parse_qsl(parts.query) if name != "page"}))


def walk(page, base: str, start: str, limit: int = 40) -> list[str]:
    """The addresses of the staff pages reachable from ``start``, one for each shape."""
    seen, queue, found = set(), [start], []
    while queue and len(found) < limit:
        url = queue.pop(0)
        if shape(url) in seen:
            continue
        seen.add(shape(url))
        page.goto(url)
        page.wait_for_load_state("load")
        if page.url != url and shape(page.url) in seen:
            continue
        if page.evaluate("document.contentType") == "text/html":
            found.append(page.url)
        if page.evaluate("document.contentType") != "text/html":
            continue  # a file a link opens (a PDF, a script), not a page
        # An SVG link's href is an SVGAnimatedString (the map's communities): read the attribute.
        for href in page.eval_on_selector_all(
                "main a[href]", "links => links.map(a => new URL(a.getAttribute('href'), document.baseURI).href)"):
            href = href.split("#")[0]
            parts = urlsplit(href)
            if href.startswith(base) and not SKIPPED.search(parts.path) and not DOWNLOADS.search(parts.query) \
                    and shape(href) not in seen \
                    and urlsplit(href).path.startswith(("/office", "/rectification", "/school", "/entry")):
                queue.append(href)
    return found


def test_every_staff_page_of_every_role_fits_a_phone_and_passes_axe(app, live_server, browser):
    task_id = build(app)
    wide, findings, walked = {}, {}, {}
    for username, role, *_ in DEMO_LOGINS:
        context = browser.new_context(bypass_csp=True, **PHONE)  # to inject axe-core
        page = context.new_page()
        page.goto(f"{live_server}/office/login")
        page.get_by_label("用户名").fill(username)
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_load_state("load")
        urls = walk(page, live_server, page.url)
        if role in ("unit", "city"):
            urls.append(f"{live_server}/rectification/tasks/{task_id}")
        walked[username] = len(urls)
        for n, url in enumerate(urls):
            page.goto(url)
            page.wait_for_load_state("load")
            name = f"{username} {urlsplit(url).path}?{urlsplit(url).query}"
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > 390:
                wide[name] = width
            if found := axe_violations(page):
                findings[name] = found
            shot(page, f"roles-{username}-{n:02d}-" + re.sub(r"[^A-Za-z0-9]+", "-", urlsplit(url).path).strip("-"))
        context.close()
    assert wide == {} and findings == {}, (wide, findings)
    assert min(walked.values()) >= 1 and sum(walked.values()) >= 60, walked  # a school has one page: its board

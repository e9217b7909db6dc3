"""Long office lists a page at a time (limited in SQL, plain 下一页 links), the community trend in one
query, numbers read from the run instead of counted per request, and a worker's warm-up."""
from __future__ import annotations

import re
import threading
import time

import pytest
from sqlalchemy import event, func, select

from survey import db
from survey.auth import create_user
from survey.models import Area, Response
from survey.office import views
from survey.reading import dashboard, fieldwork, wave_changes
from survey.rectification import views as rectification_views
from survey.warmup import warm_up
from tests.conftest import BACKENDS, PASSWORD, client_from_own_address, dispose, logged_in, make_app


@pytest.fixture(scope="module", params=BACKENDS)
def demo(request, tmp_path_factory):
    """The demo city with an earlier analysed wave and the current one analysed, and a city account."""
    app = make_app(request.param, tmp_path_factory.mktemp("lists"))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo", "--respondents", "400", "--previous-wave"]).exit_code == 0
    assert runner.invoke(args=["analyze"]).exit_code == 0
    with app.app_context(), db.write_transaction() as session:
        create_user(session, "lists", PASSWORD, "city", "C")
    yield app
    dispose(app)


@pytest.fixture
def client(demo):
    return logged_in(client_from_own_address(demo, "10.8"), "lists", PASSWORD)


def _next_link(html: str) -> str | None:
    found = re.search(r'rel="next" href="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def _walk(client, url: str) -> list[str]:
    """Follow the 下一页 links from ``url`` as a browser without JavaScript would; return each page's HTML."""
    pages = []
    while url is not None:
        page = client.get(url)
        assert page.status_code == 200, url
        pages.append(page.get_data(as_text=True))
        url = _next_link(pages[-1])
        assert len(pages) < 50
    return pages


def _city(session):
    run = dashboard.runs_by_wave(session)[-1]
    return run, session.scalar(select(Area).where(Area.code == "C"))


def test_problem_list_pages_follow_each_other_and_hold_every_problem_once(demo, client, monkeypatch):
    monkeypatch.setattr(views, "PAGE_ROWS", 7)
    with demo.app_context():
        session = db.session()
        run, city = _city(session)
        every = dashboard.problems(session, run, city, dashboard.run_definition(run))
    assert len(every) > 14  # at least three pages
    pages = _walk(client, "/office/area/C/problems")
    assert len(pages) == -(-len(every) // 7)
    picks = [re.findall(r'name="pick" value="item:([^"]+)"', html) for html in pages]
    assert all(len(p) == 7 for p in picks[:-1]) and 1 <= len(picks[-1]) <= 7
    assert [p for page in picks for p in page] == [f"{p.community.code}:{p.item}" for p in every]
    assert f"第 2 / {len(pages)} 页" in pages[1] and 'rel="prev"' in pages[1] and 'rel="prev"' not in pages[0]
    numbers = re.findall(r'<td class="num">(\d+)</td><td><a href="/office/community/', pages[1])
    assert numbers[0] == "8"  # the numbering goes on from the page before
    # A page past the end shows the last one; a page that is no number the first.
    assert re.findall(r'value="item:([^"]+)"', client.get("/office/area/C/problems?page=999").get_data(as_text=True)) == picks[-1]
    assert re.findall(r'value="item:([^"]+)"', client.get("/office/area/C/problems?page=x").get_data(as_text=True)) == picks[0]


def test_problem_list_is_limited_in_sql(demo):
    with demo.app_context():
        session = db.session()
        run, city = _city(session)
        definition = dashboard.run_definition(run)
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731 - before_cursor_execute: (conn, cursor, statement, ...)
        event.listen(db.engine(), "before_cursor_execute", listener)
        try:
            part = dashboard.problems(session, run, city, definition, limit=3, offset=2)
        finally:
            event.remove(db.engine(), "before_cursor_execute", listener)
        assert len(part) == 3 and any("LIMIT" in s for s in statements)
        assert part == dashboard.problems(session, run, city, definition)[2:5]
        assert dashboard.problems_count(session, run, city, definition) == len(dashboard.problems(session, run, city, definition))


def test_dashboard_lists_the_costliest_communities_and_links_to_all_of_them(demo, client, monkeypatch):
    monkeypatch.setattr(views, "DASHBOARD_AT_RISK", 2)
    monkeypatch.setattr(views, "PAGE_ROWS", 3)
    with demo.app_context():
        session = db.session()
        _, city = _city(session)
        earlier = dashboard.runs_by_wave(session)[0]  # the earlier wave is lower: more communities at risk
        every = [a.code for _, a in dashboard.at_risk(session, earlier, city)]
    assert len(every) > 4
    html = client.get(f"/office/area/C?wave={earlier.wave_id}").get_data(as_text=True)
    assert f"查看全部 {len(every)} 个" in html
    link = re.search(r'href="(/office/area/C/at-risk[^"]*)">查看全部', html).group(1).replace("&amp;", "&")
    pages = _walk(client, link)
    listed = [code for page in pages for code in re.findall(r'<a href="/office/community/([^"?]+)\?', page)]
    assert listed == every and len(pages) == -(-len(every) // 3)


def test_task_list_pages(demo, client, monkeypatch):
    monkeypatch.setattr(rectification_views, "TASK_PAGE_ROWS", 4)
    first = client.get("/rectification/tasks").get_data(as_text=True)
    total = int(re.search(r"共 (\d+) 项", first).group(1))
    assert total > 4
    pages = _walk(client, "/rectification/tasks")
    ids = [i for page in pages for i in re.findall(r'href="/rectification/tasks/(\d+)"', page)]
    assert len(ids) == total == len(set(ids))
    # Filters are kept from page to page.
    assert "status=todo" in (_next_link(client.get("/rectification/tasks?status=todo").get_data(as_text=True)) or "status=todo")


def test_the_trend_shows_every_wave_in_one_query(demo, client):
    with demo.app_context():
        session = db.session()
        community = session.scalar(select(Area).where(Area.level == "community").order_by(Area.code))
        runs = dashboard.runs_by_wave(session)
        assert len(runs) == 2
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine(), "before_cursor_execute", listener)
        try:
            history = dashboard.trend(session, community)
        finally:
            event.remove(db.engine(), "before_cursor_execute", listener)
        assert len(statements) == 1
        assert [name for name, _ in history] == [r.wave.name for r in runs]
        assert [r.run_id for _, r in history] == [r.id for r in runs]  # the newest run of each wave
        code = community.code
    html = client.get(f"/office/community/{code}").get_data(as_text=True)
    for run in runs:
        assert run.wave.name in html


def test_quality_counts_come_from_the_run(demo):
    with demo.app_context():
        session = db.session()
        run, city = _city(session)
        stored = run.summary["quality_by_area"]
        live = session.scalar(select(func.count()).select_from(Response).where(Response.wave_id == run.wave_id))
        assert stored["C"][0] == live
        shown = dashboard.quality(session, run, city)
        assert shown["responses"] == live and shown["flagged"] == stored["C"][4]
        district = session.scalar(select(Area).where(Area.level == "district").order_by(Area.code))
        assert dashboard.quality(session, run, district)["responses"] == stored[district.code][0] < live
        assert not any(a.level == "community" for a in session.scalars(select(Area).where(Area.code.in_(stored))))


def test_warm_up_computes_what_pages_keep_per_run(demo):
    demo.extensions.pop("timed_caches", None)
    timings = warm_up(demo)
    assert {"mappers", "templates", "database", "run data"} <= set(timings)
    with demo.app_context():
        session = db.session()
        run = dashboard.runs_by_wave(session)[-1]
        previous = wave_changes.previous_run(session, run)
        wave = fieldwork.current_wave(session)
    caches = demo.extensions["timed_caches"]
    assert caches["wave_changes"].get((run.id, previous.id)) is not None
    assert caches["fieldwork"].get((wave.id, "citizen", run.id)) is not None
    assert any(key[1] == "office/area.html" for key in demo.jinja_env.cache.keys())  # compiled


def test_fieldwork_counts_are_kept_and_counted_again_in_the_background(demo, monkeypatch):
    with demo.app_context():
        session = db.session()
        wave = fieldwork.current_wave(session)
        demo.extensions.get("timed_caches", {}).pop("fieldwork", None)
        first = fieldwork.cached_city_plan(session, wave)
        assert fieldwork.cached_city_plan(session, wave) is first  # kept
        started = threading.Event()
        real = fieldwork.city_plan

        def slow_count(*args, **kwargs):
            started.set()
            return real(*args, **kwargs)

        monkeypatch.setattr(fieldwork, "city_plan", slow_count)
        object.__setattr__(first, "computed_at", time.monotonic() - 3600)  # a minute has passed (frozen dataclass)
        assert fieldwork.cached_city_plan(session, wave) is first  # the old numbers while counting again
        assert started.wait(30)
        for _ in range(300):
            again = fieldwork.cached_city_plan(session, wave)
            if again is not first:
                break
            time.sleep(0.1)
        assert again is not first and again.communities == first.communities


def test_the_at_risk_list_s_earlier_address_still_leads_to_it(client):
    reply = client.get("/office/area/C/flagged?wave=3&page=2")
    assert reply.status_code == 301 and reply.headers["Location"].endswith("/office/area/C/at-risk?wave=3")

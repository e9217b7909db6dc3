"""What a serving process does once when it starts, so that its first page is as fast as the next.

A fresh process would otherwise spend its first requests configuring the SQLAlchemy mappers,
compiling the Jinja templates and the pages' SQL statements, opening a database connection and
importing what views import lazily, and computing the data that pages cache: the changes since the previous wave (per pair of
runs) and the fieldwork monitor's counts.
:func:`warm_up` does all of it ahead: gunicorn calls it from ``post_worker_init``
(``deploy/gunicorn.conf.py``), before the worker accepts a request; ``WARM_UP=1`` makes
``create_app()`` call it (a server started another way). Apps made for tests skip it.
"""
from __future__ import annotations

import gc
import importlib
import time
from contextlib import ExitStack

from flask import Flask
from sqlalchemy import text
from sqlalchemy.orm import configure_mappers

# Modules that views import inside functions (so that app creation stays light).
LAZY_MODULES = ("survey.schools", "survey.waves", "survey.paper", "reports.pdf", "survey.reading.fieldwork")


def warm_up(app: Flask, notify=None) -> dict[str, float]:
    """Prepare ``app`` for its first requests; return the seconds each step took (for logs and benchmarks).

    ``notify`` is called before each step (gunicorn's heartbeat: a long warm-up is not taken for a hung worker).
    """
    timings: dict[str, float] = {}

    def step(name: str, action) -> None:
        if notify is not None:
            notify()
        start = time.perf_counter()
        try:
            action()
        except Exception:  # a step that fails only leaves that work to the first request
            app.logger.exception("warm-up step %s failed", name)
        timings[name] = time.perf_counter() - start

    step("mappers", configure_mappers)
    step("imports", lambda: [importlib.import_module(m) for m in LAZY_MODULES])
    step("templates", lambda: _compile_templates(app))
    step("database", lambda: _connect(app))
    step("run data", lambda: _run_data(app))
    step("queries", lambda: _queries(app))
    step("first request", lambda: _first_request(app))
    return timings


def freeze_heap() -> None:
    """Move every object alive now (modules, mappers, templates, caches) out of the garbage collector's sight.

    Called once a serving process has warmed up: the full collections that traffic triggers then
    walk only what requests made, not the app's hundreds of thousands of start-up objects
    (``gc.freeze``). Not part of :func:`warm_up`, which tests call: a frozen object is never freed.
    """
    gc.collect()
    gc.freeze()


def _compile_templates(app: Flask) -> None:
    env = app.jinja_env
    for name in env.list_templates(extensions=("html", "txt")):
        env.get_template(name)


# Connections opened ahead: the first request's own, and those of the threads its arrival starts (the refresh
# check, housekeeping), which otherwise took the one pooled connection and left the request to open another.
CONNECTIONS = 3


def _connect(app: Flask) -> None:
    engine = app.extensions["db_engine"]
    count = CONNECTIONS if engine.dialect.name == "postgresql" else 1  # SQLite: a file, opened in no time
    with ExitStack() as stack:  # all open at once, so that the pool keeps each
        for _ in range(count):
            stack.enter_context(engine.connect()).execute(text("SELECT 1"))


def _run_data(app: Flask) -> None:
    """Compute what the office pages keep per analysis run for each analysed questionnaire's newest run."""
    from sqlalchemy import select

    from survey import db
    from survey.models import Area
    from survey.reading import dashboard, fieldwork, wave_changes

    with app.app_context():
        session = db.session()
        for code in dashboard.analysed_questionnaires(session):
            runs = dashboard.runs_by_wave(session, code)
            if runs:
                wave_changes.comparison(session, runs[-1])
        wave = fieldwork.current_wave(session)
        city = fieldwork.cached_city_plan(session, wave)
        top = session.scalar(select(Area).where(Area.level == "city").limit(1))
        if top is not None:  # the page's own reading of the kept numbers (its statements compiled once)
            fieldwork.fieldwork_plan(session, top, wave=wave, city=city)


def _queries(app: Flask) -> None:
    """Run the office pages' look-ups once for the city and a community (SQLAlchemy compiles each statement once)."""
    from sqlalchemy import select

    from survey import db
    from survey.models import Area
    from survey.reading import dashboard

    with app.app_context():
        session = db.session()
        runs = dashboard.runs_by_wave(session, next(iter(dashboard.analysed_questionnaires(session)), "citizen"))
        city = session.scalar(select(Area).where(Area.level == "city").limit(1))
        community = session.scalar(select(Area).where(Area.level == "community").limit(1))
        if not runs or city is None:
            return
        run = runs[-1]
        definition = dashboard.run_definition(run)
        dashboard.heatmap_rows(session, run, city, definition, lambda area: "")
        dashboard.at_risk(session, run, city, limit=1)
        dashboard.at_risk_count(session, run, city)
        dashboard.problems(session, run, city, definition, limit=1)
        dashboard.problems_count(session, run, city, definition)
        dashboard.rates(session, run, city, definition)
        dashboard.area_result(session, run, city)
        dashboard.minor_summary(session, run.wave_id, city)
        if community is not None:
            dashboard.trend(session, community, run.questionnaire_code)
            dashboard.topic_results(session, run, community, definition)
            dashboard.comments(session, run.wave_id, community, [])


def _first_request(app: Flask) -> None:
    """Serve the login page once inside the process: the request machinery, hooks and base templates run once."""
    with app.test_client() as client:
        client.get("/office/login", environ_base={"REMOTE_ADDR": "127.0.0.1"})

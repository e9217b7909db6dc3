"""Shared fixtures: ``app``, ``client`` and ``runner`` on a fresh database for every test.

Every app test runs on SQLite; when TEST_DATABASE_URL names a PostgreSQL database (``make
test`` passes it on from .ci/run) each such test runs there too. That database is wiped.
"""
from __future__ import annotations

import os
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from hypothesis import settings
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from survey import create_app, db
from survey.areas import import_areas
from survey.limits import limiter
from survey.links import make_community_links
from survey.migrate import upgrade
from survey.questionnaires import install_bundled
from survey.waves import create_wave

# Property tests: derandomised by default, so `make test` and CI draw the same examples every run;
# `HYPOTHESIS_PROFILE=random make test` draws new ones with more examples (run it by hand).
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("random", derandomize=False, print_blob=True)
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(HYPOTHESIS_PROFILE)


def examples(count: int) -> int:
    """Return a property test's number of examples: ``count``, four times that in the random profile."""
    return count * (4 if HYPOTHESIS_PROFILE == "random" else 1)
POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])

SMALL_CITY = """code,name,level,parent_code,adult_population,responsible_unit
C,测试市,city,,,
D1,一区,district,C,,
S1,一街道,street,D1,,
S2,二街道,street,D1,,
A1,甲社区,community,S1,5000,市教育局
A2,乙社区,community,S1,3000,市民政局
B1,丙社区,community,S2,4000,
"""


def _reset_postgres(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


class BufferedClient(FlaskClient):
    """A test client that reads every response to its end at once.

    A streamed download that a test never reads would otherwise keep its database connection
    checked out until the garbage collector finds it, after the engine is gone, and PostgreSQL's
    driver then warns (an error here) in whichever later test happens to be running.
    """

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


def make_app(backend: str, folder):
    """Return an app on an empty, migrated database with the bundled questionnaires installed."""
    if backend == "postgresql":
        _reset_postgres(POSTGRES_URL)
        url = POSTGRES_URL
    else:
        url = f"sqlite:///{folder / 'test.sqlite'}"
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test-secret", "SERVER_NAME": "survey.test",
                      "LINK_CACHE_SECONDS": 0, "HOUSEKEEPING_INTERVAL_S": 0,
                      "REFRESH_INTERVAL_S": 0, "REFRESH_PRERENDER": ""})
    app.config["TEST_BACKEND"] = backend
    app.test_client_class = BufferedClient
    with app.app_context():
        limiter.reset()  # one limiter serves every app of this process: start each test's count at zero
        upgrade(db.engine())
        with db.write_transaction() as session:
            install_bundled(session)
    return app


@pytest.fixture(params=BACKENDS)
def app(request, tmp_path):
    """A fresh app and empty database for one test."""
    app = make_app(request.param, tmp_path)
    yield app
    app.extensions["db_engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def city(app):
    """A small city with an open wave and one citizen link per community; returns the tokens."""
    now = datetime.now(UTC)
    with app.app_context(), db.write_transaction() as session:
        import_areas(session, SMALL_CITY)
        create_wave(session, "第一轮", now - timedelta(days=1), now + timedelta(days=30), ["citizen", "minor"])
        links = make_community_links(session, "citizen")
        return {link.area.code: link.token for link in links}


def form_fields(html: str) -> dict[str, str]:
    """Return the hidden fields of a rendered questionnaire (CSRF token, submission key)."""
    return dict(re.findall(r'<input[^>]*name="(csrf_token|submission_key)"[^>]*value="([^"]+)"', html))


def full_answers(**override: str) -> dict[str, str]:
    """A complete, valid citizen questionnaire."""
    answers = {"sex": "F", "age_band": "30-44", "resident": "Y", "k01": "Y", "k02": "Y", "k03": "Y", "k04": "N"}
    answers |= {f"q{i:02d}": "4" for i in range(1, 11)}
    return answers | override


@pytest.fixture
def live_server(app):
    """Serve ``app`` on a free local port in a thread; yields the base URL."""
    app.config["SERVER_NAME"] = None
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)

"""Shared fixtures: ``app``, ``client`` and ``runner`` on a fresh database for every test.

Every app test runs on SQLite; when TEST_DATABASE_URL names a PostgreSQL database (``make
test`` passes it on from .ci/run) each such test runs there too. That database is wiped.
"""
from __future__ import annotations

import atexit
import gc
import itertools
import os
import re
import shutil
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

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


def examples(count: int, by_hand: int | None = None) -> int:
    """Return a property test's number of examples: ``count``; in the random profile ``by_hand``, by
    default four times ``count``."""
    if HYPOTHESIS_PROFILE != "random":
        return count
    return by_hand if by_hand is not None else 4 * count


POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
# For a test about PostgreSQL alone: ``@pytest.mark.parametrize("app", POSTGRESQL_ONLY, indirect=True)``
# gives it the PostgreSQL app only (no SQLite variant at all; an empty parameter set without a URL).
POSTGRESQL_ONLY = ["postgresql"] if POSTGRES_URL else []
PASSWORD = "Str0ng-pass-2026"  # every test account's password
# The test apps' password hash (PASSWORD_HASH_METHOD, survey/auth.py): one round of PBKDF2 instead of
# werkzeug's scrypt (0.1-0.2 s a hash here, several per login test: a tenth of the suite). Production
# keeps scrypt: tests/survey/test_accounts.py checks that an app without the setting uses it.
TEST_PASSWORD_HASH = "pbkdf2:sha256:1"

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


def dispose(app, timeout: float = 30) -> None:
    """Close a test app's database connections: stop its background threads, wait for every connection
    to come back to the pool, then close them all.

    ``engine.dispose()`` alone closes only the connections in the pool: one still checked out (by the
    housekeeping thread, say) goes back later to the discarded pool and stays open until the garbage
    collector deletes it, and psycopg then warns (an error here) in whichever test runs at the time.
    """
    for stop, thread in (("housekeeping_stop", "housekeeping_thread"), ("refresh_stop", "refresh_thread")):
        if stop in app.extensions:
            app.extensions[stop].set()
        if thread in app.extensions:
            app.extensions[thread].join(timeout)
    engine = app.extensions["db_engine"]
    checked_out = getattr(engine.pool, "checkedout", lambda: 0)  # QueuePool: PostgreSQL and SQLite files
    deadline = time.monotonic() + timeout
    while checked_out() and time.monotonic() < deadline:
        gc.collect()  # a session nobody holds any more gives its connection back
        time.sleep(0.05)
    left = checked_out()
    engine.dispose()
    assert not left, f"{left} database connection(s) of a test app still in use after {timeout} s"


def _new_app(url: str, backend: str):
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test-secret", "SERVER_NAME": "survey.test",
                      "LINK_CACHE_SECONDS": 0, "HOUSEKEEPING_INTERVAL_S": 0,
                      "REFRESH_INTERVAL_S": 0, "REFRESH_PRERENDER": "", "PASSWORD_HASH_METHOD": TEST_PASSWORD_HASH})
    app.config["TEST_BACKEND"] = backend
    app.test_client_class = BufferedClient
    return app


def _migrate_and_install(app) -> None:
    with app.app_context():
        upgrade(db.engine())
        with db.write_transaction() as session:
            install_bundled(session)


# Every app test starts from the same database: migrated to the newest revision, with the bundled
# questionnaires. Running the migrations for each test was most of a small test's time, so:
# - SQLite: that database is built once a session in a file and copied for each test;
# - PostgreSQL: after the first full build, the tables are emptied (_delete_all_rows: ids start at 1
#   again) and the questionnaires installed again, as long as the schema is still the
#   one the migrations made (a test that downgrades or drops it gets the full rebuild next time).
_sqlite_template: Path | None = None
_postgres_schema: tuple | None = None  # the schema the last full build made (revision, columns, indexes)


def _sqlite_database(folder: Path) -> Path:
    global _sqlite_template
    if _sqlite_template is None or not _sqlite_template.exists():
        template = Path(tempfile.mkdtemp(prefix="survey-test-template-")) / "template.sqlite"
        app = _new_app(f"sqlite:///{template}", "sqlite")
        _migrate_and_install(app)
        app.extensions["db_engine"].dispose()  # the last connection closed: the WAL is folded into the file
        atexit.register(shutil.rmtree, template.parent, ignore_errors=True)
        _sqlite_template = template
    database = folder / "test.sqlite"
    shutil.copyfile(_sqlite_template, database)
    return database


def _postgres_state(conn) -> tuple:
    """The schema's revision, columns and indexes (read from pg_catalog: information_schema is slower)."""
    revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() if conn.execute(text(
        "SELECT to_regclass('public.alembic_version')")).scalar() else None
    columns = conn.execute(text(
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid WHERE c.relnamespace = 'public'::regnamespace "
        "AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2")).all()
    indexes = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1")).scalars().all()
    return (tuple(revision or ()), tuple(map(tuple, columns)), tuple(indexes))


def _delete_all_rows(conn, tables: list[str]) -> None:
    """Empty ``tables`` (each listed after the tables it points to) as TRUNCATE ... RESTART IDENTITY CASCADE
    did, in a fraction of the time: DELETE in the tables that have rows, children first, then every
    sequence that moved starts again at 1.

    TRUNCATE costs milliseconds a table, rows or not, and cascades from the questionnaire tables (filled
    in every test) to nearly all of them: 70 ms a test here, against 5-10 ms for a test's few thousand
    rows at most.
    """
    filled = set(conn.execute(text(" UNION ALL ".join(
        f"SELECT '{t}' WHERE EXISTS (SELECT FROM public.{t})" for t in tables))).scalars())
    for table in reversed(tables):
        if table in filled:
            conn.execute(text(f"DELETE FROM public.{table}"))
    moved = conn.execute(text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' "
                              "AND last_value IS NOT NULL")).scalars().all()
    for sequence in moved:
        conn.execute(text(f"ALTER SEQUENCE public.{sequence} RESTART"))


def _empty_postgres(url: str) -> bool:
    """Empty the tables of a database still in the schema of the last full build; False if it is not."""
    if _postgres_schema is None:
        return False
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            if _postgres_state(conn) != _postgres_schema:
                return False
            _delete_all_rows(conn, _tables_in_order(conn))
        return True
    finally:
        engine.dispose()


def make_app(backend: str, folder):
    """Return an app on an empty, migrated database with the bundled questionnaires installed."""
    global _postgres_schema
    if backend == "postgresql":
        emptied = _empty_postgres(POSTGRES_URL)
        if not emptied:
            _reset_postgres(POSTGRES_URL)
        app = _new_app(POSTGRES_URL, backend)
        with app.app_context():
            limiter.reset()  # one limiter serves every app of this process: start each test's count at zero
            if emptied:
                with db.write_transaction() as session:
                    install_bundled(session)
            else:
                upgrade(db.engine())
                with db.engine().connect() as conn:
                    _postgres_schema = _postgres_state(conn)
                with db.write_transaction() as session:
                    install_bundled(session)
        return app
    app = _new_app(f"sqlite:///{_sqlite_database(Path(folder))}", backend)
    with app.app_context():
        limiter.reset()
    return app


# A costly starting point many tests change (the demo city seeded and analysed, say): built once a
# session for each backend, then copied into each such test's own fresh database.
_built: dict[tuple, tuple[object, object]] = {}  # (name, backend, schema) -> (the copy, what build returned)


def build_once(app, name: str, build):
    """Give ``app``'s new database what ``build(app)`` makes, building it only once a session.

    The first call runs ``build(app)`` and keeps a copy of the database (the SQLite file; PostgreSQL's
    rows, table by table, and its sequences); later calls with the same ``name`` and backend put that
    copy into ``app``'s database instead and return ``build``'s first result again (keep it plain data).
    ``build`` must change nothing but the database. The app's engine is disposed either way.
    """
    backend = app.config["TEST_BACKEND"]
    key = (name, backend, _postgres_schema if backend == "postgresql" else None)
    if key in _built:
        copy, value = _built[key]
        (_restore_sqlite if backend == "sqlite" else _restore_postgres)(app, copy)
        return value
    value = build(app)
    _built[key] = ((_copy_sqlite if backend == "sqlite" else _copy_postgres)(app), value)
    return value


def _sqlite_file(app) -> Path:
    return Path(app.config["DATABASE_URL"].removeprefix("sqlite:///"))


def _copy_sqlite(app) -> Path:
    app.extensions["db_engine"].dispose()  # no connection left: the WAL is folded into the file
    copy = Path(tempfile.mkdtemp(prefix="survey-test-build-")) / "built.sqlite"
    atexit.register(shutil.rmtree, copy.parent, ignore_errors=True)
    shutil.copyfile(_sqlite_file(app), copy)
    return copy


def _restore_sqlite(app, copy: Path) -> None:
    app.extensions["db_engine"].dispose()
    database = _sqlite_file(app)
    for extra in ("-wal", "-shm"):
        Path(f"{database}{extra}").unlink(missing_ok=True)
    shutil.copyfile(copy, database)


def _tables_in_order(conn) -> list[str]:
    """The database's tables (but alembic_version), each after the tables its foreign keys point to."""
    from survey.models import Base

    present = set(conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                    "AND tablename <> 'alembic_version'")).scalars())
    ordered = [t.name for t in Base.metadata.sorted_tables if t.name in present]
    return ordered + sorted(present - set(ordered))


def _copy_postgres(app) -> tuple:
    engine = app.extensions["db_engine"]
    with engine.connect() as conn:
        tables = _tables_in_order(conn)
        cursor = conn.connection.driver_connection.cursor()
        rows = {}
        for table in tables:
            with cursor.copy(f"COPY public.{table} TO STDOUT (FORMAT BINARY)") as copy:
                rows[table] = b"".join(bytes(block) for block in copy)
        cursor.close()
        sequences = conn.execute(text("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'")).all()
        conn.rollback()
    engine.dispose()
    return tables, rows, [tuple(s) for s in sequences]


def _restore_postgres(app, copy: tuple) -> None:
    tables, rows, sequences = copy
    engine = app.extensions["db_engine"]
    engine.dispose()
    with engine.begin() as conn:
        _delete_all_rows(conn, tables)
        cursor = conn.connection.driver_connection.cursor()
        for table in tables:
            if rows[table]:
                with cursor.copy(f"COPY public.{table} FROM STDIN (FORMAT BINARY)") as load:
                    load.write(rows[table])
        cursor.close()
        for name, last_value in sequences:
            if last_value is not None:
                conn.execute(text("SELECT setval(:name, :value)"), {"name": f"public.{name}", "value": last_value})
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def app(request, tmp_path):
    """A fresh app and empty database for one test."""
    app = make_app(request.param, tmp_path)
    yield app
    dispose(app)


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


def csrf_token(html: str) -> str:
    """Return the CSRF token of a rendered staff form (the office login, an office page's form)."""
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def office_login(client, username: str, password: str = PASSWORD):
    """Post the office login form as ``username``; return the reply (a 302 when the login worked)."""
    page = client.get("/office/login").get_data(as_text=True)
    return client.post("/office/login", data={"csrf_token": csrf_token(page), "username": username, "password": password})


def logged_in(client, username: str, password: str = PASSWORD):
    """Log ``client`` in as ``username`` (asserting the login worked); return the client."""
    reply = office_login(client, username, password)
    assert reply.status_code == 302, f"{username} could not log in"
    return client


_addresses = itertools.count(1)


def client_from_own_address(app, network: str = "10.8"):
    """Return a test client with an address no other client of this run has (``network``.x.y).

    The login and public-form rate limits count per address, so one test's logins never use up another's.
    """
    client = app.test_client()
    n = next(_addresses)
    client.environ_base["REMOTE_ADDR"] = f"{network}.{n // 250}.{n % 250 + 1}"
    return client


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
    # Request threads are kept track of (not daemons), so that teardown waits for the ones still
    # answering: a response the browser left mid-way (a static file, when a test ends while its page
    # loads) was otherwise closed by the garbage collector in a later test, whose unclosed-file
    # ResourceWarning then failed that test.
    server.daemon_threads = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)
    server.socket.close()
    for handler in list(getattr(server, "_threads", None) or ()):
        handler.join(timeout=5)  # a kept-alive connection ends when its browser context closes


# Headless Chromium for the e2e tests: one browser for the session (starting Chromium costs about a
# second); each test gets fresh contexts (cookies, storage and cache of its own), closed after it.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
         "locale": "zh-CN"}


@pytest.fixture(scope="session")
def chromium():
    """The session's headless Chromium (Playwright), started by the first test that needs it."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: sudo apt-get install chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )
        yield browser
        browser.close()


@pytest.fixture
def browser(chromium):
    """The shared Chromium for one test: every context the test opens is closed after it."""
    before = set(chromium.contexts)
    yield chromium
    for context in chromium.contexts:
        if context not in before:
            context.close()


@pytest.fixture
def phone(browser):
    """A page on a 390x844 phone screen (touch, Chinese locale) in a fresh browser context."""
    return browser.new_context(**PHONE).new_page()


def shot(page, name: str) -> None:
    """Keep a screenshot of ``page`` in SCREENSHOT_DIR when that is set."""
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

"""Stored results that keep themselves fresh: the refresh job, its lock, its queues, 数据截至, cached PDFs."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy import func, select

from survey import create_app, db, jobs, refresh
from survey.auth import create_user
from survey.localtime import format_local
from survey.models import AnalysisRun, Area, AreaResult, Link, Wave
from survey.questionnaires import definition_of
from survey.reading import documents
from survey.submissions import store_response
from tests.conftest import PASSWORD, POSTGRESQL_ONLY, build_once, dispose
from tests.conftest import logged_in as login

ROOT = Path(__file__).resolve().parents[2]
REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/5")


def build_demo(app) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo", "--respondents", "200"]).exit_code == 0
    result = runner.invoke(args=["analyze"])
    assert result.exit_code == 0, result.output
    with app.app_context(), db.write_transaction() as session:
        create_user(session, "city", PASSWORD, "city", "C")
        create_user(session, "d1", PASSWORD, "district", "D01")


@pytest.fixture
def demo(app):
    """The demo city (200 responses) analysed once by ``flask analyze``; a city and a district account.

    Built once a session and backend (``build_once``), copied into each test's own database."""
    build_once(app, "refresh-demo", build_demo)
    shutil.rmtree(documents.cache_root(app), ignore_errors=True)
    yield app
    shutil.rmtree(documents.cache_root(app), ignore_errors=True)


def csrf(client, path):
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def add_paper_response(app, community="D01S1C1", comment=None) -> int:
    """Key in one paper questionnaire (no duration: never a speeder; varied answers: no straight line)."""
    with app.app_context():
        session = db.session()
        wave = session.scalars(select(Wave)).one()
        version = next(v for v in wave.versions if v.questionnaire.code == "citizen")
        area = session.scalars(select(Area).where(Area.code == community)).one()
        answers = {"sex": "F", "age_band": "30-44", "resident": "Y", "k01": "Y", "k02": "Y", "k03": "N", "k04": "Y"}
        answers |= {f"q{i:02d}": str(1 + i % 5) for i in range(1, 11)}
        if comment:
            answers["comment"] = comment
        stored = store_response(session, definition_of(version), answers, key=f"t-{uuid.uuid4().hex}", wave_id=wave.id,
                                version_id=version.id, link_id=None, area_id=area.id, channel="paper", started_at=None)
        session.close()
        return stored.response_id


def newest(app, code="citizen") -> AnalysisRun:
    with app.app_context():
        session = db.session()
        run = session.scalars(select(AnalysisRun).where(AnalysisRun.questionnaire_code == code)
                              .order_by(AnalysisRun.id.desc()).limit(1)).one()
        session.expunge(run)
        return run


def community_n(app, run_id: int, code: str) -> int:
    with app.app_context():
        return db.session().scalar(select(AreaResult.n).join(Area, Area.id == AreaResult.area_id)
                                   .where(AreaResult.run_id == run_id, Area.code == code))


def wave_id(app) -> int:
    with app.app_context():
        return db.session().scalar(select(Wave.id))


def runs(app) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(AnalysisRun))


def test_a_new_response_is_in_the_numbers_after_the_job_and_terms_are_counted_there(demo):
    first = newest(demo)
    assert first.summary["watermark"]["responses"] == 200 and first.summary["data_as_of"]
    with demo.app_context():
        assert refresh.stale(db.session(), min_age_s=0) == [(first.wave_id, "minor")]  # analysed: citizen only
    before = community_n(demo, first.id, "D01S1C1")
    add_paper_response(demo, comment="停车位太少，停车位乱收费")
    with demo.app_context():
        assert refresh.stale(db.session(), min_age_s=0) == [(first.wave_id, "citizen"), (first.wave_id, "minor")]
        assert refresh.stale(db.session(), min_age_s=3600) == [(first.wave_id, "minor")]  # citizen: run too young

    with demo.app_context():
        done = refresh.run_job(first.wave_id, "citizen")
    assert done["state"] == "done"
    second = newest(demo)
    assert second.id == done["run_id"] and second.respondents == first.respondents + 1
    assert community_n(demo, second.id, "D01S1C1") == before + 1
    assert second.summary["watermark"] == {"responses": 201, "max_id": second.summary["watermark"]["max_id"]}
    assert "停车位" in [word for word, _ in second.summary["terms"]["D01S1C1"]]
    # Only the community with a new comment was counted again; the result is the same as a full count.
    assert {c: t for c, t in second.summary["terms"].items() if c != "D01S1C1"} == {
        c: t for c, t in first.summary["terms"].items() if c != "D01S1C1"}
    with demo.app_context():
        assert refresh.community_terms(db.session(), first.wave_id) == second.summary["terms"]
    # Nothing new: the job does nothing (no new run).
    with demo.app_context():
        assert refresh.run_job(first.wave_id, "citizen")["state"] == "fresh"
    assert runs(demo) == 2

    # `flask worker --burst` (no REDIS_URL): checks once, runs what is stale in its thread, stops.
    demo.config["REFRESH_MIN_AGE_S"] = 0
    add_paper_response(demo)
    try:
        result = demo.test_cli_runner().invoke(args=["worker", "--burst"])
    finally:
        jobs.use_app(None)
    assert result.exit_code == 0, result.output
    assert "queued 2 refresh(es)" in result.output
    assert newest(demo).respondents == first.respondents + 2 and newest(demo, "minor").respondents > 0


def test_the_in_process_worker_refreshes_by_itself_with_a_short_interval(demo):
    first = newest(demo)
    demo.config.update(REFRESH_INTERVAL_S=0.1, REFRESH_MIN_AGE_S=0)
    refresh.init_app(demo)  # what create_app does with a non-zero interval
    add_paper_response(demo)
    try:
        demo.test_client().get("/office/login")  # the first request starts the check
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and newest(demo).id == first.id:
            time.sleep(0.1)
        second = newest(demo)
        assert second.id != first.id and second.respondents == first.respondents + 1
        assert refresh.wait_idle(demo)
    finally:
        demo.extensions["refresh_stop"].set()
        demo.extensions["refresh_thread"].join(timeout=10)
    assert newest(demo, "minor").respondents > 0  # the wave's other questionnaire got its first run too


def test_two_refreshes_at_once_one_runs_the_other_returns_busy(demo, monkeypatch):

    real = refresh.run_analysis
    inside, release = threading.Event(), threading.Event()

    def slow(*args, **kwargs):
        inside.set()
        assert release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(refresh, "run_analysis", slow)
    add_paper_response(demo)  # something new: a refresh with nothing new stores no run
    wave, before, outcomes = wave_id(demo), runs(demo), []

    def first():
        with demo.app_context():
            outcomes.append(refresh.refresh(wave, force=True))

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert inside.wait(30)
        with demo.app_context():
            assert refresh.refresh(wave, force=True) == refresh.Outcome("busy")
            assert refresh.run_job(wave, "citizen", force=True) == {"state": "busy", "run_id": None}
    finally:
        release.set()
        thread.join(30)
    assert outcomes[0].state == "done" and runs(demo) == before + 1


LOCK_HOLDER = """
import sys, time
from survey import create_app, refresh

app = create_app({"TESTING": True, "DATABASE_URL": sys.argv[1], "SECRET_KEY": "x", "REFRESH_INTERVAL_S": 0,
                  "HOUSEKEEPING_INTERVAL_S": 0, "RATELIMIT_ENABLED": False, "REFRESH_LOCK_TIMEOUT_S": int(sys.argv[3])})

def hang(*args, **kwargs):
    print("locked", flush=True)
    while True:
        time.sleep(60)

refresh.run_analysis = hang
with app.app_context():
    refresh.refresh(int(sys.argv[2]), force=True)
"""


def hold_the_lock(app, wave: int, lock_timeout_s: int) -> subprocess.Popen:
    """Start a worker process that takes the wave's refresh lock and then hangs inside the analysis."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(LOCK_HOLDER), db.database_url(app), str(wave),
                               str(lock_timeout_s)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with app.app_context():
        assert refresh.refresh(wave, force=True).state == "busy"
    return holder


def take_over(app, wave: int, seconds: float) -> str:
    deadline, outcome = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        with app.app_context():
            outcome = refresh.refresh(wave, force=True)
        if outcome.state != "busy":
            break
        time.sleep(0.2)
    return outcome.state


def test_the_lock_of_a_crashed_worker_is_taken_over(demo):
    """A killed worker's lock goes with its process: the kernel drops its file lock (SQLite), the server
    ends its session and transaction (PostgreSQL)."""
    wave = wave_id(demo)
    add_paper_response(demo)  # something new for the refresh that takes over to store
    holder = hold_the_lock(demo, wave, 600)
    try:
        holder.send_signal(signal.SIGKILL)
        assert take_over(demo, wave, 20) == "done"
    finally:
        holder.kill()
        holder.wait(10)
        holder.stdout.close()


@pytest.mark.parametrize("app", POSTGRESQL_ONLY, indirect=True)  # the PostgreSQL app only: no SQLite variant
def test_the_lock_of_a_hung_worker_expires_on_postgresql(demo):
    """A worker that hangs silent mid-refresh (SIGSTOP: no crash, its connection stays open) loses its
    PostgreSQL lock after REFRESH_LOCK_TIMEOUT_S. (On SQLite such a worker holds the database's one
    write lock as long as it lives, as ``hold_the_lock`` checks; the kernel frees it when the worker
    is killed, as the crashed-worker test checks.)"""
    wave = wave_id(demo)
    add_paper_response(demo)  # something new for each refresh that takes over to store
    holder = hold_the_lock(demo, wave, 2)
    try:
        holder.send_signal(signal.SIGSTOP)
        assert take_over(demo, wave, 20) == "done"
        holder.kill()
        holder.wait(10)
        add_paper_response(demo)
        assert take_over(demo, wave, 20) == "done"
    finally:
        holder.kill()
        holder.wait(10)
        holder.stdout.close()


def test_the_rq_path_with_a_real_redis(demo, monkeypatch):
    redis = pytest.importorskip("redis")
    from redis.client import PubSub

    client = redis.Redis.from_url(REDIS_TEST_URL)
    client.ping()
    name = f"test-refresh-{uuid.uuid4().hex[:8]}"
    demo.config.update(REDIS_URL=REDIS_TEST_URL, REFRESH_QUEUE=name, REFRESH_MIN_AGE_S=0)
    first = newest(demo)
    # rq's worker installs its own SIGTERM/SIGINT handlers in this process: put pytest's back afterwards.
    handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        add_paper_response(demo)
        queued = refresh.check(demo)
        assert queued == [(first.wave_id, "citizen"), (first.wave_id, "minor")]
        assert refresh.pending(demo, first.wave_id)
        refresh.enqueue(demo, first.wave_id, "citizen")  # waiting already: not queued twice
        assert refresh.job_queue(demo).count == 2
        jobs.use_app(demo)
        worker = refresh.rq_worker(demo)
        # Its command thread is told to stop before UNSUBSCRIBE wakes it: else it could go back to a read of
        # up to 60 s, and the worker waited for it (rq 3.0 with redis-py 8 on a busy machine).
        stopping = []
        unsubscribe = PubSub.unsubscribe
        monkeypatch.setattr(PubSub, "unsubscribe", lambda pubsub, *args: stopping.append(
            worker.pubsub_thread._running.is_set()) or unsubscribe(pubsub, *args))
        assert worker.work(burst=True)
        assert stopping == [False]
        monkeypatch.undo()
        second = newest(demo)
        assert second.respondents == first.respondents + 1 and newest(demo, "minor").respondents > 0
        assert not refresh.pending(demo, first.wave_id)
        assert refresh.check(demo) == []  # nothing new
        # `flask worker --burst` with REDIS_URL: its own check queues the job, its SimpleWorker runs it.
        add_paper_response(demo)
        result = demo.test_cli_runner().invoke(args=["worker", "--burst"])
        assert result.exit_code == 0, result.output
        assert f"Refresh worker on queue {name}; queued now: 1" in result.output
        assert newest(demo).respondents == first.respondents + 2 and refresh.job_queue(demo).count == 0
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
        jobs.use_app(None)
        for key in client.scan_iter(f"*{name}*"):
            client.delete(key)
        client.close()
        refresh.redis_client(demo).close()


def test_data_time_is_on_every_office_page_an_export_and_the_pdf_and_the_city_office_can_refresh(demo):
    run = newest(demo)
    shown = format_local(datetime.fromisoformat(run.summary["data_as_of"]))
    assert abs((datetime.now(UTC) - datetime.fromisoformat(run.summary["data_as_of"])).total_seconds()) < 600
    with demo.app_context():
        assert refresh.data_time_text(run) == shown
    client = login(demo.test_client(), "city")
    for path in ("/office/area/C", "/office/area/D01", "/office/community/D01S1C1", "/office/area/C/problems",
                 "/office/area/C/exports"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert f"数据截至 {shown}" in page.get_data(as_text=True), path
    export = client.get("/office/area/C/export/estimates.csv")
    disposition = unquote(export.headers["Content-Disposition"])
    assert f"数据截至{shown.replace('-', '').replace(' ', '-').replace(':', '')}.csv" in disposition
    pdf = client.get("/office/area/D01/report.pdf")
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf.data, capture_output=True, check=True).stdout.decode()
    assert f"数据截至 {shown}" in text


    # 刷新: the city office's, at once (no new answers needed), and then the pages say the new time; with
    # nothing new the run holds (nothing is stored) and only its data time moves.
    district = login(demo.test_client(), "d1")
    assert "刷新</button>" not in district.get("/office/area/D01").get_data(as_text=True)
    token = csrf(district, "/office/area/D01")
    assert district.post(f"/office/refresh/{run.wave_id}", data={"csrf_token": token}).status_code == 403
    assert "刷新</button>" in client.get("/office/area/C").get_data(as_text=True)
    assert client.post(f"/office/refresh/{run.wave_id}", data={"next": "/office/area/C"}).status_code == 400  # no token
    token = csrf(client, "/office/area/C")
    answer = client.post(f"/office/refresh/{run.wave_id}", data={"csrf_token": token, "next": "/office/area/C?wave=1"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/office/area/C?wave=1")
    assert refresh.wait_idle(demo)
    second = newest(demo)
    assert second.id == run.id
    assert datetime.fromisoformat(second.summary["data_as_of"]) > datetime.fromisoformat(run.summary["data_as_of"])
    assert second.summary["watermark"] == run.summary["watermark"]
    assert refresh.pending(demo, run.wave_id) is False
    assert f"数据截至 {refresh.data_time_text(second)}" in client.get("/office/area/C").get_data(as_text=True)


def test_a_page_shown_while_a_refresh_runs_reloads_itself(demo, monkeypatch):
    client = login(demo.test_client(), "city")
    assert 'http-equiv="refresh"' not in client.get("/office/area/C").get_data(as_text=True)
    monkeypatch.setattr(refresh, "pending", lambda *args, **kwargs: True)
    page = client.get("/office/area/C").get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="20">' in page and "正在刷新…（本页会自动更新）" in page


def test_pdfs_are_cached_until_the_next_refresh(demo, monkeypatch):
    import survey.reading.reporting

    rendered = []
    real = survey.reading.reporting.area_report
    monkeypatch.setattr(survey.reading.reporting, "area_report", lambda *a, **k: rendered.append(1) or real(*a, **k))
    client = login(demo.test_client(), "city")
    one = client.get("/office/area/D01/report.pdf")
    two = client.get("/office/area/D01/report.pdf")
    assert one.status_code == two.status_code == 200 and one.data == two.data and len(rendered) == 1
    cache = documents.cache_root(demo)  # instance/pdf-cache/<database>
    assert [p.name for p in cache.glob("run-*/*.pdf")] == ["report-D01.pdf"]
    qr_one, qr_two = client.get("/office/area/D01/qr.pdf"), client.get("/office/area/D01/qr.pdf")
    assert qr_one.data == qr_two.data and len(list(cache.glob("run-*/qr-D01-*.pdf"))) == 1
    with demo.app_context(), db.write_transaction() as session:  # a link disabled: the QR sheet changes at once
        session.scalars(select(Link).join(Area, Area.id == Link.area_id).where(Link.enabled, Area.code.startswith("D01"))
                        .order_by(Link.id).limit(1)).one().enabled = False
    assert client.get("/office/area/D01/qr.pdf").data != qr_one.data

    add_paper_response(demo)
    demo.config["REFRESH_PRERENDER"] = "city"  # the job renders the city's report ahead
    with demo.app_context():
        assert refresh.run_job(wave_id(demo), "citizen")["state"] == "done"
    assert not list(cache.glob("run-*/report-D01.pdf"))  # the old run's files went with it
    assert [p.name for p in cache.glob("run-*/report-*.pdf")] == ["report-C.pdf"] and len(rendered) == 2
    assert client.get("/office/area/C/report.pdf").status_code == 200 and len(rendered) == 2
    three = client.get("/office/area/D01/report.pdf")
    assert three.status_code == 200 and len(rendered) == 3
    client.get("/office/area/D01/report.pdf")
    assert len(rendered) == 3


def test_a_refresh_that_cannot_run_is_not_retried_until_new_responses(app, city):
    """A wave without margins (here: minors without enrolment) fails once and waits for new answers."""
    from survey.models import Questionnaire, QuestionnaireVersion

    with app.app_context():
        session = db.session()
        wave = session.scalars(select(Wave)).one()
        minor = session.scalars(select(QuestionnaireVersion).join(Questionnaire).where(Questionnaire.code == "minor")).first()
        answers = {i.code: (i.choices[0].code if i.choices else None) for i in definition_of(minor).items}
        store_response(session, definition_of(minor), answers, key="m-1", wave_id=wave.id, version_id=minor.id,
                       link_id=None, area_id=None, channel="paper", started_at=None)
        wave_id_ = wave.id
        session.close()
    app.config["REFRESH_MIN_AGE_S"] = 0
    assert refresh.check(app) == [(wave_id_, "minor")]
    assert refresh.wait_idle(app)
    assert runs(app) == 0
    app.extensions["refresh_check"]["highest"] = None  # as if a response had come in elsewhere
    assert refresh.check(app) == []  # same watermark: not queued again


def test_the_worker_unit_runs_flask_worker():
    from survey.cli import worker_command

    unit = (ROOT / "deploy" / "systemd" / "survey-worker.service").read_text(encoding="utf-8")
    assert "ExecStart=/opt/survey/.venv/bin/flask worker" in unit and "EnvironmentFile=/etc/survey/survey.env" in unit
    assert worker_command.name == "worker"


def test_a_job_whose_worker_was_killed_stops_showing_as_running_at_once(demo):
    """RQ keeps a killed worker's job "started" for minutes; pending() asks whether its lock is still held."""
    redis = pytest.importorskip("redis")
    from rq.job import Job, JobStatus

    client = redis.Redis.from_url(REDIS_TEST_URL)
    name = f"test-dead-{uuid.uuid4().hex[:8]}"
    demo.config.update(REDIS_URL=REDIS_TEST_URL, REFRESH_QUEUE=name)
    wave = wave_id(demo)
    try:
        refresh.enqueue(demo, wave, "citizen")
        job = Job.fetch(refresh._job_id(demo, wave, "citizen"), connection=refresh.redis_client(demo))
        job.set_status(JobStatus.STARTED)
        job.started_at = datetime.now(UTC)
        job.save()
        assert refresh.pending(demo, wave, ["citizen"])  # just started: its lock may not be taken yet
        job.started_at = datetime.now(UTC) - timedelta(seconds=refresh.STARTING_GRACE_S + 1)
        job.save()
        holder = hold_the_lock(demo, wave, 600)  # the worker, inside the analysis
        try:
            assert refresh.pending(demo, wave, ["citizen"])
            with demo.app_context():
                assert refresh.lock_held(wave, "citizen") and not refresh.lock_held(wave, "minor")
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
            deadline = time.monotonic() + 5  # PostgreSQL ends the killed session's lock within a moment
            while refresh.pending(demo, wave, ["citizen"]) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not refresh.pending(demo, wave, ["citizen"])
            assert Job.fetch(job.id, connection=refresh.redis_client(demo)).get_status() == JobStatus.STARTED  # RQ: still
        finally:
            holder.kill()
            holder.wait(10)
            holder.stdout.close()
    finally:
        demo.config.update(REDIS_URL=None)
        for key in client.scan_iter(f"*{name}*"):
            client.delete(key)
        client.close()
        refresh.redis_client(demo).close()
        demo.extensions.pop("refresh_redis", None)


def test_sites_sharing_a_redis_queue_their_refreshes_apart(demo, tmp_path):
    """Found by the outside attack session: city B's worker took city A's jobs and ran them on its own data."""
    other = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'b.sqlite'}", "SECRET_KEY": "b",
                        "RATELIMIT_KEY_PREFIX": "cityB"})
    assert refresh.queue_name(demo) != refresh.queue_name(other)
    assert refresh.queue_name(other).startswith("cityB-refresh-")
    other.config["REFRESH_QUEUE"] = demo.config["REFRESH_QUEUE"] = "shared"  # told to share one queue
    try:
        with demo.app_context():
            assert jobs.refresh_job(wave_id(demo), "citizen", False, refresh.database_tag(other)) == {
                "state": "other database", "run_id": None}
    finally:
        demo.config["REFRESH_QUEUE"] = None
        dispose(other)

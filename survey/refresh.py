"""Stored results that keep themselves fresh: the refresh of a wave's analysis, its lock and its queue.

:func:`refresh` is the one code path that analyses a wave's responses to one questionnaire and
stores a new run (``flask analyze``, the background job and the office's 刷新 button all call
it). Each run's summary keeps

* ``watermark``: the count and the highest id of the wave's responses to that questionnaire
  that the run analysed (the aggregation's stored count and its unsettled tail: nothing counts
  the wave again), so a periodic check sees new responses by comparing two numbers
  (submissions write nothing extra and never wait for a refresh);
* ``data_as_of``: when the run started, before the aggregation read its responses, shown as
  "数据截至" on every office page, export and PDF;
* ``terms``: the most frequent complaint terms of each community's newest comments, so no page
  segments text (jieba loads in the worker, not in a request).

One refresh at a time per wave and questionnaire: on PostgreSQL an advisory lock of the
refresh's own transaction (released by the server when the worker's connection ends, and at the
latest after ``REFRESH_LOCK_TIMEOUT_S`` of a silent client, by ``idle_in_transaction_session_timeout``);
on SQLite an exclusive ``flock`` on a file in the instance folder (released by the kernel when
the process ends, however it ends). A refresh that finds the lock taken does nothing: the one
running will have the data.

Where it runs: with ``REDIS_URL`` set, jobs go to an RQ queue (``REFRESH_QUEUE``) served by
``flask --app survey worker``; without it, a worker thread in each app process. In both setups
every app process (and ``flask worker``) checks every ``REFRESH_INTERVAL_S`` seconds whether a
wave that is open, or closed less than a week ago, has responses its newest run has not seen, and
queues a refresh when that run is at least ``REFRESH_MIN_AGE_S`` old ("at most every few minutes
while answers arrive").
"""
from __future__ import annotations

import fcntl
import json
import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask, current_app, has_app_context
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from survey import db
from survey.localtime import format_local
from survey.models import AnalysisRun, Answer, Area, Questionnaire, QuestionnaireVersion, Response, Wave, wave_version

RECENTLY_CLOSED = timedelta(days=7)  # paper questionnaires are still keyed in after a wave closes
COMMENTS_PER_COMMUNITY = 200  # the community page lists (and counts terms of) this many newest comments
LATE_COMMIT = timedelta(minutes=10)  # a response's id is taken before it commits: look this far back too
LOCK_NAMESPACE = 0x5EF5  # first key of the PostgreSQL advisory locks taken here


@dataclass(frozen=True)
class Outcome:
    """What a refresh did: ``done`` (a new run), ``fresh`` (nothing new), ``busy`` (another one runs)."""

    state: str
    run_id: int | None = None


# --- watermark and data time ------------------------------------------------------------------


def watermark(session: Session, wave_id: int, questionnaire_code: str) -> dict[str, int]:
    """Return how many responses the wave has to the questionnaire, and the highest response id."""
    versions = select(QuestionnaireVersion.id).join(Questionnaire).where(Questionnaire.code == questionnaire_code)
    count, highest = session.execute(
        select(func.count(), func.max(Response.id))
        .where(Response.wave_id == wave_id, Response.questionnaire_version_id.in_(versions))
    ).one()
    return {"responses": int(count or 0), "max_id": int(highest or 0)}


def highest_id(session: Session, wave_id: int, questionnaire_code: str) -> int:
    """Return the highest response id of the wave's responses to the questionnaire (0: none); one index look-up."""
    versions = select(QuestionnaireVersion.id).join(Questionnaire).where(Questionnaire.code == questionnaire_code)
    return int(session.scalar(select(func.max(Response.id)).where(
        Response.wave_id == wave_id, Response.questionnaire_version_id.in_(versions))) or 0)


def seen_all(session: Session, run: AnalysisRun, wave_id: int, questionnaire_code: str) -> bool:
    """Return whether the run saw every response of the wave to the questionnaire (its watermark is the current one).

    A new response has a higher id: the highest id is compared first, and the responses are counted
    (a deletion, a late commit) only when it is the same.
    """
    stored = (run.summary or {}).get("watermark")
    if not stored or stored.get("max_id") != highest_id(session, wave_id, questionnaire_code):
        return False
    return stored == watermark(session, wave_id, questionnaire_code)


def newest_run(session: Session, wave_id: int, questionnaire_code: str) -> AnalysisRun | None:
    return session.scalar(
        select(AnalysisRun).where(AnalysisRun.wave_id == wave_id, AnalysisRun.questionnaire_code == questionnaire_code)
        .order_by(AnalysisRun.id.desc()).limit(1)
    )


def data_time(run: AnalysisRun | None) -> datetime | None:
    """Return the time the run's data goes up to: when its watermark was read (older runs: when stored)."""
    if run is None:
        return None
    if "summary" in run.__dict__ or inspect(run).session is None:
        stamp = (run.summary or {}).get("data_as_of")
    else:  # the summary is not loaded (office pages defer it): read only this member, not the whole JSON
        stamp = inspect(run).session.scalar(
            select(AnalysisRun.summary["data_as_of"].as_string()).where(AnalysisRun.id == run.id))
    return datetime.fromisoformat(stamp) if stamp else run.created_at


def data_time_text(run: AnalysisRun | None) -> str:
    """Return e.g. ``2026-11-30 14:05`` in the city's local time ("" without a run)."""
    return format_local(data_time(run))


# --- the refresh itself -----------------------------------------------------------------------


def refresh(
    wave_id: int,
    questionnaire_code: str = "citizen",
    *,
    force: bool = False,
    wait: bool = False,
    include_flagged: bool = False,
    full: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Outcome:
    """Analyse the wave's responses to the questionnaire and store a new run, under the wave's lock.

    Without ``force`` nothing is done when the newest run has seen every response. Without
    ``wait`` a refresh that finds another one running returns ``busy`` at once. The statistics are
    updated with the responses since the last refresh (``full``: rebuilt from all). Needs an app
    context; raises the analysis's own errors (AnalysisError, MarginsError).
    """
    from survey.results import run_analysis

    with _lock(wave_id, questionnaire_code, wait) as got:
        if not got:
            return Outcome("busy")
        with db.write_transaction() as session:
            if db.engine().dialect.name == "postgresql":
                seconds = int(current_app.config.get("REFRESH_LOCK_TIMEOUT_S", 600))
                session.execute(select(func.set_config("idle_in_transaction_session_timeout", f"{seconds}s", True)))
                # Big scans and sorts (the median duration, the statistics): in memory, and not JIT-compiled
                # (compiling costs more than it saves on queries of a second or less).
                session.execute(select(func.set_config("work_mem", "64MB", True), func.set_config("jit", "off", True)))
                key = zlib.crc32(f"{wave_id}:{questionnaire_code}".encode()) & 0x7FFFFFFF
                if wait:
                    session.execute(select(func.pg_advisory_xact_lock(LOCK_NAMESPACE, key)))
                elif not session.scalar(select(func.pg_try_advisory_xact_lock(LOCK_NAMESPACE, key))):
                    return Outcome("busy")
            wave = session.get(Wave, wave_id)
            if wave is None:
                return Outcome("fresh")
            started = datetime.now(UTC)  # before the aggregation reads its responses: never claims too much
            latest = newest_run(session, wave_id, questionnaire_code)
            if not force and latest is not None and seen_all(session, latest, wave_id, questionnaire_code):
                return Outcome("fresh", latest.id)
            run = run_analysis(session, wave, questionnaire_code, progress=progress, include_flagged=include_flagged,
                               full=full)
            # The responses the aggregation analysed (its stored count and the unsettled tail): counting the
            # wave's responses again would read all of them.
            analysed = run.summary["aggregation"]
            mark = {"responses": int(analysed["responses"]), "max_id": int(analysed["upto"])}
            extra = {"watermark": mark, "data_as_of": started.isoformat()}
            if questionnaire_code == "citizen":
                before = latest.summary if latest is not None else {}
                extra["terms"] = community_terms(session, wave_id, before.get("terms"),
                                                 (before.get("watermark") or {}).get("max_id"), data_time(latest))
            run.summary = run.summary | extra
            session.flush()
            run_id = run.id
    _after_refresh(current_app._get_current_object())
    return Outcome("done", run_id)


@contextmanager
def _lock(wave_id: int, questionnaire_code: str, wait: bool) -> Iterator[bool]:
    """Hold SQLite's file lock of the wave and questionnaire (PostgreSQL locks in the transaction)."""
    if db.engine().dialect.name == "postgresql":
        yield True
        return
    folder = Path(current_app.instance_path) / "locks"
    folder.mkdir(exist_ok=True)
    with open(folder / f"refresh-{database_tag(current_app)}-{wave_id}-{questionnaire_code}.lock", "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def database_tag(app: Flask) -> str:
    """Return a short name of the app's database, for files of the instance folder that belong to it."""
    return zlib.crc32(db.database_url(app).encode()).to_bytes(4, "big").hex()


def community_terms(session: Session, wave_id: int, previous: dict[str, list] | None = None,
                    after_id: int | None = None, after: datetime | None = None) -> dict[str, list[list]]:
    """Return each community's most frequent complaint terms in its newest comments of the wave.

    With the ``previous`` run's terms, its highest response id and its data time, only the
    communities with a comment in a later response are counted again (segmenting is the slow
    part), the others kept. "Later" also takes responses submitted up to ``LATE_COMMIT`` before
    that time, in case one committed after the watermark with a lower id.
    """
    from analysis.text import top_terms

    commented = (Response.wave_id == wave_id) & (Area.level == "community") & Answer.text.is_not(None)
    base = (select(Area.code).select_from(Answer).join(Response, Response.id == Answer.response_id)
            .join(Area, Area.id == Response.area_id))
    kept: dict[str, list] = {}
    redo = None
    if previous is not None and after_id is not None:
        late = Response.id > after_id
        if after is not None:
            late = late | (Response.submitted_at > after - LATE_COMMIT)
        redo = set(session.scalars(base.where(commented, late).distinct()))
        kept = {code: terms for code, terms in previous.items() if code not in redo}
        if not redo:
            return kept
    newest = func.row_number().over(partition_by=Response.area_id, order_by=Response.submitted_at.desc()).label("k")
    ranked = base.add_columns(Answer.text.label("text"), newest).where(commented)
    if redo is not None:
        ranked = ranked.where(Area.code.in_(redo))
    ranked = ranked.subquery()
    texts: dict[str, list[str]] = {}
    for code, text in session.execute(select(ranked.c.code, ranked.c.text).where(ranked.c.k <= COMMENTS_PER_COMMUNITY)):
        texts.setdefault(code, []).append(text)
    return kept | {code: [[word, count] for word, count in top_terms(found)] for code, found in texts.items()}


def stored_terms(run: AnalysisRun, area: Area) -> list[tuple[str, int]] | None:
    """Return the terms the run stored for a community (None: a run from before terms were stored)."""
    terms = (run.summary or {}).get("terms")
    if terms is None:
        return None
    return [(word, int(count)) for word, count in terms.get(area.code, [])]


def _after_refresh(app: Flask) -> None:
    """Drop the cached PDFs of runs that are no longer the newest (a new run means new documents)."""
    from survey.office import documents

    try:
        documents.keep_only_newest(app)
    except OSError:
        app.logger.exception("could not clear old cached PDFs")


# --- what is stale ----------------------------------------------------------------------------


def stale(session: Session, now: datetime | None = None, min_age_s: float = 180) -> list[tuple[int, str]]:
    """Return (wave id, questionnaire) pairs with responses their newest run has not seen, old enough to redo."""
    now = now or datetime.now(UTC)
    waves = session.execute(
        select(Wave.id, Questionnaire.code).distinct()
        .join(wave_version, wave_version.c.wave_id == Wave.id)
        .join(QuestionnaireVersion, QuestionnaireVersion.id == wave_version.c.questionnaire_version_id)
        .join(Questionnaire, Questionnaire.id == QuestionnaireVersion.questionnaire_id)
        .where(Wave.opens_at <= now, Wave.closes_at > now - RECENTLY_CLOSED)
        .order_by(Wave.id, Questionnaire.code)
    ).all()
    out = []
    for wave_id, code in waves:
        mark = watermark(session, wave_id, code)
        latest = newest_run(session, wave_id, code)
        if mark["responses"] == 0 or (latest is not None and latest.summary.get("watermark") == mark):
            continue
        if latest is not None and (now - latest.created_at).total_seconds() < min_age_s:
            continue
        out.append((wave_id, code))
    return out


def check(app: Flask, now: datetime | None = None) -> list[tuple[int, str]]:
    """Queue a refresh of every stale wave and questionnaire (skipping ones that failed at the same
    watermark, e.g. without margins); return what was queued. Cheap when no response came in:
    one look at the highest response id."""
    state = app.extensions.setdefault("refresh_check", {"highest": None, "pending": True})
    with app.app_context():
        session = db.session()
        try:
            highest = session.scalar(select(func.max(Response.id)))
            if highest == state["highest"] and not state["pending"]:
                return []
            found = stale(session, now, float(app.config.get("REFRESH_MIN_AGE_S", 180)))
            queued = []
            for wave_id, code in found:
                if _failed_before(app, wave_id, code, watermark(session, wave_id, code)):
                    continue
                enqueue(app, wave_id, code)
                queued.append((wave_id, code))
            # Something stale but too young (or failing) is looked at again next round.
            state["highest"], state["pending"] = highest, bool(found)
            return queued
        finally:
            session.rollback()


# --- running jobs: RQ on Redis, or a thread in this process ------------------------------------


def enqueue(app: Flask, wave_id: int, questionnaire_code: str = "citizen", force: bool = False) -> None:
    """Queue a refresh (a second one of the same wave and questionnaire while one waits is dropped)."""
    if app.config.get("REDIS_URL"):
        from rq.exceptions import NoSuchJobError
        from rq.job import Job, JobStatus

        connection = redis_client(app)
        job_id = _job_id(app, wave_id, questionnaire_code)
        try:
            if Job.fetch(job_id, connection=connection).get_status() in (JobStatus.QUEUED, JobStatus.SCHEDULED):
                return
        except NoSuchJobError:
            pass
        job_queue(app).enqueue_call(run_job, args=(wave_id, questionnaire_code, force), job_id=job_id,
                                 timeout=int(app.config.get("REFRESH_LOCK_TIMEOUT_S", 600)), result_ttl=3600,
                                 failure_ttl=24 * 3600)
        return
    _thread_worker(app).put((wave_id, questionnaire_code, force))


def pending(app: Flask, wave_id: int, codes: list[str] | None = None) -> bool:
    """Return whether a refresh of the wave (of one of ``codes``, default all) is queued or running."""
    if app.config.get("REDIS_URL"):
        from rq.exceptions import NoSuchJobError
        from rq.job import Job, JobStatus

        for code in codes if codes is not None else _codes(app, wave_id):
            try:
                status = Job.fetch(_job_id(app, wave_id, code), connection=redis_client(app)).get_status()
            except NoSuchJobError:
                continue
            if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED):
                return True
        return False
    worker = app.extensions.get("refresh_worker")
    return worker is not None and worker.has(wave_id)


def run_job(wave_id: int, questionnaire_code: str = "citizen", force: bool = False) -> dict:
    """The job: refresh, then render the PDFs of the levels in ``REFRESH_PRERENDER``; never raises
    for an analysis that cannot run yet (it is remembered, and retried when new responses come)."""
    app = current_app._get_current_object() if has_app_context() else worker_app()
    with app.app_context():
        from analysis.errors import AnalysisError
        from survey.results import MarginsError

        try:
            outcome = refresh(wave_id, questionnaire_code, force=force)
        except (AnalysisError, MarginsError) as exc:
            session = db.session()
            _remember_failure(app, wave_id, questionnaire_code, watermark(session, wave_id, questionnaire_code))
            session.rollback()
            app.logger.warning("refresh of wave %s (%s) cannot run: %s", wave_id, questionnaire_code, exc)
            return {"state": "failed", "error": str(exc)}
        if outcome.state == "done":
            app.logger.info("refreshed wave %s (%s): run %s", wave_id, questionnaire_code, outcome.run_id)
            _prerender(app, outcome.run_id)
        return {"state": outcome.state, "run_id": outcome.run_id}


_app: Flask | None = None


def worker_app() -> Flask:
    """Return the app RQ jobs run in: the one ``flask worker`` set, else one made from the environment."""
    global _app
    if _app is None:
        from survey import create_app

        _app = create_app()
    return _app


def use_app(app: Flask | None) -> None:
    """Make ``app`` the one RQ jobs of this process run in (``flask worker`` and tests)."""
    global _app
    _app = app


def warm_up() -> None:
    """Load what a first request or job would otherwise load: jieba's dictionaries."""
    from analysis.text import load_dictionary

    load_dictionary()


def _prerender(app: Flask, run_id: int | None) -> None:
    levels = [level.strip() for level in str(app.config.get("REFRESH_PRERENDER", "")).split(",") if level.strip()]
    if not levels or run_id is None:
        return
    from survey.office import documents

    try:
        documents.prerender(app, run_id, levels)
    except Exception:  # a missing font must not fail the refresh; the request renders (and says why)
        app.logger.exception("could not render the PDFs of run %s ahead", run_id)


def redis_client(app: Flask):
    client = app.extensions.get("refresh_redis")
    if client is None:
        import redis

        client = app.extensions["refresh_redis"] = redis.Redis.from_url(app.config["REDIS_URL"])
    return client


def job_queue(app: Flask):
    from rq import Queue

    return Queue(app.config.get("REFRESH_QUEUE", "survey-refresh"), connection=redis_client(app))


def rq_worker(app: Flask):
    """Return the RQ worker of ``flask worker`` on the app's queue: rq's SimpleWorker (jobs run in this
    process, so the app, its pool and the loaded dictionary are reused) that stops without waiting.

    rq stops the thread that listens for its commands by sending UNSUBSCRIBE and only then clearing the
    thread's flag, and redis-py waits for the thread: when the reply woke it before the flag was cleared
    (a busy machine), it went back to a read of up to 60 s, and ``flask worker --burst`` took a minute to
    return. The flag is cleared first here, so the reply ends the thread.
    """
    from rq import SimpleWorker

    class Worker(SimpleWorker):
        def unsubscribe(self) -> None:
            running = getattr(self.pubsub_thread, "_running", None)  # redis-py's PubSubWorkerThread
            if running is not None:
                running.clear()
            super().unsubscribe()

    return Worker([job_queue(app)], connection=redis_client(app))


def _job_id(app: Flask, wave_id: int, questionnaire_code: str) -> str:
    return f"{app.config.get('REFRESH_QUEUE', 'survey-refresh')}-{wave_id}-{questionnaire_code}"


def _codes(app: Flask, wave_id: int) -> list[str]:
    with app.app_context():
        session = db.session()
        try:
            return list(session.scalars(
                select(Questionnaire.code).distinct()
                .join(QuestionnaireVersion, QuestionnaireVersion.questionnaire_id == Questionnaire.id)
                .join(wave_version, wave_version.c.questionnaire_version_id == QuestionnaireVersion.id)
                .where(wave_version.c.wave_id == wave_id)
            ))
        finally:
            session.rollback()


def _remember_failure(app: Flask, wave_id: int, code: str, mark: dict) -> None:
    if app.config.get("REDIS_URL"):
        redis_client(app).set(f"{_job_id(app, wave_id, code)}:failed", json.dumps(mark), ex=24 * 3600)
    else:
        app.extensions.setdefault("refresh_failed", {})[(wave_id, code)] = mark


def _failed_before(app: Flask, wave_id: int, code: str, mark: dict) -> bool:
    if app.config.get("REDIS_URL"):
        stored = redis_client(app).get(f"{_job_id(app, wave_id, code)}:failed")
        return stored is not None and json.loads(stored) == mark
    return app.extensions.get("refresh_failed", {}).get((wave_id, code)) == mark


class ThreadWorker:
    """One daemon thread that runs this process's refresh jobs in order; a job waiting twice runs once."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.jobs: queue.Queue = queue.Queue()
        self.waiting: set[tuple[int, str]] = set()
        self.running: tuple[int, str] | None = None
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="survey-refresh", daemon=True)
        self.thread.start()

    def put(self, job: tuple[int, str, bool]) -> None:
        with self.lock:
            if job[:2] in self.waiting:
                return
            self.waiting.add(job[:2])
        self.jobs.put(job)

    def has(self, wave_id: int) -> bool:
        with self.lock:
            return any(w == wave_id for w, _ in self.waiting) or (self.running or (None,))[0] == wave_id

    def idle(self) -> bool:
        with self.lock:
            return not self.waiting and self.running is None

    def _loop(self) -> None:
        try:
            warm_up()
        except Exception:
            self.app.logger.exception("could not load jieba's dictionary ahead")
        while True:
            wave_id, code, force = self.jobs.get()
            with self.lock:
                self.waiting.discard((wave_id, code))
                self.running = (wave_id, code)
            try:
                with self.app.app_context():
                    run_job(wave_id, code, force)
            except Exception:  # e.g. the database is down: the next check queues it again
                self.app.logger.exception("refresh of wave %s (%s) failed", wave_id, code)
            finally:
                with self.lock:
                    self.running = None


def _thread_worker(app: Flask) -> ThreadWorker:
    with _start_lock:
        worker = app.extensions.get("refresh_worker")
        if worker is None:
            worker = app.extensions["refresh_worker"] = ThreadWorker(app)
        return worker


_start_lock = threading.Lock()


def checker_loop(app: Flask, interval: float, stop: threading.Event) -> None:
    """Check for stale waves every ``interval`` seconds until ``stop`` is set."""
    while True:
        try:
            check(app)
        except Exception:  # a database outage must not end the thread; the next round retries
            app.logger.exception("refresh check failed; will retry")
        if stop.wait(interval):
            return


def init_app(app: Flask) -> None:
    """Start this process's refresh check with its first request (unless ``REFRESH_INTERVAL_S`` is 0)."""
    app.add_template_global(data_time_text, "data_time")
    interval = float(app.config.get("REFRESH_INTERVAL_S", 60))
    if interval <= 0:
        return
    stop = threading.Event()
    started = threading.Lock()
    app.extensions["refresh_stop"] = stop

    @app.before_request
    def _start_refresh_check() -> None:
        if "refresh_thread" in app.extensions or not started.acquire(blocking=False):
            return
        thread = threading.Thread(target=checker_loop, args=(app, interval, stop), name="survey-refresh-check", daemon=True)
        app.extensions["refresh_thread"] = thread
        thread.start()


def wait_idle(app: Flask, timeout: float = 30) -> bool:
    """Wait until this process's refresh thread has nothing to do (tests, ``flask worker --burst``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker = app.extensions.get("refresh_worker")
        if worker is None or (worker.idle() and worker.jobs.empty()):
            return True
        time.sleep(0.05)
    return False


"""Stored results that keep themselves fresh: the refresh of a wave's analysis, its lock and its queue.

:func:`refresh` is the one code path that analyses a wave's responses to one questionnaire and
stores a new run (``flask analyze``, the background job and the office's 刷新 button all call
it). Each run's summary keeps

* ``watermark``: the count and the highest id of the wave's responses to that questionnaire
  that the run analysed (the aggregation's stored count and its unsettled tail: nothing counts
  the wave again), so a periodic check sees new responses by comparing two numbers
  (submissions write nothing extra and never wait for a refresh);
* ``data_as_of``: when the run started, before the aggregation read its responses, shown as
  "数据截至" on every office page, export and PDF; a later refresh that finds nothing new moves it
  (and stores nothing else);
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

from flask import Flask, current_app
from sqlalchemy import func, inspect, select
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from analysis.errors import AnalysisError
from survey import db
from survey.appcontext import app_object
from survey.localtime import format_local
from survey.models import AnalysisRun, Answer, Area, Questionnaire, QuestionnaireVersion, Response, Wave, wave_version
from survey.results import MarginsError, run_analysis

RECENTLY_CLOSED = timedelta(days=7)  # paper questionnaires are still keyed in after a wave closes
COMMENTS_PER_COMMUNITY = 200  # the community page lists (and counts terms of) this many newest comments
LATE_COMMIT = timedelta(minutes=10)  # a response's id is taken before it commits: look this far back too
LOCK_NAMESPACE = 0x5EF5  # first key of the PostgreSQL advisory locks taken here
# A job RQ marks started is taken as running for this long before its lock is looked for.
STARTING_GRACE_S = 5


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
    session = inspect(run).session
    if "summary" in run.__dict__ or session is None:
        stamp = (run.summary or {}).get("data_as_of")
    else:  # the summary is not loaded (office pages defer it): read only this member, not the whole JSON
        stamp = session.scalar(
            select(AnalysisRun.summary["data_as_of"].as_string()).where(AnalysisRun.id == run.id))
    return datetime.fromisoformat(stamp) if stamp else run.created_at


def confirm_data_time(session: Session, run: AnalysisRun, started: datetime) -> None:
    """Move the run's data time (数据截至) to ``started``: a refresh found nothing new since the run.

    Only that member of the summary changes (the run's results and the rest of its summary stay, in
    their order: PostgreSQL's jsonb would sort the members, and pages list some in stored order).
    """
    run.summary = run.summary | {"data_as_of": started.isoformat()}
    session.flush()


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

    Without ``force`` nothing is done when the newest run has seen every response. With it, a refresh
    that finds nothing new (no response, no flag changed, the same plan, margins and areas: see
    :func:`survey.results.run_analysis`) stores nothing either: the newest run's data time (数据截至)
    moves to this refresh's start and ``fresh`` is returned with that run. Without
    ``wait`` a refresh that finds another one running returns ``busy`` at once. The statistics are
    updated with the responses since the last refresh (``full``: rebuilt from all). Needs an app
    context; raises the analysis's own errors (AnalysisError, MarginsError).
    """
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
                key = _lock_key(wave_id, questionnaire_code)
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
                               full=full, previous=latest)
            if run is None:  # nothing new since the newest run: it holds, and its data now go up to this refresh
                assert latest is not None  # (run_analysis returns None only given a previous run)
                confirm_data_time(session, latest, started)
                return Outcome("fresh", latest.id)
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
    _call_hooks(app_object(), "stored", run_id)
    return Outcome("done", run_id)


@contextmanager
def _lock(wave_id: int, questionnaire_code: str, wait: bool) -> Iterator[bool]:
    """Hold SQLite's file lock of the wave and questionnaire (PostgreSQL locks in the transaction)."""
    if db.engine().dialect.name == "postgresql":
        yield True
        return
    path = _lock_path(current_app, wave_id, questionnaire_code)
    path.parent.mkdir(exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock_key(wave_id: int, questionnaire_code: str) -> int:
    """The second key of the wave and questionnaire's PostgreSQL advisory lock (the first is LOCK_NAMESPACE)."""
    return zlib.crc32(f"{wave_id}:{questionnaire_code}".encode()) & 0x7FFFFFFF


def _lock_path(app: Flask, wave_id: int, questionnaire_code: str) -> Path:
    """The file SQLite's refresh lock of the wave and questionnaire is taken on."""
    return Path(app.instance_path) / "locks" / f"refresh-{database_tag(app)}-{wave_id}-{questionnaire_code}.lock"


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
    query = base.add_columns(Answer.text.label("text"), newest).where(commented)
    if redo is not None:
        query = query.where(Area.code.in_(redo))
    ranked = query.subquery()
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
        job_queue(app).enqueue_call(JOB_FUNCTION, args=(wave_id, questionnaire_code, force, database_tag(app)),
                                    job_id=job_id,
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
                job = Job.fetch(_job_id(app, wave_id, code), connection=redis_client(app))
                status = job.get_status()
            except NoSuchJobError:
                continue
            if status in (JobStatus.QUEUED, JobStatus.SCHEDULED):
                return True
            if status == JobStatus.STARTED and _alive(app, wave_id, code, job):
                return True
        return False
    worker = app.extensions.get("refresh_worker")
    return worker is not None and worker.has(wave_id)


def _alive(app: Flask, wave_id: int, code: str, job) -> bool:
    """Return whether a job RQ says has started is really running: it holds the refresh's lock.

    A worker killed mid-job leaves its job "started" until RQ notices the missing heartbeat
    (minutes); the lock goes with the process at once (PostgreSQL ends the session's advisory
    lock, the kernel the file lock). A job in its first seconds may not have taken the lock yet.
    """
    started = job.started_at
    if started is not None and (datetime.now(UTC) - started.replace(tzinfo=UTC)).total_seconds() < STARTING_GRACE_S:
        return True
    with app.app_context():
        return lock_held(wave_id, code)


def lock_held(wave_id: int, questionnaire_code: str) -> bool:
    """Return whether some process holds the refresh lock of the wave and questionnaire (needs an app context)."""
    if db.engine().dialect.name == "postgresql":
        with db.engine().connect() as conn:
            return bool(conn.scalar(sql_text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid::bigint = :space "
                "AND objid::bigint = :key AND objsubid = 2 AND database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database()))"), {"space": LOCK_NAMESPACE, "key": _lock_key(wave_id, questionnaire_code)}))
    path = _lock_path(current_app, wave_id, questionnaire_code)
    if not path.exists():
        return False
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shares nothing a refresh needs: it asks LOCK_EX
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def run_job(wave_id: int, questionnaire_code: str = "citizen", force: bool = False) -> dict:
    """The job (in an app context): refresh, then what the ``job`` hooks do (the PDFs of ``REFRESH_PRERENDER``);
    never raises for an analysis that cannot run yet (it is remembered, and retried when new responses come)."""
    app = app_object()
    with app.app_context():
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
            _call_hooks(app, "job", outcome.run_id)
        return {"state": outcome.state, "run_id": outcome.run_id}


HOOK_MOMENTS = ("stored", "job")
# What an RQ worker calls, by name: survey.jobs makes the worker's app (top level, beside create_app).
JOB_FUNCTION = "survey.jobs.refresh_job"


def add_hook(app: Flask, moment: str, hook: Callable[[Flask, int], None]) -> None:
    """Call ``hook(app, run_id)`` after every stored run (``stored``) or after a background job's (``job``).

    Layers above the core register what a new run means for them (survey.reading.documents: drop
    the old runs' cached PDFs, render the new ones ahead) without the refresh importing them.
    """
    if moment not in HOOK_MOMENTS:
        raise ValueError(f"unknown moment {moment!r} (known: {', '.join(HOOK_MOMENTS)})")
    app.extensions.setdefault("refresh_hooks", []).append((moment, hook))


def _call_hooks(app: Flask, moment: str, run_id: int | None) -> None:
    for when, hook in app.extensions.get("refresh_hooks", []):
        if when != moment or run_id is None:
            continue
        try:
            hook(app, run_id)
        except Exception:  # a missing font must not fail the refresh; the request renders (and says why)
            app.logger.exception("%s after run %s failed", getattr(hook, "__name__", hook), run_id)


def warm_up() -> None:
    """Load what a first request or job would otherwise load: jieba's dictionaries."""
    from analysis.text import load_dictionary

    load_dictionary()


def redis_client(app: Flask):
    client = app.extensions.get("refresh_redis")
    if client is None:
        import redis

        client = app.extensions["refresh_redis"] = redis.Redis.from_url(app.config["REDIS_URL"])
    return client


def job_queue(app: Flask):
    from rq import Queue

    return Queue(queue_name(app), connection=redis_client(app))


def queue_name(app: Flask) -> str:
    """Return the RQ queue of this site's refresh jobs: ``REFRESH_QUEUE``, else one of its own database.

    Sites sharing a Redis never share a queue unless told to: the default names the key prefix and
    the database (a worker of another city took every job and ran it on its own data).
    """
    return app.config.get("REFRESH_QUEUE") or f"{app.config.get('RATELIMIT_KEY_PREFIX') or 'survey'}-refresh-{database_tag(app)}"


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
    return f"{queue_name(app)}-{wave_id}-{questionnaire_code}"


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


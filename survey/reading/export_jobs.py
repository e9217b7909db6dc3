"""Large exports as background jobs: a thread pool in the app, files in ``instance/exports``.

A job writes ``instance/exports/<id>.<ext>`` and keeps its state (who asked, progress, done or
failed) in ``<id>.json`` next to it, rewritten atomically; so every worker process of one server
can show the progress and hand out the file, whichever process runs the job. Files are only given
to the user who asked, and are deleted a day later (:meth:`ExportJobs.sweep`, run whenever a job
starts or is looked at).

No table and no broker: with several servers, a job and its file live on one of them. Such a setup
needs a shared queue (RQ on Redis), a table for the jobs' state and shared storage for the files.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from flask import Flask

from survey.private_files import private_file, private_folder, write_private
from survey.reading.exports import Table, write

KEEP_SECONDS = 24 * 3600
JOB_ID = re.compile(r"[A-Za-z0-9_-]{22}")
PROGRESS_EVERY_S = 0.5
_lock = threading.Lock()


@dataclass
class JobState:
    id: str
    user_id: int
    what: str
    fmt: str
    labels: bool
    filename: str
    area_id: int
    wave_id: int | None
    total: int
    done: int = 0
    state: str = "running"  # running, done, failed
    created: float = 0.0
    finished: float | None = None

    @property
    def expired(self) -> bool:
        return time.time() - self.created > KEEP_SECONDS


class ExportJobs:
    """The app's export jobs: ``start`` one, read its ``state``, find its ``file``."""

    def __init__(self, app: Flask, workers: int = 2) -> None:
        self.app = app
        self.folder = Path(app.config.get("EXPORT_FOLDER") or Path(app.instance_path) / "exports")
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="export")
        self.futures: dict[str, Future] = {}

    def start(self, user_id: int, what: str, fmt: str, labels: bool, filename: str, area_id: int, wave_id: int | None,
              total: int, build: Callable[[], tuple[Table, Callable[[], None]]]) -> JobState:
        """Start writing the table that ``build`` returns (in the job's thread, with its own session).

        ``build`` returns the table and a function to call when done (closing the session).
        """
        private_folder(self.folder)
        self.sweep()
        job = JobState(secrets.token_urlsafe(16), user_id, what, fmt, labels, filename, area_id, wave_id, total,
                       created=time.time())
        self._save(job)
        self.futures[job.id] = self.executor.submit(self._run, job, build)
        return job

    def _run(self, job: JobState, build) -> None:
        last = 0.0

        def progress(done: int) -> None:
            nonlocal last
            job.done = done
            if time.monotonic() - last >= PROGRESS_EVERY_S:
                last = time.monotonic()
                self._save(job)

        part = self.folder / f"{job.id}.{job.fmt}.part"
        with self.app.app_context():
            close = None
            try:
                table, close = build()
                job.total = table.total
                write(table, job.fmt, private_file(part), job.labels, progress)
                part.replace(self.folder / f"{job.id}.{job.fmt}")
                job.state = "done"
            except Exception:
                self.app.logger.exception("export job %s failed", job.id)
                job.state = "failed"
                part.unlink(missing_ok=True)
            finally:
                if close is not None:
                    close()
                job.finished = time.time()
                self._save(job)
                self.futures.pop(job.id, None)

    def _save(self, job: JobState) -> None:
        write_private(self.folder / f"{job.id}.json", json.dumps(asdict(job)).encode())

    def state(self, job_id: str, user_id: int) -> JobState | None:
        """Return the job if it exists, belongs to ``user_id`` and has not expired; else None."""
        if not JOB_ID.fullmatch(job_id):
            return None
        self.sweep()
        try:
            job = JobState(**json.loads((self.folder / f"{job_id}.json").read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None
        if job.user_id != user_id or job.expired:
            return None
        return job

    def file(self, job: JobState) -> Path | None:
        path = self.folder / f"{job.id}.{job.fmt}"
        return path if job.state == "done" and path.is_file() else None

    def wait(self, job_id: str, timeout: float | None = None) -> None:
        """Wait until the job has finished (for the command line and tests)."""
        future = self.futures.get(job_id)
        if future is not None:
            future.result(timeout)

    def sweep(self, now: float | None = None) -> int:
        """Delete the files of jobs older than a day, and leftovers of crashed ones; return how many."""
        now = now or time.time()
        removed = 0
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                if now - entry.stat().st_mtime > KEEP_SECONDS and entry.name.split(".")[0] not in self.futures:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


def jobs(app: Flask) -> ExportJobs:
    """Return the app's export jobs, made on first use (``app`` may be ``current_app``)."""
    app = getattr(app, "_get_current_object", lambda: app)()
    with _lock:
        if "export_jobs" not in app.extensions:
            app.extensions["export_jobs"] = ExportJobs(app, workers=int(app.config.get("EXPORT_WORKERS", 2)))
        return app.extensions["export_jobs"]

"""PDFs cached until the next refresh: ``instance/pdf-cache/<db>/run-<id>-<stored>/<kind>-<area>[-<key>].pdf``.

(``<db>``: a short hash of the database URL; ``<stored>``: when the run was stored, so a database
made anew never meets an old run's files.)
A document of a run never changes, so the first request (or the refresh job, for the levels in
``REFRESH_PRERENDER``) renders it and every later one reads the file. A new run is a new folder;
:func:`keep_only_newest` (after every refresh) deletes the folders of runs that are no longer the
newest of their wave. QR sheets do not depend on the results: they are keyed by a hash of what
they print (the links), under the newest run, so a new link shows at once and old sheets go
with the run.
"""
from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select

from reports.pdf import qr_sheet_pdf
from survey import db, refresh
from survey.models import AnalysisRun, Area
from survey.private_files import write_private
from survey.reading import reporting
from survey.reading.dashboard import minor_summary
from survey.reading.wave_changes import previous_run
from survey.refresh import database_tag

CACHE_FOLDER = "pdf-cache"


def cache_root(app: Flask) -> Path:
    return Path(app.instance_path) / CACHE_FOLDER / database_tag(app)


def _folder_name(run: AnalysisRun | None) -> str:
    return "run-none" if run is None else f"run-{run.id}-{int(run.created_at.timestamp())}"


def cached(app: Flask, run: AnalysisRun | None, kind: str, area_code: str, build: Callable[[], bytes],
           key: str = "") -> tuple[bytes, bool]:
    """Return the PDF and whether it came from the cache; ``build`` makes it when it is not there."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{kind}-{area_code}" + (f"-{key}" if key else ""))
    folder = cache_root(app) / _folder_name(run)
    path = folder / f"{safe}.pdf"
    try:
        return path.read_bytes(), True
    except FileNotFoundError:
        pass
    body = build()
    write_private(path, body)  # whole or not at all, also with two requests at once
    return body, False


def content_key(*parts) -> str:
    """Return a short hash of what a document prints (QR sheets)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def newest_runs(session) -> list[AnalysisRun]:
    """Return the newest run of every wave and questionnaire, newest first."""
    ids = select(func.max(AnalysisRun.id)).group_by(AnalysisRun.wave_id, AnalysisRun.questionnaire_code)
    return list(session.scalars(select(AnalysisRun).where(AnalysisRun.id.in_(ids)).order_by(AnalysisRun.id.desc())))


def keep_only_newest(app: Flask) -> int:
    """Delete the cached PDFs of runs that are no longer the newest; return how many folders went."""
    root = cache_root(app)
    if not root.is_dir():
        return 0
    with app.app_context():
        session = db.session()
        keep = {_folder_name(run) for run in newest_runs(session)}
        session.rollback()
    gone = 0
    for folder in root.iterdir():
        if folder.is_dir() and folder.name.startswith("run-") and folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)
            gone += 1
    return gone


def forget_all(app: Flask) -> None:
    """Delete every cached PDF of this database (the areas changed: a report lists its communities)."""
    shutil.rmtree(cache_root(app), ignore_errors=True)


def area_report(app: Flask, session, run: AnalysisRun, area: Area,
                previous: AnalysisRun | None | bool = True) -> tuple[bytes, bool]:
    """Return the area report PDF of the run against ``previous`` (default: the previous wave's newest run).

    The minors' newest run and the compared run are part of the key: a re-analysis of the earlier
    wave, or another ``?compare`` wave, is another file.
    """
    if previous is True:
        previous = previous_run(session, run)
    minors = minor_summary(session, run.wave_id, area)
    key = (f"m{minors.run.id}" if minors is not None else "") + (f"vs{previous.id}" if previous else "")
    compare_wave_id = previous.wave_id if previous else None
    return cached(app, run, "report", area.code, lambda: reporting.area_report(session, run, area, compare_wave_id=compare_wave_id), key)


def qr_sheet(app: Flask, session, area: Area, questionnaire=None) -> tuple[bytes, bool]:
    """Return the area's QR sheet (of one questionnaire, or all), cached by what it prints under the newest run."""
    title = reporting.qr_title(area, questionnaire)
    entries = reporting.qr_entries(session, area, questionnaire=questionnaire)
    newest = next(iter(newest_runs(session)), None)
    name = area.code if questionnaire is None else f"{area.code}-{questionnaire.code}"
    return cached(app, newest, "qr", name, lambda: qr_sheet_pdf(title, entries), content_key(title, entries))


def school_qr_sheet(app: Flask, session, school) -> tuple[bytes, bool]:
    """Return a school's class QR sheet, cached by what it prints under the newest run."""
    title, entries = reporting.school_qr_title(school), reporting.school_qr_entries(session, school)
    newest = next(iter(newest_runs(session)), None)
    return cached(app, newest, "school-qr", str(school.id), lambda: qr_sheet_pdf(title, entries),
                  content_key(title, entries))


def prerender(app: Flask, run_id: int, levels: list[str]) -> int:
    """Render the area reports of the run for every area of ``levels`` (e.g. city, district); return how many."""
    made = 0
    with app.app_context():
        session = db.session()
        run = session.get(AnalysisRun, run_id)
        if run is None or run.questionnaire_code != "citizen":
            return 0
        for area in session.scalars(select(Area).where(Area.level.in_(levels)).order_by(Area.code)):
            _, hit = area_report(app, session, run, area)
            made += not hit
    return made


def _drop_old_documents(app: Flask, _run_id: int) -> None:
    """A new run means new documents: the cached PDFs of older runs go."""
    keep_only_newest(app)


def _render_ahead(app: Flask, run_id: int) -> None:
    """Render the area reports of the levels in ``REFRESH_PRERENDER`` (e.g. city,district) for a job's new run."""
    levels = [level.strip() for level in str(app.config.get("REFRESH_PRERENDER", "")).split(",") if level.strip()]
    if levels:
        prerender(app, run_id, levels)


def init_app(app: Flask) -> None:
    """Hook the cached documents to the refresh: drop old runs' PDFs after each run, render ahead after a job's."""
    refresh.add_hook(app, "stored", _drop_old_documents)
    refresh.add_hook(app, "job", _render_ahead)

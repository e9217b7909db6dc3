"""What an RQ worker process runs (``flask worker``, or RQ's own ``rq worker`` with the environment set).

Top level, beside ``create_app``: a job needs an app, and only the top makes one. The refresh
queues its jobs by this module's function name, so the core never imports upwards.
"""
from __future__ import annotations

from flask import Flask, has_app_context

from survey import create_app, refresh
from survey.appcontext import app_object

_app: Flask | None = None


def worker_app() -> Flask:
    """Return the app RQ jobs run in: the one ``flask worker`` set, else one made from the environment."""
    global _app
    if _app is None:
        _app = create_app()
    return _app


def use_app(app: Flask | None) -> None:
    """Make ``app`` the one RQ jobs of this process run in (``flask worker`` and tests)."""
    global _app
    _app = app


def refresh_job(wave_id: int, questionnaire_code: str = "citizen", force: bool = False,
                database: str | None = None) -> dict:
    """Refresh the wave's stored results in this process's app (see :func:`survey.refresh.run_job`).

    ``database`` is the tag of the database the job was queued for: a worker of another database
    (two sites given one REFRESH_QUEUE on a shared Redis) leaves it alone instead of analysing its own.
    """
    app = app_object() if has_app_context() else worker_app()
    if database is not None and database != refresh.database_tag(app):
        app.logger.error("refresh job of database %s reached a worker of database %s: not run",
                         database, refresh.database_tag(app))
        return {"state": "other database", "run_id": None}
    with app.app_context():
        return refresh.run_job(wave_id, questionnaire_code, force)

"""Housekeeping that must not wait for anyone: closing waves' device data, stale login records.

:func:`run_once` is idempotent and cheap when there is nothing to do. It runs

* in every process that serves requests, on a daemon thread started by the first request and
  run every ``HOUSEKEEPING_INTERVAL_S`` seconds (default 300; ``0`` turns it off, as tests do),
  so the embedded setup needs nothing else;
* from ``flask housekeeping`` (cron or a systemd timer, for setups that prefer one scheduler);
* at the start of every ``flask analyze``.
"""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import delete

from survey import answer_photos, db
from survey.auth import KNOWN_ADDRESS_DAYS, SESSION_IDLE, THROTTLE_WINDOW
from survey.models import KnownAddress, LoginFailure, StaffSession
from survey.quality import purge_device_data


def run_once(now: datetime | None = None) -> dict[str, int]:
    """Clear device data of closed waves, drop expired sessions and login records and the photos of
    submissions never finished; return counts."""
    now = now or datetime.now(UTC)
    photos_dropped = answer_photos.forget_pending(current_app.instance_path, now.timestamp())
    with db.write_transaction() as session:
        return {
            "pending_photos_dropped": photos_dropped,
            "responses_cleared": purge_device_data(session, now),
            "sessions_ended": db.rows_changed(session.execute(
                delete(StaffSession).where(StaffSession.last_seen_at < now - SESSION_IDLE))),
            "login_failures_dropped": db.rows_changed(session.execute(
                delete(LoginFailure).where(LoginFailure.last_at < now - THROTTLE_WINDOW))),
            "known_addresses_dropped": db.rows_changed(session.execute(
                delete(KnownAddress).where(KnownAddress.last_login_at < now - timedelta(days=KNOWN_ADDRESS_DAYS)))),
        }


def init_app(app: Flask) -> None:
    """Start this process's housekeeping thread with its first request (unless the interval is 0).

    Not at import: CLI commands such as ``init-db`` make an app too and must not race it.
    """
    interval = float(app.config.get("HOUSEKEEPING_INTERVAL_S", 300))
    if interval <= 0:
        return
    stop = threading.Event()
    started = threading.Lock()
    app.extensions["housekeeping_stop"] = stop

    def loop() -> None:
        while True:
            try:
                with app.app_context():
                    run_once()
            except Exception:  # a database outage must not end the thread; the next round retries
                app.logger.exception("housekeeping failed; will retry")
            if stop.wait(interval):
                return

    @app.before_request
    def _start_housekeeping() -> None:
        if "housekeeping_thread" in app.extensions or not started.acquire(blocking=False):
            return
        thread = threading.Thread(target=loop, name="survey-housekeeping", daemon=True)
        app.extensions["housekeeping_thread"] = thread
        thread.start()

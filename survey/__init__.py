"""The survey server: Flask app factory.

    flask --app survey init-db
    flask --app survey seed-demo
    flask --app survey run
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask, Response, redirect, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_compress import Compress
from werkzeug.middleware.proxy_fix import ProxyFix

from survey.ids import IdConverter

# Responses are compressed by the app itself (zstd, brotli or gzip, as the browser accepts), so an
# office page stays light on a phone even without a reverse proxy. Flask-Compress only touches the
# text types of COMPRESS_MIMETYPES (HTML, CSS, JS, JSON, SVG...): PDFs, XLSX and CSV downloads pass as they are.
compress = Compress()


class SurveyFlask(Flask):
    """Flask, with the check whether a view or hook is ``async`` made once per function.

    Flask asks it of every hook and view on every request (``inspect`` unwrapping each time); the
    answer never changes for a function. Functions made per request are not remembered.
    """

    _SYNC_REMEMBERED = 1000

    def ensure_sync(self, func):
        known = self.__dict__.setdefault("_sync_functions", {})
        try:
            return known[func]
        except KeyError:
            synced = super().ensure_sync(func)
            if len(known) < self._SYNC_REMEMBERED:
                known[func] = synced
            return synced
        except TypeError:  # not hashable
            return super().ensure_sync(func)


def create_app(test_config: dict | None = None) -> Flask:
    """Create and configure the app; ``test_config`` overrides everything else."""
    app = SurveyFlask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        DATABASE_URL=os.environ.get("DATABASE_URL"),
        PUBLIC_BASE_URL=os.environ.get("PUBLIC_BASE_URL", ""),
        WTF_CSRF_TIME_LIMIT=24 * 3600,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=os.environ.get("SESSION_COOKIE_SECURE", "0") == "1",
        MAX_CONTENT_LENGTH=256 * 1024,
        MAX_FORM_MEMORY_SIZE=64 * 1024,
        PERMANENT_SESSION_LIFETIME=8 * 3600,
        TIMEZONE=os.environ.get("TIMEZONE", "Asia/Shanghai"),
        TRUSTED_PROXIES=os.environ.get("TRUSTED_PROXIES", "0"),
        RATELIMIT_STORAGE_URI=os.environ.get("RATELIMIT_STORAGE_URI"),
        REDIS_URL=os.environ.get("REDIS_URL"),
        RATELIMIT_KEY_PREFIX=os.environ.get("RATELIMIT_KEY_PREFIX") or "survey",
        RATELIMIT_ENABLED=os.environ.get("RATELIMIT_ENABLED", "1") != "0",
        HOUSEKEEPING_INTERVAL_S=float(os.environ.get("HOUSEKEEPING_INTERVAL_S", "300")),
        # Exports of up to this many rows are written in the request; larger ones run as a
        # background job with a progress page (20,000 responses take about a second as CSV).
        EXPORT_DIRECT_ROWS=int(os.environ.get("EXPORT_DIRECT_ROWS", "20000")),
        EXPORT_WORKERS=int(os.environ.get("EXPORT_WORKERS", "2")),
        # Stored results refresh themselves (survey/refresh.py): every REFRESH_INTERVAL_S seconds each
        # process looks for new responses (0: never, as in tests) and refreshes a wave whose newest run
        # is at least REFRESH_MIN_AGE_S old; RQ jobs on REDIS_URL when set, else a thread per process.
        REFRESH_INTERVAL_S=float(os.environ.get("REFRESH_INTERVAL_S", "60")),
        REFRESH_MIN_AGE_S=float(os.environ.get("REFRESH_MIN_AGE_S", "180")),
        REFRESH_LOCK_TIMEOUT_S=int(os.environ.get("REFRESH_LOCK_TIMEOUT_S", "600")),
        REFRESH_QUEUE=os.environ.get("REFRESH_QUEUE"),  # default: one per database (refresh.queue_name)
        REFRESH_PRERENDER=os.environ.get("REFRESH_PRERENDER", "city,district"),
        # WARM_UP=1: create_app() prepares the process for its first request (survey/warmup.py);
        # gunicorn does it in post_worker_init (deploy/gunicorn.conf.py) whatever this says.
        WARM_UP=os.environ.get("WARM_UP", "0") == "1",
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)
        # An app made for a test or a benchmark refreshes stored results only when asked: a check
        # thread left running would analyse whatever database that app was pointed at.
        app.config["REFRESH_INTERVAL_S"] = float(test_config.get("REFRESH_INTERVAL_S", 0))
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config["SECRET_KEY"] = app.config.get("SECRET_KEY") or os.environ.get("SECRET_KEY") or _instance_secret(app)
    app.session_interface = _SessionInterface()

    from survey import (
        cli,
        db,
        errors,
        housekeeping,
        limits,
        localtime,
        refresh,
        security,
    )
    from survey.entry import views as entry
    from survey.office import views as office
    from survey.office.questionnaire_views import bp as questionnaires_bp
    from survey.public import views as public
    from survey.reading import documents
    from survey.rectification.views import bp as rectification_bp
    from survey.school import views as school_board

    app.url_map.converters["int"] = IdConverter  # before any route is added: every <int:id> is a database id
    localtime.init_app(app)
    _trust_proxies(app)
    db.init_app(app)
    housekeeping.init_app(app)
    refresh.init_app(app)
    documents.init_app(app)  # the refresh's hooks: cached PDFs dropped and rendered ahead
    security.init_app(app)
    compress.init_app(app)
    app.after_request(_close_wrapped_stream)  # runs before Flask-Compress's hook (registered later, runs first)
    limits.init_app(app)
    errors.init_app(app)
    app.register_blueprint(public.bp)
    app.register_blueprint(office.bp)
    app.register_blueprint(school_board.bp)
    app.register_blueprint(entry.bp)
    app.register_blueprint(questionnaires_bp)
    app.register_blueprint(rectification_bp)
    cli.init_app(app)
    app.add_url_rule("/", "index", lambda: redirect(url_for("office.login")))
    # Browsers ask for /favicon.ico on every site whatever the page says: answer instead of a 404 each time.
    app.add_url_rule("/favicon.ico", "favicon",
                     lambda: app.send_static_file("favicon.ico"))
    if app.config.get("WARM_UP"):
        from survey.warmup import freeze_heap, warm_up

        warm_up(app)
        freeze_heap()
    return app


def _close_wrapped_stream(response: Response) -> Response:
    """Close a streamed body (a static file) once sent, also when Flask-Compress replaces it with its generator.

    Flask-Compress compresses a streamed response by iterating the original body inside a new
    generator, and closing the response then closes only that generator: the file would stay open
    until the garbage collector finds it (a ResourceWarning). Closing a file twice is harmless.
    """
    body = response.response
    if response.is_streamed and hasattr(body, "close"):
        response.call_on_close(body.close)
    return response


def _trust_proxies(app: Flask) -> None:
    """Take the client address and scheme from the last ``TRUSTED_PROXIES`` hops of X-Forwarded-For/-Proto.

    With 0 (the default) those headers are ignored, so a client cannot claim another address. The
    host is never taken from X-Forwarded-Host: links use PUBLIC_BASE_URL or the Host header.
    """
    raw = app.config["TRUSTED_PROXIES"]
    try:
        hops = int(raw)
    except (TypeError, ValueError):
        hops = -1
    if hops < 0:
        raise ValueError(f"TRUSTED_PROXIES {raw!r} is not a number of proxy hops (0, 1, 2, ...)")
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # Flask's documented way to wrap its WSGI app
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_port=0, x_prefix=0)


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer made once per app, not per request,
    and nothing worked out at the end of a request that never touched its (empty) session: every
    resident's request."""

    def save_session(self, app: Flask, session, response: Response) -> None:
        if not session and not session.modified and not session.accessed:
            return  # what Flask's own would end up doing, after reading seven settings
        super().save_session(app, session, response)

    def get_signing_serializer(self, app: Flask):
        serializer = app.extensions.get("session_serializer")
        if serializer is None:
            serializer = super().get_signing_serializer(app)
            if serializer is not None:
                app.extensions["session_serializer"] = serializer
        return serializer


def _instance_secret(app: Flask) -> str:
    """Return the secret key kept in the instance folder, making it once (never in the repo)."""
    path = Path(app.instance_path) / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()

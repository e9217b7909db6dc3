"""gunicorn settings for one app server: ``gunicorn -c deploy/gunicorn.conf.py 'survey:create_app()'``.

Every value can be overridden from the environment (survey.env): GUNICORN_BIND, GUNICORN_WORKERS,
GUNICORN_THREADS, GUNICORN_TIMEOUT. Threads (gthread) suit the app: a request mostly waits for
the database, and each worker process keeps its own caches and housekeeping thread.
"""
from __future__ import annotations

import multiprocessing
import os

# Where nginx reaches this server: 127.0.0.1 when nginx runs on the same machine; the private
# address (e.g. 10.0.0.12:8000, firewalled to the nginx host) on a server of its own.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# One process per core, 8 threads each: on a 2-core machine 2 x 8 requests at once.
workers = int(os.environ.get("GUNICORN_WORKERS") or max(2, multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 8)

# A request that takes longer than this (the district PDF is the slowest page) gets its worker
# restarted; nginx's proxy_read_timeout is the same. Workers get graceful_timeout to finish
# requests in flight on a restart or a stop (systemctl reload/stop).
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 60)
graceful_timeout = 30
# Keep-alive towards nginx: short, and nginx opens a connection per request (no upstream keepalive).
keepalive = 2

# Recycle workers now and then so that a slow leak never grows; the jitter keeps them from
# restarting all at once.
max_requests = 20000
max_requests_jitter = 2000

# No preload: every worker builds its own app (its own database pool and housekeeping thread).
preload_app = False

# Logs to stdout/stderr: the journal under systemd (journalctl -u survey).
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
# %(h)s is nginx's address here; the resident's address is in the app (TRUSTED_PROXIES) only,
# and the app never stores it.

proc_name = "survey"


def post_worker_init(worker) -> None:
    """Warm the new worker up before it takes a request: mappers, templates, a connection, per-run data."""
    from survey.warmup import freeze_heap, warm_up

    app = worker.wsgi
    if hasattr(app, "jinja_env"):
        timings = warm_up(app, notify=worker.notify)
        freeze_heap()
        worker.log.info("warmed up in %.1f s (%s)", sum(timings.values()),
                        ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items()))

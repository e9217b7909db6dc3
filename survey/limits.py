"""Rate limits, counted in Redis whenever there is one, so every worker shares one count.

Staff pages use Flask-Limiter. The public form, the hot path of every answer, is counted by
:func:`public_limits` with ``limits`` (the library Flask-Limiter itself counts with) directly: the
same storage, strategy and key prefix, one storage call per limit, without Flask-Limiter's
per-request resolution of which limits apply, which cost more CPU than the answer's own work
(measured: 0.9 ms per GET + POST, against 0.85 ms for everything else the app does).

Storage, in order: ``RATELIMIT_STORAGE_URI`` when set; else ``REDIS_URL`` when set; else Redis on
127.0.0.1:6379 when it answers a ping at start (not in TESTING unless ``RATELIMIT_PROBE_URL`` asks);
else memory, with a warning: then each worker process counts on its own, and two gunicorn workers
let through twice the limit.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable

from flask import Flask, abort, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import STRATEGIES, RateLimiter

from survey.appcontext import app_object

limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)

# Staff login, per address: a person mistyping gets several tries; a password-guessing script does not.
# The hour's count is loose because a whole office logs in from behind one NAT address; guessing one
# account's password is held by survey/auth.py's failure throttling per name (and per name x address).
LOGIN_LIMIT = "10 per minute; 300 per hour"
# Public questionnaire, per IP address. Loose enough for a school computer room or a company
# network behind one address (a class of 50 submitting within the same minute, twice over),
# tight enough that one script cannot pour in thousands of answers.
PUBLIC_GET_LIMIT = "300 per minute"
PUBLIC_POST_LIMIT = "120 per minute; 2000 per hour"

LOCAL_REDIS = "redis://127.0.0.1:6379"
PROBE_TIMEOUT_S = 0.2
RETRY_STORAGE_S = 30  # after a storage failure, count in memory this long before trying it again

log = logging.getLogger(__name__)


class PublicCounter:
    """Counts the public form's hits per address in the app's rate-limit storage (memory while it fails)."""

    def __init__(self, app: Flask) -> None:
        config = app.config
        strategy = STRATEGIES[config.get("RATELIMIT_STRATEGY", "moving-window")]
        self.prefix = config.get("RATELIMIT_KEY_PREFIX") or "survey"
        self.primary: RateLimiter = strategy(storage_from_string(config["RATELIMIT_STORAGE_URI"]))
        self.fallback: RateLimiter = strategy(MemoryStorage())
        self.failed_at: float | None = None
        self.lock = threading.Lock()

    def hit(self, items: list[RateLimitItem], *identifiers: str) -> bool:
        """Count one hit against each limit in turn; return False at the first one used up.

        The limits after a refusing one are not counted (as Flask-Limiter's fail_on_first_breach):
        a burst refused by the minute's limit must not use up the hour's and lock an address out
        for an hour.
        """
        counter = self.primary
        if self.failed_at is not None and time.monotonic() - self.failed_at < RETRY_STORAGE_S:
            counter = self.fallback
        try:
            allowed = all(counter.hit(item, self.prefix, *identifiers) for item in items)
        except Exception:  # Redis went away: count in this process's memory rather than fail every answer
            if counter is self.fallback:
                raise
            with self.lock:
                if self.failed_at is None or time.monotonic() - self.failed_at >= RETRY_STORAGE_S:
                    log.warning("Rate-limit storage unreachable: counting the public form in memory for %s s", RETRY_STORAGE_S)
                self.failed_at = time.monotonic()
            return all(self.fallback.hit(item, self.prefix, *identifiers) for item in items)
        if counter is self.primary and self.failed_at is not None:
            self.failed_at = None
        return allowed


def _counter(app: Flask) -> PublicCounter:
    counter = app.extensions.get("public_limits")
    if counter is None:
        counter = app.extensions.setdefault("public_limits", PublicCounter(app))
    return counter


def public_limits(get_limit: str, post_limit: str) -> Callable:
    """Limit a public view's GETs and POSTs per address (a 429 once a limit is used up).

    Flask-Limiter leaves the view alone (its request filter below); with RATELIMIT_ENABLED off
    nothing is counted.
    """
    items = {"GET": parse_many(get_limit), "POST": parse_many(post_limit)}

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def dispatch(*args, **kwargs):
            app = app_object()
            chosen = items.get(request.method)
            if app.config["RATELIMIT_ENABLED"] and chosen:
                if not _counter(app).hit(chosen, "public", request.endpoint or "", request.method,
                                         get_remote_address() or "unknown"):
                    abort(429)
            return view(*args, **kwargs)

        dispatch.counted_by_public_limits = True  # type: ignore[attr-defined]  # mypy knows no attributes set on a function
        return dispatch

    return decorate


@limiter.request_filter
def _counted_by_public_limits() -> bool:
    return getattr(current_app.view_functions.get(request.endpoint or ""), "counted_by_public_limits", False)


def _skip_middleware_on_public_views(app: Flask) -> None:
    """Keep Flask-Limiter's per-request check (limits of the app and blueprints) off the views counted above.

    Its request filter (above) would say so too, but only after it has worked out the request's
    limits, which cost a tenth of a public GET; the app sets no limits of that kind anyway.
    """
    hooks = app.before_request_funcs.get(None, [])
    for index, hook in enumerate(hooks):
        if getattr(hook, "__self__", None) is limiter and getattr(hook, "__name__", "") == "_check_request_limit":
            def check(hook=hook):
                return None if _counted_by_public_limits() else hook()

            hooks[index] = check


def init_app(app: Flask) -> None:
    app.config["RATELIMIT_STORAGE_URI"] = storage_uri(app)
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "survey")
    # Should Redis go away, each worker keeps counting in memory instead of failing every request.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    limiter.init_app(app)
    _skip_middleware_on_public_views(app)


def storage_uri(app: Flask) -> str:
    """Return where the app's rate-limit counters live (see the module docstring for the order)."""
    config = app.config
    chosen = config.get("RATELIMIT_STORAGE_URI") or config.get("REDIS_URL")
    if chosen:
        return chosen
    probe = config.get("RATELIMIT_PROBE_URL", None if app.testing else LOCAL_REDIS)
    if probe and redis_answers(probe):
        app.logger.info("Rate limits are counted in Redis at %s", probe)
        return probe
    if not app.testing or probe:
        app.logger.warning(
            "No Redis for rate limits (set REDIS_URL or RATELIMIT_STORAGE_URI): counting in memory, "
            "so each worker process counts on its own and N workers allow N times each limit"
        )
    return "memory://"


def redis_answers(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Return whether the Redis server at ``url`` answers a ping within ``timeout`` seconds."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()

"""Rate limits (Flask-Limiter), counted in Redis whenever there is one, so every worker shares one count.

Storage, in order: ``RATELIMIT_STORAGE_URI`` when set; else ``REDIS_URL`` when set; else Redis on
127.0.0.1:6379 when it answers a ping at start (not in TESTING unless ``RATELIMIT_PROBE_URL`` asks);
else memory, with a warning: then each worker process counts on its own, and two gunicorn workers
let through twice the limit.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)

# Staff login: a person mistyping gets several tries; a password-guessing script does not.
LOGIN_LIMIT = "10 per minute; 60 per hour"
# Public questionnaire, per IP address. Loose enough for a school computer room or a company
# network behind one address (a class of 50 submitting within the same minute, twice over),
# tight enough that one script cannot pour in thousands of answers.
PUBLIC_GET_LIMIT = "300 per minute"
PUBLIC_POST_LIMIT = "120 per minute; 2000 per hour"

LOCAL_REDIS = "redis://127.0.0.1:6379"
PROBE_TIMEOUT_S = 0.2


def public_limits(get_limit: str, post_limit: str) -> Callable:
    """Limit a public view's GETs and POSTs per address; with RATELIMIT_ENABLED off, call it directly.

    Flask-Limiter's decorators look up and evaluate the limits on every call even when the
    limiter is disabled, which cost a tenth of the CPU of a resident's answer for nothing.
    """
    def decorate(view: Callable) -> Callable:
        checked = limiter.limit(get_limit, methods=["GET"])(limiter.limit(post_limit, methods=["POST"])(view))

        @functools.wraps(view)
        def dispatch(*args, **kwargs):
            if current_app.config["RATELIMIT_ENABLED"]:
                return checked(*args, **kwargs)
            return view(*args, **kwargs)

        return dispatch

    return decorate


def init_app(app: Flask) -> None:
    app.config["RATELIMIT_STORAGE_URI"] = storage_uri(app)
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "survey")
    # Should Redis go away, each worker keeps counting in memory instead of failing every request.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    limiter.init_app(app)


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

"""Rate limits (Flask-Limiter): Redis storage when RATELIMIT_STORAGE_URI is set, memory otherwise."""
from __future__ import annotations

from flask import Flask
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


def init_app(app: Flask) -> None:
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    limiter.init_app(app)

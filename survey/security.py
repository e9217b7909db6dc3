"""CSRF protection, security headers, and refusing control characters in what people send."""
from __future__ import annotations

import re

from flask import Flask, Response, abort, request
from flask_wtf.csrf import CSRFProtect

from forms.common import has_control_characters

csrf = CSRFProtect()

CSP = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "style-src 'self' 'unsafe-inline'",  # heatmap cell colours are style attributes
        "script-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)

SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)

# Views that check every field themselves and show the form again with a message per field.
CHECKS_OWN_FIELDS = {"public.questionnaire", "entry.page"}
STAFF_BLUEPRINTS = {"office", "entry", "school"}


UPLOAD_FIELD_MEMORY = 1024 * 1024


def allow_upload(limit: int) -> None:
    """Let this request's body be up to ``limit`` bytes, files included (call before the body is read).

    Werkzeug's multipart parser holds what it has read but not yet split into parts, and refuses
    more than ``max_form_memory_size`` of it even inside a file part: a served app reads the body
    from the socket in network-sized pieces, and with the app's 64 KiB form limit every phone photo
    got 413 (the test client, which hands over the whole body at once, never met it). That buffer and
    any one text field may take UPLOAD_FIELD_MEMORY, not the whole upload: a 30 MB text field is
    still refused before it is held in memory.
    """
    request.max_content_length = limit
    request.max_form_memory_size = UPLOAD_FIELD_MEMORY


def refuse_control_characters() -> None:
    """Answer 404 for a control character in the path and 400 for one in any other value.

    No keyboard types them, and PostgreSQL cannot store NUL, so they never reach the database.
    """
    if any(isinstance(v, str) and has_control_characters(v) for v in (request.view_args or {}).values()):
        abort(404)
    if request.endpoint in CHECKS_OWN_FIELDS:
        return
    sources = [request.args] + ([request.form] if request.method == "POST" else [])
    for source in sources:
        for key, values in source.lists():
            if has_control_characters(key) or any(has_control_characters(v) for v in values):
                abort(400)


HOST = re.compile(r"(?:[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?\Z")


def refuse_malformed_requests() -> None:
    """Answer 400 for what no browser sends and the libraries below would fail on with a 500.

    A Host that is not a host name (a label over 63 characters fails IDNA encoding wherever a URL
    is built), and a multipart part without a name (Flask-WTF's CSRF check reads every key as text).
    """
    if len(request.host) > 260 or not HOST.match(request.host):
        abort(400)
    if request.method == "POST" and request.mimetype == "multipart/form-data" and (
            None in request.form or None in request.files):
        abort(400)


def init_app(app: Flask) -> None:
    app.before_request(refuse_malformed_requests)  # before the CSRF check, which fails on a nameless part
    csrf.init_app(app)
    app.before_request(refuse_control_characters)

    @app.after_request
    def _headers(response: Response) -> Response:
        if request.blueprint in STAFF_BLUEPRINTS and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "private, no-store"  # area data stays off shared caches
        # One pass over the headers, not a search per header: this runs on every resident's request.
        present = {name.lower() for name, _ in response.headers}
        for name, value in SECURITY_HEADERS:
            if name.lower() not in present:
                response.headers.add(name, value)
        return response

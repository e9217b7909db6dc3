"""The application object behind ``flask.current_app``, typed as what it is."""
from __future__ import annotations

from typing import cast

from flask import Flask, current_app
from werkzeug.local import LocalProxy


def app_object() -> Flask:
    """Return the app of the current app context itself, not the ``current_app`` proxy to it.

    What outlives the request or is keyed by the app (threads, per-app caches and keys,
    ``with app.app_context()``) needs the object. Flask declares ``current_app`` as a ``Flask``;
    it is a ``LocalProxy[Flask]``, whose ``_get_current_object()`` is the documented way to it.
    """
    return cast("LocalProxy[Flask]", current_app)._get_current_object()

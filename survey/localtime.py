"""Local time: times are stored in UTC and read, shown and typed in the city's zone (``TIMEZONE``).

Every function takes an optional ``tz``; without it they use the zone of the current app, and
outside an app the ``TIMEZONE`` environment variable or Asia/Shanghai.
"""
from __future__ import annotations

import difflib
import os
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import Flask, current_app, has_app_context

DEFAULT_ZONE = "Asia/Shanghai"
DEFAULT_FORMAT = "%Y-%m-%d %H:%M"

YEARS = (2000, 2099)  # the years a typed date may name


def load_zone(name: str) -> ZoneInfo:
    """Return the time zone called ``name``; raise ValueError with a clear message for an unknown one.

    >>> load_zone("Asia/Shanghai").key
    'Asia/Shanghai'
    >>> load_zone("Asia/Shangai")
    Traceback (most recent call last):
    ...
    ValueError: TIMEZONE 'Asia/Shangai' is not a known time zone name (did you mean Asia/Shanghai?)
    """
    try:
        if not name or name != name.strip() or name.startswith(("/", ".")) or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name or "", sorted(available_timezones()), n=1)
        hint = f"did you mean {close[0]}?" if close else "use a name like Asia/Shanghai or UTC"
        raise ValueError(f"TIMEZONE {name!r} is not a known time zone name ({hint})") from None


def zone() -> tzinfo:
    """Return the zone of the current app (its ``TIMEZONE`` setting)."""
    if has_app_context() and "timezone" in current_app.extensions:
        return current_app.extensions["timezone"]
    return load_zone(os.environ.get("TIMEZONE") or DEFAULT_ZONE)


def zone_name(tz: tzinfo | None = None) -> str:
    """Return the name of the zone, e.g. Asia/Shanghai."""
    tz = tz or zone()
    return getattr(tz, "key", None) or str(tz)


def to_local(moment: datetime, tz: tzinfo | None = None) -> datetime:
    """Return the aware ``moment`` in local time; a naive datetime is an error, not a guess.

    >>> to_local(datetime(2026, 11, 26, 12, 38, tzinfo=UTC), ZoneInfo("Asia/Shanghai")).isoformat()
    '2026-11-26T20:38:00+08:00'
    """
    if moment.tzinfo is None:
        raise ValueError("naive datetime: times are kept aware, in UTC")
    return moment.astimezone(tz or zone())


def format_local(moment: datetime | None, fmt: str = DEFAULT_FORMAT, tz: tzinfo | None = None) -> str:
    """Return ``moment`` as local time text (``""`` for None).

    >>> format_local(datetime(2026, 11, 26, 12, 38, tzinfo=UTC), tz=ZoneInfo("Asia/Shanghai"))
    '2026-11-26 20:38'
    """
    return "" if moment is None else to_local(moment, tz).strftime(fmt)


def parse_local(text: str, tz: tzinfo | None = None) -> datetime:
    """Return what a user typed as an aware UTC datetime.

    A date means midnight local time, a date and time without an offset means local time, and an
    explicit offset (``+08:00``, ``Z``) is honoured.

    >>> shanghai = ZoneInfo("Asia/Shanghai")
    >>> parse_local("2026-10-01", shanghai).isoformat()
    '2026-09-30T16:00:00+00:00'
    >>> parse_local("2026-10-01T08:00", shanghai).isoformat()
    '2026-10-01T00:00:00+00:00'
    >>> parse_local("2026-10-01T08:00Z", shanghai).isoformat()
    '2026-10-01T08:00:00+00:00'
    >>> parse_local("9999-12-31", shanghai)
    Traceback (most recent call last):
    ...
    ValueError: '9999-12-31' is outside the years 2000 to 2099
    """
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date like 2026-10-01 or a time like 2026-10-01T08:00") from None
    # A survey's dates lie in these years; outside them, a time-zone shift could leave datetime's range
    # (9999-12-31 in Shanghai is past its end in UTC) and every page showing that date would fail.
    if not YEARS[0] <= parsed.year <= YEARS[1]:
        raise ValueError(f"{text.strip()!r} is outside the years {YEARS[0]} to {YEARS[1]}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz or zone())
    return parsed.astimezone(UTC)


def now_local(tz: tzinfo | None = None) -> datetime:
    """Return the current time in local time."""
    return datetime.now(UTC).astimezone(tz or zone())


def init_app(app: Flask) -> None:
    """Check ``TIMEZONE`` and register the ``localtime`` template filter."""
    app.extensions["timezone"] = load_zone(app.config["TIMEZONE"])

    @app.template_filter("localtime")
    def _localtime(moment: datetime | None, fmt: str = DEFAULT_FORMAT) -> str:
        return format_local(moment, fmt, app.extensions["timezone"])

"""Ids in paths and query strings: whole numbers a database key can hold, or not found.

Every table's id is a 32-bit integer on PostgreSQL, which refuses a larger parameter with an
error (a 500 for ``/rectification/tasks/2147483648``). The app's ``int`` URL converter matches only
1..2**31-1, so a larger id is a 404 like any other unknown one, and :func:`query_id` reads a
``?unit=``-style argument the same way (anything else is as if it were not given).
"""
from __future__ import annotations

from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """``<int:name>`` for ids: 1 to MAX_ID, digits only (no sign, no leading zeros beyond Werkzeug's rule)."""

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def query_id(text: str) -> int:
    """Return ``text`` as an id, for ``request.args.get(name, type=query_id)``; ValueError when it cannot be one.

    >>> from werkzeug.datastructures import MultiDict
    >>> args = MultiDict([("a", "17"), ("b", "2147483648"), ("c", "-3"), ("d", "１２"), ("e", "0")])
    >>> [args.get(name, type=query_id) for name in "abcde"]
    [17, None, None, None, None]
    """
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise ValueError(f"not an id: {text[:20]!r}")
    number = int(text)
    if not 1 <= number <= MAX_ID:
        raise ValueError(f"not an id: {number}")
    return number

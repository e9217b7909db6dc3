"""Small in-process caches with expiry, kept per app in ``app.extensions`` (never keyed by id(app))."""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from threading import Lock
from typing import Any

from flask import Flask

from survey.appcontext import app_object


class TimedCache:
    """A thread-safe mapping whose entries expire after ``seconds`` and that holds at most ``size``.

    >>> cache = TimedCache(seconds=60, size=2)
    >>> cache.put("a", 1); cache.put("b", 2); cache.put("c", 3)
    >>> cache.get("a"), cache.get("c")
    (None, 3)
    """

    def __init__(self, seconds: float, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.size, self.clock = seconds, size, clock
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] < self.clock():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: Hashable, value: Any) -> None:
        if self.seconds <= 0:
            return
        with self._lock:
            self._entries[key] = (self.clock() + self.seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def pop(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)


def app_cache(name: str, seconds_setting: str, default_seconds: float, size: int, app: Flask | None = None) -> TimedCache:
    """Return the app's cache called ``name``, made on first use with its expiry from the config."""
    app = app or app_object()
    caches = app.extensions.setdefault("timed_caches", {})
    cache = caches.get(name)
    if cache is None:
        cache = caches.setdefault(name, TimedCache(float(app.config.get(seconds_setting, default_seconds)), size))
    return cache

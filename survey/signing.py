"""Signed values for the public form: the one-time submission key and the device cookie.

Both are made and checked on every resident's GET and POST, so they are signed with one HMAC-SHA256
call on a key derived once per app and purpose (``hmac.digest`` in C), the tag cut to 128 bits and
base64url-encoded. ``itsdangerous`` serializers (JSON, base64 and a derived key per call) cost
about eight times as much and were an eighth of the app's CPU per answer.

A signed value is ``v2.<payload>.<tag>``; payloads are dot-separated plain fields (no JSON).
Values signed by the earlier itsdangerous format (no ``v2.`` prefix) are still accepted by
:func:`survey.submissions.read_key` and :func:`survey.quality.device_id`, so keys on pages rendered
before an upgrade and the devices' cookies keep working.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading

from flask import Flask

from survey.appcontext import app_object

PREFIX = "v2."
_TAG_BYTES = 16


def _key(app: Flask, purpose: str) -> tuple:
    """Return the purpose's HMAC-SHA256 key as its two hash states after the padded key (made once)."""
    keys = app.extensions.setdefault("signing_keys", {})
    key = keys.get(purpose)
    if key is None:
        secret = app.config["SECRET_KEY"]
        secret = secret.encode() if isinstance(secret, str) else secret
        derived = hmac.digest(secret, b"survey-signing:" + purpose.encode(), hashlib.sha256).ljust(64, b"\0")
        # HMAC(k, m) = H((k ^ opad) || H((k ^ ipad) || m)): the states after the first block are
        # the same for every message, so each tag copies them instead of starting over.
        key = keys[purpose] = (hashlib.sha256(bytes(b ^ 0x36 for b in derived)),
                               hashlib.sha256(bytes(b ^ 0x5C for b in derived)))
    return key


def _tag(key: tuple, payload: str) -> str:
    inner, outer = key[0].copy(), key[1].copy()
    inner.update(payload.encode())
    outer.update(inner.digest())
    return base64.urlsafe_b64encode(outer.digest()[:_TAG_BYTES]).rstrip(b"=").decode()


def sign(purpose: str, payload: str, app: Flask | None = None) -> str:
    """Return ``payload`` signed for ``purpose`` (a different purpose's key never verifies it)."""
    return f"{PREFIX}{payload}.{_tag(_key(app or app_object(), purpose), payload)}"


def unsign(purpose: str, signed: str, app: Flask | None = None) -> str | None:
    """Return the payload of a value :func:`sign` made for ``purpose``; None if it is not one."""
    if not signed.startswith(PREFIX):
        return None
    payload, dot, tag = signed[len(PREFIX):].rpartition(".")
    if not dot or not tag.isascii():
        return None
    expected = _tag(_key(app or app_object(), purpose), payload)
    return payload if hmac.compare_digest(expected, tag) else None


class _RandomBytes:
    """``os.urandom`` bytes, fetched 4 KiB at a time and handed out in pieces never given twice.

    The public form makes two random values per GET (the one-time key, a new device's id).
    ``os.urandom`` is a system call during which Python lets another thread run; with a worker's
    threads busy, each such call costs two thread switches (about ten per GET and POST were
    measured). The bytes are the kernel's either way; a child process after a fork starts with
    none, so no two processes hand out the same ones.
    """

    _SIZE = 4096

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._buffer, self._at = b"", 0
        self._lock = threading.Lock()  # a lock held by another thread at the fork stays held in the child

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._at + n > len(self._buffer):
                self._buffer, self._at = os.urandom(max(self._SIZE, n)), 0
            piece = self._buffer[self._at:self._at + n]
            self._at += n
        return piece


_random = _RandomBytes()


def random_hex(n: int) -> str:
    """Return ``n`` random bytes as hex (as ``secrets.token_hex``)."""
    return _random.take(n).hex()


def random_urlsafe(n: int) -> str:
    """Return ``n`` random bytes as unpadded base64url (as ``secrets.token_urlsafe``)."""
    return base64.urlsafe_b64encode(_random.take(n)).rstrip(b"=").decode()

"""Signed submission keys and device cookies (survey/signing.py), and the earlier format still read."""
from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import select

from survey import db
from survey.models import Link, Response, Wave
from survey.signing import sign, unsign
from survey.submissions import KEY_MAX_AGE_S, issue_key, read_key
from tests.conftest import form_fields, full_answers


def test_a_signed_value_opens_only_with_its_purpose_and_untouched(app):
    with app.app_context():
        signed = sign("device-1", "abc.def")
        assert signed.startswith("v2.") and unsign("device-1", signed) == "abc.def"
        assert unsign("device-2", signed) is None  # another wave's cookie
        assert unsign("device-1", signed.replace("abc", "abd")) is None  # payload changed
        assert unsign("device-1", signed[:-1] + ("A" if signed[-1] != "A" else "B")) is None  # tag changed
        assert unsign("device-1", signed[:-2] + "é") is None  # not ASCII: refused, not an error
        assert unsign("device-1", signed.removeprefix("v2.")) is None
        assert unsign("device-1", "v2.") is None


def test_a_tag_is_hmac_sha256_of_the_payload_under_the_purpose_key_cut_to_128_bits(app):
    """The tag made from copied hash states is exactly HMAC-SHA256 (so values signed before still open)."""
    import base64
    import hashlib
    import hmac

    app.config["SECRET_KEY"] = "a secret"
    with app.app_context():
        key = hmac.digest(b"a secret", b"survey-signing:device-7", hashlib.sha256)
        for payload in ("", "abc.def", "k" * 300, "社区.1"):
            tag = base64.urlsafe_b64encode(hmac.digest(key, payload.encode(), hashlib.sha256)[:16]).rstrip(b"=").decode()
            assert sign("device-7", payload) == f"v2.{payload}.{tag}"
            assert unsign("device-7", f"v2.{payload}.{tag}") == payload


def test_a_signed_value_does_not_open_under_another_secret(app):
    with app.app_context():
        signed = sign("submission-key", "k.1.1.0")
        app.config["SECRET_KEY"] = "another"
        app.extensions.pop("signing_keys")
        assert unsign("submission-key", signed) is None


def test_a_key_says_its_link_wave_and_time_and_expires(app, monkeypatch):
    with app.app_context():
        key = issue_key(7, 3)
        read = read_key(key, 7)
        assert read is not None and read.wave_id == 3 and read.belongs_to(3, datetime(2000, 1, 1, tzinfo=UTC))
        assert abs(read.started_at.timestamp() - time.time()) < 5
        assert read_key(key, 8) is None
        assert read_key(issue_key(7, 3), 7).key != read.key  # a new one-time key each time
        issued_at = time.time()
        monkeypatch.setattr(time, "time", lambda: issued_at + KEY_MAX_AGE_S + 60)
        assert read_key(key, 7) is None  # too old
        monkeypatch.setattr(time, "time", lambda: issued_at - 3600)
        assert read_key(key, 7) is None  # from the future


def test_a_page_rendered_before_the_upgrade_is_still_stored_once(app, client, city):
    """A key in the earlier itsdangerous format, as on a phone's page rendered before the upgrade."""
    with app.app_context():
        link = db.session().scalar(select(Link).where(Link.token == city["A1"]))
        wave_id = db.session().scalar(select(Wave.id))
        key = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="submission-key").dumps(
            {"k": "old-key-1", "l": link.id, "w": wave_id})
    for _ in range(2):
        page = client.post(f"/s/{city['A1']}", data={"submission_key": key} | full_answers())
        assert page.status_code == 200 and "提交成功" in page.get_data(as_text=True)
    with app.app_context():
        stored = db.session().scalars(select(Response)).all()
        assert [r.submission_key for r in stored] == ["old-key-1"]


@pytest.mark.parametrize("old_format", [True, False])
def test_a_phone_keeps_its_device_id_across_the_upgrade(app, client, city, old_format):
    with app.app_context():
        wave_id = db.session().scalar(select(Wave.id))
        device = "0123456789abcdef0123456789abcdef"
        cookie = (URLSafeSerializer(app.config["SECRET_KEY"], salt=f"device-{wave_id}").dumps(device) if old_format
                  else sign(f"device-{wave_id}", device))
    client.set_cookie(f"sv_dev_{wave_id}", cookie, domain="survey.test")
    fields = form_fields(client.get(f"/s/{city['A1']}").get_data(as_text=True))
    assert client.post(f"/s/{city['A1']}", data=fields | full_answers()).status_code == 200
    with app.app_context():
        assert db.session().scalar(select(Response.device_id)) == device


def test_a_device_cookie_of_another_wave_is_not_taken(app, client, city):
    with app.app_context():
        wave_id = db.session().scalar(select(Wave.id))
        client.set_cookie(f"sv_dev_{wave_id}", sign(f"device-{wave_id + 1}", "0123456789abcdef0123456789abcdef"),
                          domain="survey.test")
    page = client.get(f"/s/{city['A1']}")
    assert any(c.startswith(f"sv_dev_{wave_id}=v2.") for c in page.headers.getlist("Set-Cookie"))  # a new device id
    fields = form_fields(page.get_data(as_text=True))
    assert client.post(f"/s/{city['A1']}", data=fields | full_answers()).status_code == 200
    with app.app_context():
        assert db.session().scalar(select(Response.device_id)) != "0123456789abcdef0123456789abcdef"


def test_random_values_are_never_handed_out_twice_not_even_by_a_forked_worker():
    """Keys and device ids come from buffered urandom bytes: distinct pieces, and a fresh buffer after a fork."""
    import os

    from survey.signing import random_hex, random_urlsafe

    values = {random_hex(16) for _ in range(5000)} | {random_urlsafe(16) for _ in range(5000)}
    assert len(values) == 10000
    assert all(len(v) in (22, 32) for v in values)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # a gunicorn worker forked from a master that had already made values
        os.write(write, random_hex(16).encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 64).decode() != random_hex(16)  # without the reset both would take the same piece
    os.close(read)
    os.close(write)

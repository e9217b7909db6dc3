"""Staff sessions that really end, and login throttling that strangers cannot turn against the owner."""
from __future__ import annotations

import base64
import json
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from werkzeug.security import check_password_hash

from survey import auth, create_app, db
from survey.auth import (
    FAILURES_PER_ACCOUNT,
    FAILURES_PER_ADDRESS,
    LOGIN_FAILED,
    attempt_login,
    check_credentials,
    create_user,
    record_login,
)
from survey.models import LoginFailure, StaffSession, User
from tests.conftest import PASSWORD, SMALL_CITY, TEST_PASSWORD_HASH
from tests.conftest import office_login as login


@pytest.fixture
def staff(app):
    from survey.areas import import_areas

    with app.app_context(), db.write_transaction() as session:
        import_areas(session, SMALL_CITY)
        create_user(session, "city", PASSWORD, "city", "C")
        create_user(session, "d1", PASSWORD, "district", "D1")
    return app


def client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def logout(client):
    page = client.get("/office/area/C").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    return client.post("/office/logout", data={"csrf_token": token})


def cookie_payload(client) -> dict:
    """Decode Flask's signed session cookie (readable by anyone who holds it)."""
    value = client.get_cookie("session", domain="survey.test").value
    compressed = value.startswith(".")
    body = value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return json.loads(zlib.decompress(raw) if compressed else raw)


def test_a_cookie_copied_before_logout_opens_nothing_after_it(staff):
    owner = client_at(staff, "10.0.0.1")
    assert login(owner, "city").status_code == 302
    copied = owner.get_cookie("session", domain="survey.test").value
    thief = client_at(staff, "10.0.0.2")
    thief.set_cookie("session", copied, domain="survey.test")
    assert thief.get("/office/area/C").status_code == 200  # the copy works while the session lives
    logout(owner)
    for path in ("/office/area/C", "/office/area/C/export/responses.csv", "/office/area/C/problems"):
        assert thief.get(path).status_code == 302, path
    with staff.app_context():
        assert db.session().scalar(select(func.count()).select_from(StaffSession)) == 0


def test_the_session_cookie_carries_no_password_material(staff):
    client = client_at(staff, "10.0.0.3")
    login(client, "city")
    payload = cookie_payload(client)
    with staff.app_context():
        password_hash = db.session().scalar(select(User.password_hash).where(User.username == "city"))
    assert set(payload) <= {"sid", "csrf_token", "_permanent"}
    text = json.dumps(payload)
    assert all(password_hash[i:i + 8] not in text for i in range(0, len(password_hash) - 8))


def test_a_password_change_or_a_disabled_account_ends_every_session(staff):
    first, second = client_at(staff, "10.0.0.4"), client_at(staff, "10.0.0.5")
    login(first, "city")
    login(second, "d1")
    with staff.app_context(), db.write_transaction() as session:
        auth.set_password(session, session.scalar(select(User).where(User.username == "city")), "An0ther-pass-77")
        auth.set_active(session, session.scalar(select(User).where(User.username == "d1")), False)
    assert first.get("/office/area/C").status_code == 302
    assert second.get("/office/area/D1").status_code == 302
    assert login(client_at(staff, "10.0.0.6"), "d1").status_code == 401  # disabled
    assert login(client_at(staff, "10.0.0.6"), "city", "An0ther-pass-77").status_code == 302


def test_a_session_ends_after_two_idle_hours(staff):
    client = client_at(staff, "10.0.0.7")
    login(client, "city")
    assert client.get("/office/area/C").status_code == 200
    with staff.app_context(), db.write_transaction() as session:
        session.execute(update(StaffSession).values(last_seen_at=datetime.now(UTC) - timedelta(hours=2, minutes=1)))
    assert client.get("/office/area/C").status_code == 302


def test_an_app_without_a_hash_setting_as_in_production_uses_werkzeugs_scrypt(staff, tmp_path):
    """The suite's apps hash cheaply (PASSWORD_HASH_METHOD, tests/conftest.py); nothing else does."""
    production = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite'}", "SECRET_KEY": "x",
                             "HOUSEKEEPING_INTERVAL_S": 0})
    assert "PASSWORD_HASH_METHOD" not in production.config
    with production.app_context():
        stored, dummy = auth.hash_password(PASSWORD), auth._dummy_hash(auth._hash_method())
    assert stored.split("$")[0] == dummy.split("$")[0] == "scrypt:32768:8:1"
    assert check_password_hash(stored, PASSWORD) and not check_password_hash(stored, "wrong-pass-1")
    assert auth._dummy_hash(None) is auth._dummy_hash(None)  # made once (at import)
    # The test apps: accounts and the made-up name's dummy hashed the cheap way, and logins still work.
    assert staff.config["PASSWORD_HASH_METHOD"] == TEST_PASSWORD_HASH
    with staff.app_context():
        assert db.session().scalar(select(User.password_hash).where(User.username == "city")).startswith(
            TEST_PASSWORD_HASH + "$")
        assert auth._dummy_hash(auth._hash_method()).startswith(TEST_PASSWORD_HASH + "$")
    assert login(client_at(staff, "10.9.0.1"), "city").status_code == 302


def test_every_failure_gets_one_message_after_one_password_check(staff, monkeypatch):
    """Real name, made-up name, wrong password, held-off address: same answer, same work."""
    checks = []
    real_check = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda h, p: checks.append(1) or real_check(h, p))
    pages = {}
    for name in ("city", "no-such-user"):
        client = client_at(staff, f"10.1.0.{len(pages) + 1}")
        for attempt in range(FAILURES_PER_ADDRESS + 2):
            before = len(checks)
            # The last try uses the right password: for the real account it is held off all the same.
            password = PASSWORD if attempt == FAILURES_PER_ADDRESS + 1 else "wrong-pass-1"
            page = login(client, name, password)
            assert len(checks) - before == 1
            assert page.status_code == 401
            pages.setdefault(name, set()).add(re.search(r'role="alert">([^<]*)<', page.get_data(as_text=True)).group(1))
    assert pages["city"] == pages["no-such-user"] == {LOGIN_FAILED}


def test_strangers_cannot_lock_the_owner_out(staff):
    home = client_at(staff, "10.2.0.1")
    assert login(home, "city").status_code == 302  # the owner's usual address is now known
    logout(home)
    stranger = client_at(staff, "10.2.0.2")
    for _ in range(FAILURES_PER_ADDRESS):
        login(stranger, "city", "guess-12345")
    assert login(stranger, "city").status_code == 401  # this address is held off the name
    assert login(client_at(staff, "10.2.0.3"), "city").status_code == 302  # another address is not
    # A spread-out attack: enough failures from many addresses to pass the account-wide limit.
    for n in range(FAILURES_PER_ACCOUNT // FAILURES_PER_ADDRESS):
        attacker = client_at(staff, f"10.3.{n}.1")
        for _ in range(FAILURES_PER_ADDRESS):
            login(attacker, "city", "guess-12345")
    assert login(client_at(staff, "10.4.0.1"), "city").status_code == 401  # a new address is held off
    assert login(home, "city").status_code == 302  # the owner still gets in from home


def test_failures_are_forgotten_after_the_window(staff):
    with staff.app_context(), staff.test_request_context():
        then = datetime.now(UTC) - timedelta(minutes=30)
        for _ in range(FAILURES_PER_ADDRESS):
            with db.write_transaction() as session:
                assert attempt_login(session, "city", "wrong-pass-1", "10.5.0.1", now=then) is None
        with db.write_transaction() as session:
            assert attempt_login(session, "city", PASSWORD, "10.5.0.1", now=then + timedelta(minutes=1)) is None
        with db.write_transaction() as session:
            assert attempt_login(session, "city", PASSWORD, "10.5.0.1") is not None
            assert session.scalar(select(func.count()).select_from(LoginFailure)) == 0


def test_concurrent_failures_are_all_counted(staff):
    """The failure count is one SQL upsert per failure: no lost updates under concurrency."""
    tries = 24

    def fail(_):
        # As the login view does: the password hash is checked before the write transaction.
        with staff.app_context():
            credentials = check_credentials(db.session(), "d1", "wrong-pass-1")
            with db.write_transaction(db.session()) as session:
                return record_login(session, credentials, "10.6.0.1")

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(fail, range(tries))) == [None] * tries
    with staff.app_context():
        assert db.session().scalar(select(LoginFailure.failures).where(LoginFailure.username == "d1")) == tries


def test_an_account_disabled_while_its_password_is_checked_does_not_get_in(staff):
    """The hash is checked outside the write transaction; the account is read again inside it."""
    from survey.auth import set_active
    from survey.models import User

    with staff.app_context():
        credentials = check_credentials(db.session(), "City", PASSWORD)
        assert credentials.correct and credentials.name == "city"
        with db.write_transaction() as other:  # meanwhile, an office disables the account
            set_active(other, other.scalar(select(User).where(User.username == "city")), False)
        with db.write_transaction(db.session()) as session:
            assert record_login(session, credentials, "10.7.0.1") is None
        with db.write_transaction() as other:
            set_active(other, other.scalar(select(User).where(User.username == "city")), True)
        credentials = check_credentials(db.session(), "city", PASSWORD)
        with db.write_transaction(db.session()) as session:
            assert record_login(session, credentials, "10.7.0.1").username == "city"

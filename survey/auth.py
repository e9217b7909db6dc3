"""Staff accounts: password policy, creation, login with throttling, server-side sessions, the current user."""
from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import abort, current_app, g, has_app_context, redirect, request, session, url_for
from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response as WerkzeugResponse

from survey import db
from survey.models import (
    OFFICE_ROLES,
    ROLES,
    Area,
    KnownAddress,
    LoginFailure,
    School,
    StaffSession,
    Unit,
    User,
    unit_account,
)

ROLE_LEVEL = {"city": "city", "district": "district", "street": "street", "community": "community",
              "school": "district", "grid": "community", "unit": "city"}
HOME = {"school": "school.board", "grid": "entry.page", "unit": "rectification.home"}


def _hash_method() -> str | None:
    """The app's ``PASSWORD_HASH_METHOD``, or None for werkzeug's default (scrypt).

    Only the tests name one (a cheap hash, tests/conftest.py): a login there would otherwise spend
    most of its time hashing. Production leaves it unset (tests/survey/test_accounts.py checks).
    """
    return current_app.config.get("PASSWORD_HASH_METHOD") if has_app_context() else None


def _generate(password: str, method: str | None) -> str:
    return generate_password_hash(password, method) if method else generate_password_hash(password)


def hash_password(password: str) -> str:
    """Return the hash to store for a password (a fresh salt each time)."""
    return _generate(password, _hash_method())


@functools.cache
def _dummy_hash(method: str | None) -> str:
    """A valid hash to compare against when the user does not exist (same method), so timing does not tell."""
    return _generate("not-a-real-password", method)


_dummy_hash(None)  # made at import, as it always was: the first made-up name costs what the next one does


class AccountError(ValueError):
    """A staff account that cannot be created or used; the message is fit to show."""


def password_problems(password: str, username: str = "") -> list[str]:
    """Return what is wrong with a password (empty when it is acceptable).

    >>> password_problems("short")
    ['至少10个字符', '需同时包含字母和数字']
    """
    problems = []
    if len(password) < 10:
        problems.append("至少10个字符")
    if not (any(c.isalpha() for c in password) and any(c.isdigit() for c in password)):
        problems.append("需同时包含字母和数字")
    if username and username.lower() in password.lower():
        problems.append("不能包含用户名")
    if len(set(password)) < 4:
        problems.append("不能是重复的字符")
    return problems


def create_user(
    session: Session, username: str, password: str, role: str, area_code: str, school_name: str | None = None,
    unit_name: str | None = None,
) -> User:
    """Create a staff account bound to an area of the level its role needs.

    A school account is bound to its school (``school_name``) in the district ``area_code``;
    a grid worker's account to a community; a unit account (role ``unit``) to its responsible
    unit (``unit_name``, in the city ``area_code``): it sees that unit's communities and tasks only
    (survey/scope.py).
    """
    username = username.strip()
    if not username or len(username) > 64:
        raise AccountError("用户名不能为空，且不超过64个字符")
    if role not in ROLES:
        raise AccountError(f"角色必须是 {', '.join(ROLES)} 之一")
    area = session.scalar(select(Area).where(Area.code == area_code))
    if area is None:
        raise AccountError(f"没有编码为 {area_code} 的区域")
    if area.level != ROLE_LEVEL[role]:
        raise AccountError(f"{role} 账号需绑定 {ROLE_LEVEL[role]} 级区域，{area_code} 是 {area.level}")
    if session.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
        raise AccountError(f"用户名 {username} 已存在")
    problems = password_problems(password, username)
    if problems:
        raise AccountError("密码不符合要求：" + "；".join(problems))
    school = None
    if role == "school":
        school = session.scalar(select(School).where(School.district_id == area.id, School.name == (school_name or "")))
        if school is None:
            raise AccountError(f"{area.name} 没有名为 {school_name!r} 的学校（先导入学校）")
    unit = None
    if role == "unit":
        unit = session.scalar(select(Unit).where(Unit.name == (unit_name or "").strip()))
        if unit is None:
            raise AccountError(f"没有名为 {unit_name!r} 的责任单位（先导入单位）")
    user = User(username=username, password_hash=hash_password(password), role=role, area=area, school=school)
    session.add(user)
    session.flush()
    if unit is not None:
        session.execute(unit_account.insert().values(user_id=user.id, unit_id=unit.id))
    return user


# Login throttling. Failures are counted per typed name and address within a window:
# five from one address hold that address off the name; twenty from everywhere hold off every
# address the account has never logged in from, while its owner's usual addresses still get in.
# Every failure, throttled or not, real name or made up, gets the same message after the same
# work (one password hash check), so neither the answer nor its timing tells a name exists.
THROTTLE_WINDOW = timedelta(minutes=15)
FAILURES_PER_ADDRESS = 5
FAILURES_PER_ACCOUNT = 20
LOGIN_FAILED = "用户名或密码错误。连续输错多次后，需等候15分钟再试。"
# Sessions end after this long without a request, and in any case after PERMANENT_SESSION_LIFETIME.
SESSION_IDLE = timedelta(hours=2)
SESSION_TOUCH = timedelta(minutes=5)
KNOWN_ADDRESS_DAYS = 90


def address_key(address: str | None) -> str:
    """Return a keyed hash of a staff member's address for throttling (the address is not kept)."""
    key = hashlib.sha256(f"{current_app.config['SECRET_KEY']}|login-address".encode()).digest()
    return hmac.new(key, (address or "-").encode(), hashlib.sha256).hexdigest()[:40]


def _upsert(session: Session, table, values: dict, conflict: list[str], update: dict) -> None:
    """INSERT ... ON CONFLICT DO UPDATE on PostgreSQL and SQLite alike (one atomic statement)."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(table).values(**values)
    session.execute(statement.on_conflict_do_update(index_elements=conflict, set_=update))


def _record_failure(session: Session, name: str, address: str, now: datetime) -> None:
    table = LoginFailure.__table__
    stale = table.c.last_at < now - THROTTLE_WINDOW
    _upsert(
        session, table, {"username": name, "address_hash": address, "failures": 1, "first_at": now, "last_at": now},
        ["username", "address_hash"],
        {"failures": case((stale, 1), else_=table.c.failures + 1), "first_at": case((stale, now), else_=table.c.first_at),
         "last_at": now},
    )


def _throttled(session: Session, name: str, address: str, user: User | None, now: datetime) -> bool:
    recent = select(func.coalesce(func.sum(LoginFailure.failures), 0)).where(
        LoginFailure.username == name, LoginFailure.last_at >= now - THROTTLE_WINDOW)
    if session.execute(recent.where(LoginFailure.address_hash == address)).scalar_one() >= FAILURES_PER_ADDRESS:
        return True
    if session.execute(recent).scalar_one() < FAILURES_PER_ACCOUNT:
        return False
    known = user is not None and session.scalar(select(KnownAddress.id).where(
        KnownAddress.user_id == user.id, KnownAddress.address_hash == address,
        KnownAddress.last_login_at >= now - timedelta(days=KNOWN_ADDRESS_DAYS)))
    return not known


@dataclass(frozen=True)
class Credentials:
    """What a typed name and password came to: the name as compared, its account (if any), and the verdict."""

    name: str
    user_id: int | None
    correct: bool


def check_credentials(session: Session, username: str, password: str) -> Credentials:
    """Check a typed password against its account's hash (a made-up name against a dummy: the same work).

    This is the slow part of a login (a deliberately costly hash), so it runs before the write
    transaction of :func:`record_login`: on SQLite a write transaction holds the whole database,
    and two dozen logins hashing inside it queued past the busy timeout.
    """
    name = username.strip().lower()[:64]
    user = session.scalar(select(User).where(func.lower(User.username) == name)) if name else None
    correct = check_password_hash(user.password_hash if user is not None else _dummy_hash(_hash_method()), password)
    return Credentials(name, user.id if user is not None else None, correct and user is not None)


def record_login(session: Session, credentials: Credentials, address: str | None,
                 now: datetime | None = None) -> User | None:
    """Return the user when the credentials were correct and the address is not held off, else None.

    Run it in a write transaction: it counts failures with one atomic SQL upsert, and on success
    clears this address's failures and remembers the address as one the owner uses. The account
    is read again here, so one disabled since :func:`check_credentials` does not get in.
    """
    now = now or datetime.now(UTC)
    name, where = credentials.name, address_key(address)
    user = (session.get(User, credentials.user_id, populate_existing=True)
            if credentials.user_id is not None else None)
    if not credentials.correct or user is None or not user.active or _throttled(session, name, where, user, now):
        _record_failure(session, name, where, now)
        return None
    session.execute(delete(LoginFailure).where(LoginFailure.username == name, LoginFailure.address_hash == where))
    _upsert(session, KnownAddress.__table__, {"user_id": user.id, "address_hash": where, "last_login_at": now},
            ["user_id", "address_hash"], {"last_login_at": now})
    return user


def attempt_login(session: Session, username: str, password: str, address: str | None,
                  now: datetime | None = None) -> User | None:
    """:func:`check_credentials` then :func:`record_login` in one call (run it in a write transaction)."""
    return record_login(session, check_credentials(session, username, password), address, now)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def log_in(db_session: Session, user: User, now: datetime | None = None) -> None:
    """Start a server-side session for ``user``; the cookie carries only its random id."""
    token = secrets.token_urlsafe(32)
    now = now or datetime.now(UTC)
    db_session.add(StaffSession(token_hash=_token_hash(token), user_id=user.id, created_at=now, last_seen_at=now))
    session.clear()
    session.permanent = True
    session["sid"] = token


def log_out(db_session: Session) -> None:
    """End this browser's session: the id in its cookie no longer opens anything, copied or not."""
    token = session.get("sid")
    if isinstance(token, str):
        db_session.execute(delete(StaffSession).where(StaffSession.token_hash == _token_hash(token)))
    session.clear()


def end_sessions(db_session: Session, user: User) -> int:
    """End every session of ``user`` (password change, account disabled); return how many."""
    result = db_session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    return db.rows_changed(result)


def set_password(db_session: Session, user: User, password: str) -> None:
    """Change a password (policy checked) and end the user's sessions everywhere."""
    problems = password_problems(password, user.username)
    if problems:
        raise AccountError("密码不符合要求：" + "；".join(problems))
    user.password_hash = hash_password(password)
    end_sessions(db_session, user)


def set_active(db_session: Session, user: User, active: bool) -> None:
    """Enable or disable an account; disabling ends its sessions at once."""
    user.active = active
    if not active:
        end_sessions(db_session, user)


def current_user() -> User | None:
    """Return the logged-in staff user of this request, or None."""
    if "user" not in g:
        g.user = _session_user(datetime.now(UTC))
    return g.user


def _session_user(now: datetime) -> User | None:
    token = session.get("sid")
    if not isinstance(token, str) or len(token) > 100:
        return None
    row = db.session().execute(
        select(StaffSession.id, StaffSession.created_at, StaffSession.last_seen_at, User)
        .join(User, User.id == StaffSession.user_id)
        .where(StaffSession.token_hash == _token_hash(token))
    ).first()
    if row is None:
        return None
    session_id, created_at, last_seen_at, user = row
    lifetime = current_app.permanent_session_lifetime
    if not user.active or now - last_seen_at > SESSION_IDLE or now - created_at > lifetime:
        return None
    if now - last_seen_at > SESSION_TOUCH:
        with db.write_transaction() as writer:
            writer.execute(update(StaffSession).where(StaffSession.id == session_id).values(last_seen_at=now))
    return user


def staff_user() -> User:
    """Return the logged-in staff user of a view behind :func:`role_required` (or ``login_required``).

    The decorator has already sent an anonymous visitor to the login page; called anywhere else,
    this does the same (aborts with that redirect), so it never returns None.
    """
    user = current_user()
    if user is None:
        abort(_to_login())
    return user


def _to_login() -> WerkzeugResponse:
    return redirect(url_for("office.login", next=request.full_path.rstrip("?")))


def role_required(*roles: str):
    """Send anonymous visitors to the login page; other roles get a 403."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            user = current_user()
            if user is None:
                return _to_login()
            if user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


login_required = role_required(*OFFICE_ROLES)


def home_endpoint(user: User) -> str:
    """Return where a user lands after logging in."""
    return HOME.get(user.role, "office.home")

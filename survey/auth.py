"""Staff accounts: password policy, creation, authentication with lock-out, the current user."""
from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from flask import abort, g, redirect, request, session, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from survey import db
from survey.models import OFFICE_ROLES, ROLES, Area, School, User

MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15
ROLE_LEVEL = {"city": "city", "district": "district", "street": "street", "community": "community",
              "school": "district", "grid": "community"}
HOME = {"school": "school.board", "grid": "entry.page"}
# A valid hash to compare against when the user does not exist, so timing does not tell.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


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
    session: Session, username: str, password: str, role: str, area_code: str, school_name: str | None = None
) -> User:
    """Create a staff account bound to an area of the level its role needs.

    A school account is bound to its school (``school_name``) in the district ``area_code``;
    a grid worker's account to a community.
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
    user = User(username=username, password_hash=generate_password_hash(password), role=role, area=area, school=school)
    session.add(user)
    session.flush()
    return user


class LoginFailed(Exception):
    """Wrong name or password, or a locked account; ``message`` is for the login page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def authenticate(session: Session, username: str, password: str, now: datetime | None = None) -> User:
    """Return the user for correct credentials; count failures and lock after too many."""
    now = now or datetime.now(UTC)
    user = session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))
    if user is None or not user.active:
        check_password_hash(_DUMMY_HASH, password)
        raise LoginFailed("用户名或密码错误")
    if user.locked_until and user.locked_until > now:
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        raise LoginFailed(f"密码错误次数过多，账号已暂时锁定，请 {minutes} 分钟后再试")
    if not check_password_hash(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + timedelta(minutes=LOCK_MINUTES)
            user.failed_logins = 0
        raise LoginFailed("用户名或密码错误")
    user.failed_logins = 0
    user.locked_until = None
    return user


def log_in(user: User) -> None:
    session.clear()
    session.permanent = True
    session["uid"] = user.id
    session["pw"] = user.password_hash[-12:]  # a password change ends other sessions


def current_user() -> User | None:
    """Return the logged-in staff user of this request, or None."""
    if "user" not in g:
        uid = session.get("uid")
        user = db.session().get(User, uid) if uid else None
        if user is not None and (not user.active or session.get("pw") != user.password_hash[-12:]):
            user = None
        g.user = user
    return g.user


def role_required(*roles: str):
    """Send anonymous visitors to the login page; other roles get a 403."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            user = current_user()
            if user is None:
                return redirect(url_for("office.login", next=request.full_path.rstrip("?")))
            if user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


login_required = role_required(*OFFICE_ROLES)


def home_endpoint(user: User) -> str:
    """Return where a user lands after logging in."""
    return HOME.get(user.role, "office.home")

"""/office/accounts: offices create, disable, enable and reset the staff accounts of their own area and below.

Registered on the office blueprint (``office.accounts``, ``office.account_create``, ``office.account_reset``,
``office.account_active``). Scope is the one rule of ``survey.scope``: an account is in a viewer's scope when
its area is the viewer's area or below (a school account's area is its district, a grid worker's its
community); any other account answers 404, as if it did not exist. An office may only give roles of its own
level and below (``role_choices``) and never acts on its own account. Every change is logged in
``export_log`` (``what`` = "account:<action> #<id> <username>", the account's area) and the app log.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Blueprint, abort, current_app, make_response, render_template
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import InputRequired, Length, Optional

from survey import db
from survey.auth import (
    ROLE_LEVEL,
    AccountError,
    create_user,
    password_problems,
    role_required,
    set_active,
    set_password,
    staff_user,
)
from survey.models import OFFICE_ROLES, Area, ExportLog, KnownAddress, School, StaffSession, User
from survey.models.areas import LEVELS
from survey.models.users import ROLE_NAMES
from survey.scope import in_scope, visible_units, within

# Roles that may open the accounts page: every office, each for its own area and below.
MANAGER_ROLES = OFFICE_ROLES
# Roles an office may give, in the order the form lists them. A role is offered when its area level
# (auth.ROLE_LEVEL) is the viewer's level or below. Hook for new roles: add it to MANAGED_ROLES with a
# rule in EXTRA_ROLE_RULES when the level rule does not fit. The responsible units' `unit` role
# (survey/rectification/): a unit account is bound to the city area and to its unit (create_user's
# unit_name), so only the city office gives it, naming one of the units it sees.
MANAGED_ROLES = ("city", "district", "street", "community", "school", "grid", "unit")
# role -> function(viewer) -> bool: whether the viewer may give that role (beyond the level rule).
EXTRA_ROLE_RULES: dict = {"unit": lambda viewer: viewer.role == "city"}
LOG_PREFIX = "account:"
ACTION_NAMES = {"create": "新建", "reset": "重置密码", "disable": "停用", "enable": "启用"}
PAGE_ROWS = 500
LOG_ROWS = 30
# Generated passwords: no look-alike characters (0/O, 1/l/I), easy to read out over the phone.
_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _rank(level: str) -> int:
    return LEVELS.index(level)


def role_choices(viewer: User) -> list[tuple[str, str]]:
    """Return the (role, Chinese name) pairs ``viewer`` may give: its own level and below."""
    if viewer.role not in MANAGER_ROLES:
        return []
    mine = _rank(viewer.area.level)
    choices = []
    for role in MANAGED_ROLES:
        rule = EXTRA_ROLE_RULES.get(role)
        allowed = rule(viewer) if rule else role in ROLE_LEVEL and _rank(ROLE_LEVEL[role]) >= mine
        if allowed:
            choices.append((role, ROLE_NAMES.get(role, role)))
    return choices


def strong_password(length: int = 14) -> str:
    """Return a random password that passes the policy (letters and digits, no look-alikes)."""
    while True:
        password = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        if not password_problems(password):
            return password


@dataclass(frozen=True)
class AccountRow:
    user: User
    last_login: datetime | None
    sessions: int


def accounts_in_scope(session: Session, viewer: User) -> list[AccountRow]:
    """Every account whose area is the viewer's area or below, with its last login and open sessions."""
    last = (select(KnownAddress.user_id, func.max(KnownAddress.last_login_at).label("at"))
            .group_by(KnownAddress.user_id).subquery())
    open_sessions = (select(StaffSession.user_id, func.count().label("n"))
                     .group_by(StaffSession.user_id).subquery())
    rows = session.execute(
        select(User, last.c.at, open_sessions.c.n)
        .join(Area, Area.id == User.area_id)
        .outerjoin(last, last.c.user_id == User.id)
        .outerjoin(open_sessions, open_sessions.c.user_id == User.id)
        .where(within(viewer.area))
        .options(joinedload(User.area), joinedload(User.school))
        .order_by(Area.path, Area.code, User.role, User.username)
        .limit(PAGE_ROWS)
    ).all()
    return [AccountRow(user, at, n or 0) for user, at, n in rows]


def account_in_scope(session: Session, viewer: User, account_id: int) -> User:
    """Return the account if the viewer may manage it; 404 otherwise (as elsewhere)."""
    account = session.get(User, account_id)
    if account is None or not in_scope(viewer, account.area):
        abort(404)
    return account


def recent_changes(session: Session, viewer: User) -> list[ExportLog]:
    """The latest logged account changes for accounts in the viewer's scope."""
    return list(session.scalars(
        select(ExportLog).join(Area, Area.id == ExportLog.area_id)
        .where(ExportLog.what.startswith(LOG_PREFIX), within(viewer.area))
        .options(joinedload(ExportLog.user))
        .order_by(ExportLog.created_at.desc(), ExportLog.id.desc()).limit(LOG_ROWS)))


def log_change(session: Session, viewer: User, action: str, account: User) -> None:
    """Log one change: who (the row's user), when, what, which account (id and name, area)."""
    session.add(ExportLog(user_id=viewer.id, what=f"{LOG_PREFIX}{action} #{account.id} {account.username}"[:64],
                          area_id=account.area_id, wave_id=None, file_format="account", rows=0,
                          created_at=datetime.now(UTC)))
    current_app.logger.info("account %s: %s (#%d, %s) by %s", action, account.username, account.id, account.role,
                            viewer.username)


def describe(entry: ExportLog) -> str:
    """'停用 #12 wang' from a logged ``what``."""
    action, _, rest = entry.what.removeprefix(LOG_PREFIX).partition(" ")
    return f"{ACTION_NAMES.get(action, action)} {rest}"


class CreateForm(FlaskForm):
    username = StringField("用户名", validators=[InputRequired("请填写用户名"), Length(max=64, message="最多64个字")])
    role = SelectField("角色", validate_choice=False)
    area = StringField("区域（编码或名称，责任单位账号不填）", validators=[Optional(), Length(max=64, message="最多64个字")])
    school = StringField("学校名称（学校账号填写）", validators=[Optional(), Length(max=200, message="最多200个字")])
    unit = StringField("责任单位名称（责任单位账号填写）", validators=[Optional(), Length(max=200, message="最多200个字")])
    password = PasswordField("初始密码（留空则自动生成）", validators=[Optional(), Length(max=200, message="最多200个字")])


class ResetForm(FlaskForm):
    password = PasswordField("新密码（留空则自动生成）", validators=[Optional(), Length(max=200, message="最多200个字")])


class ActiveForm(FlaskForm):
    """Only the CSRF token; the action (停用/启用) is in the URL."""


def _page(viewer: User, form: CreateForm | None = None, error: str | None = None, notice: str | None = None,
          shown_password: tuple[str, str] | None = None, status: int = 200):
    session = db.session()
    form = form or CreateForm()
    form.role.choices = role_choices(viewer)
    areas = session.scalars(select(Area).where(within(viewer.area), Area.level != "grid")
                            .order_by(Area.path, Area.code).limit(PAGE_ROWS)).all()
    schools = session.scalars(select(School).join(Area, Area.id == School.district_id).where(within(viewer.area))
                              .order_by(School.name).limit(PAGE_ROWS)).all()
    units = []
    if "unit" in dict(form.role.choices):
        units = visible_units(session, viewer)
    response = make_response(render_template(
        "office/accounts.html", rows=accounts_in_scope(session, viewer), form=form, reset_form=ResetForm,
        active_form=ActiveForm, areas=areas, schools=schools, error=error, notice=notice,
        shown_password=shown_password, changes=recent_changes(session, viewer), describe=describe, units=units,
        role_level=ROLE_LEVEL, viewer=viewer), status)
    # A generated password is shown once: never kept by a cache or the browser's back button.
    response.headers["Cache-Control"] = "no-store"
    return response


def page():
    """The accounts of the viewer's area and below, the create form and the latest changes."""
    return _page(staff_user())


def create():
    viewer = staff_user()
    form = CreateForm()
    form.role.choices = role_choices(viewer)
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        errors = [e for field in form for e in field.errors]
        return _page(viewer, form, error="；".join(errors), status=400)
    role = form.role.data
    if role not in dict(form.role.choices):
        return _page(viewer, form, error="您不能新建这种角色的账号：只能新建本级及以下的账号。", status=403)
    session = db.session()
    code = (form.area.data or "").strip()
    area: Area | None
    unit_name = None
    if role == "unit":  # the unit's own account: in the city's area, seeing its unit's communities only
        area, unit_name = viewer.area, (form.unit.data or "").strip()
        if unit_name not in {u.name for u in visible_units(session, viewer)}:
            return _page(viewer, form, error=f"没有名为“{unit_name}”的责任单位：请先在整改任务的单位页添加。", status=400)
    elif not code:
        return _page(viewer, form, error="请填写区域编码", status=400)
    else:
        area = session.scalar(select(Area).where(Area.code == code))
        if area is None:  # typed a name: fine when exactly one area of the viewer's scope has it
            named = session.scalars(select(Area).where(Area.name == code, within(viewer.area)).order_by(Area.code)).all()
            if len(named) > 1:
                choices = "、".join(f"{a.code}（{a.parent.name if a.parent else ''}{a.name}）" for a in named)
                return _page(viewer, form, error=f"有 {len(named)} 个区域叫“{code}”，请填编码：{choices}。", status=400)
            area = named[0] if named else None
    if area is None or not in_scope(viewer, area):
        return _page(viewer, form, error=f"您的管辖范围内没有编码或名称为“{code}”的区域。", status=400)
    generated = not form.password.data
    password = strong_password() if generated else form.password.data
    try:
        with db.write_transaction(session):
            account = create_user(session, form.username.data, password, role, area.code,
                                  (form.school.data or "").strip() or None, unit_name)
            log_change(session, viewer, "create", account)
            name = account.username
    except AccountError as exc:
        return _page(viewer, form, error=str(exc), status=400)
    notice = f"已新建账号 {name}（{ROLE_NAMES.get(role, role)} · {unit_name or area.name}）。"
    return _page(viewer, CreateForm(formdata=None), notice=notice,
                 shown_password=(name, password) if generated else None)


def _target(account_id: int) -> tuple[User, User]:
    viewer = staff_user()
    account = account_in_scope(db.session(), viewer, account_id)
    if account.id == viewer.id:
        abort(403)  # never one's own account: no self-disable, no reset without the old password
    return viewer, account


def reset(account_id: int):
    form = ResetForm()
    if not form.validate_on_submit():
        abort(400)
    session = db.session()
    viewer, account = _target(account_id)
    generated = not form.password.data
    password = strong_password() if generated else form.password.data
    try:
        with db.write_transaction(session):
            set_password(session, account, password)
            log_change(session, viewer, "reset", account)
    except AccountError as exc:
        return _page(viewer, error=f"{account.username}：{exc}", status=400)
    notice = f"已重置 {account.username} 的密码，它已登录的设备都已退出。"
    return _page(viewer, notice=notice, shown_password=(account.username, password) if generated else None)


def set_activity(account_id: int, action: str):
    if action not in ("disable", "enable"):
        abort(404)
    if not ActiveForm().validate_on_submit():
        abort(400)
    session = db.session()
    viewer, account = _target(account_id)
    with db.write_transaction(session):
        set_active(session, account, action == "enable")
        log_change(session, viewer, action, account)
    notice = (f"已启用 {account.username}。" if action == "enable"
              else f"已停用 {account.username}，它已登录的设备都已退出。")
    return _page(viewer, notice=notice)


def register(bp: Blueprint) -> None:
    """Add the accounts page and its actions to the office blueprint."""
    manager = role_required(*MANAGER_ROLES)
    bp.add_url_rule("/accounts", "accounts", manager(page))
    bp.add_url_rule("/accounts/new", "account_create", manager(create), methods=["POST"])
    bp.add_url_rule("/accounts/<int:account_id>/reset", "account_reset", manager(reset), methods=["POST"])
    bp.add_url_rule("/accounts/<int:account_id>/<action>", "account_active", manager(set_activity), methods=["POST"])


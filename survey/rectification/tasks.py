"""Rectification tasks: creation from the problem list, the status machine, its history, who sees what.

Status machine (every change is a TaskEvent: who, when, action, from -> to, note)::

    待整改 todo --start (unit)--> 整改中 doing --report (unit: text + photos)--> 已整改 done
    已整改 done --close (office: 销号)--> 已销号 closed
    已整改 done --return (office: 退回, a reason)--> 整改中 doing

Any other change is refused (TaskError). A unit acts only on its own tasks; an office only on
tasks of communities in its area.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import abort
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, joinedload

from survey.models import OFFICE_ROLES, PRIORITIES, Area, Task, TaskEvent, Unit, User
from survey.rectification.units import unit_of
from survey.scope import in_scope, within

STATUS_NAMES = {"todo": "待整改", "doing": "整改中", "done": "已整改", "closed": "已销号"}
PRIORITY_NAMES = {"high": "高", "normal": "中", "low": "低"}
ACTION_NAMES = {"create": "交办", "start": "开始整改", "report": "报告已整改", "close": "核实销号", "return": "退回"}
# action: (from status, to status, who may take it, whether a note is required)
ACTIONS = {
    "start": ("todo", "doing", "unit", False),
    "report": ("doing", "done", "unit", True),
    "close": ("done", "closed", "office", False),
    "return": ("done", "doing", "office", True),
}
OPEN = ("todo", "doing")  # what a unit still has to do: overdue once the deadline has passed
MAX_TERM = timedelta(days=5 * 365)  # the furthest deadline a task may be given
MAX_TITLE = 200
MAX_NOTE = 4000


class TaskError(ValueError):
    """A task that cannot be created or changed; the message is fit to show."""


@dataclass(frozen=True)
class Pick:
    """One problem chosen for a task: a community x topic of a stored run, or a complaint term."""

    area: Area
    title: str
    questionnaire_code: str | None = None
    item_code: str | None = None
    topic: str = ""
    term: str | None = None
    wave_id: int | None = None
    score_before: float | None = None


def is_overdue(task: Task, now: datetime | None = None) -> bool:
    return task.status in OPEN and task.deadline < (now or datetime.now(UTC))


def create_tasks(session: Session, user: User, picks: list[tuple[Pick, Unit]], deadline: datetime, priority: str,
                 detail: str = "", now: datetime | None = None) -> list[Task]:
    """Create one task per (pick, unit), each with its 交办 event; the caller's transaction holds them all."""
    if user.role not in OFFICE_ROLES:
        raise TaskError("只有文明办账号可以交办整改任务")
    if priority not in PRIORITIES:
        raise TaskError("优先级不对")
    if not picks:
        raise TaskError("没有选中任何问题")
    if len(detail) > MAX_NOTE:
        raise TaskError(f"说明不超过{MAX_NOTE}个字")
    now = now or datetime.now(UTC)
    if deadline <= now:
        raise TaskError("整改期限必须晚于现在")
    if deadline > now + MAX_TERM:
        raise TaskError(f"整改期限最多{MAX_TERM.days // 365}年")
    tasks = []
    for pick, unit in picks:
        if pick.area.level != "community" or not in_scope(user, pick.area):
            raise TaskError(f"{pick.area.name} 不在本账号的范围内")
        title = pick.title.strip()
        if not title or len(title) > MAX_TITLE:
            raise TaskError(f"任务名称不能为空，且不超过{MAX_TITLE}个字")
        task = Task(title=title, detail=detail.strip(), area=pick.area, unit=unit, questionnaire_code=pick.questionnaire_code,
                    item_code=pick.item_code, topic=pick.topic, term=pick.term, wave_id=pick.wave_id,
                    score_before=pick.score_before, deadline=deadline, priority=priority, status="todo",
                    created_by_id=user.id, created_at=now)
        session.add(task)
        session.flush()
        session.add(TaskEvent(task_id=task.id, user_id=user.id, at=now, action="create", from_status=None, to_status="todo",
                              note=f"交办给{unit.name}"))
        tasks.append(task)
    session.flush()
    return tasks


def may_act(session: Session, user: User, task: Task, action: str) -> bool:
    """Whether ``user`` may take ``action`` on ``task`` in its present status."""
    rule = ACTIONS.get(action)
    if rule is None or task.status != rule[0]:
        return False
    if rule[2] == "unit":
        unit = unit_of(session, user)
        return unit is not None and unit.id == task.unit_id
    return user.role in OFFICE_ROLES and in_scope(user, task.area)


def transition(session: Session, user: User, task: Task, action: str, note: str = "",
               now: datetime | None = None) -> TaskEvent:
    """Take ``action`` on ``task`` (see the module's machine), record it and return the event.

    Refused with TaskError: an unknown action, one the task's status does not allow, one the
    user may not take, or a missing note (the report's text, the reason for sending back).
    """
    rule = ACTIONS.get(action)
    if rule is None:
        raise TaskError("没有这个操作")
    before, after, _who, needs_note = rule
    if task.status != before:
        raise TaskError(f"任务现在是“{STATUS_NAMES[task.status]}”，不能{ACTION_NAMES[action]}")
    if not may_act(session, user, task, action):
        raise TaskError(f"本账号不能对这项任务{ACTION_NAMES[action]}")
    note = note.strip()
    if needs_note and not note:
        raise TaskError("请写明整改情况" if action == "report" else "请写明退回原因")
    if len(note) > MAX_NOTE:
        raise TaskError(f"说明不超过{MAX_NOTE}个字")
    now = now or datetime.now(UTC)
    task.status = after
    if action == "report":
        task.report, task.reported_at = note, now
    elif action == "close":
        task.closed_at = now
    event = TaskEvent(task_id=task.id, user_id=user.id, at=now, action=action, from_status=before, to_status=after,
                      note=note)
    session.add(event)
    session.flush()
    return event


def visible(session: Session, user: User) -> Select:
    """Return a query of the tasks ``user`` may see: a unit its own, an office those of its area's communities."""
    query = select(Task).join(Area, Area.id == Task.area_id)
    if user.role == "unit":
        unit = unit_of(session, user)
        return query.where(Task.unit_id == (unit.id if unit else -1))
    if user.role not in OFFICE_ROLES:
        return query.where(Task.id == -1)
    return query.where(within(user.area))


def task_for(session: Session, user: User, task_id: int) -> Task:
    """Return a task the user may see; 404 otherwise (as if it did not exist)."""
    task = session.scalar(visible(session, user).where(Task.id == task_id))
    if task is None:
        abort(404)
    return task


def _filtered(session: Session, user: User, status: str | None, unit_id: int | None, overdue: bool,
              now: datetime) -> Select:
    query = visible(session, user)
    if status in STATUS_NAMES:
        query = query.where(Task.status == status)
    if unit_id:
        query = query.where(Task.unit_id == unit_id)
    if overdue:
        query = query.where(Task.status.in_(OPEN), Task.deadline < now)
    return query


def task_list(session: Session, user: User, status: str | None = None, unit_id: int | None = None,
              overdue: bool = False, now: datetime | None = None, limit: int = 500, offset: int = 0) -> list[Task]:
    """Return the visible tasks: open ones by deadline, then those awaiting 销号, then closed ones newest first.

    Ordered and cut (``limit`` from ``offset``) in SQL, with each task's community and unit loaded alongside.
    """
    now = now or datetime.now(UTC)
    group = case((Task.status == "done", 1), (Task.status == "closed", 2), else_=0)
    by_deadline = case((Task.status == "closed", None), else_=Task.deadline)
    query = (_filtered(session, user, status, unit_id, overdue, now)
             .options(joinedload(Task.area), joinedload(Task.unit))
             .order_by(group, by_deadline, Task.closed_at.desc(), Task.id)
             .limit(limit).offset(offset))
    return list(session.scalars(query))


def task_count(session: Session, user: User, status: str | None = None, unit_id: int | None = None,
               overdue: bool = False, now: datetime | None = None) -> int:
    query = _filtered(session, user, status, unit_id, overdue, now or datetime.now(UTC))
    return session.scalar(query.with_only_columns(func.count(Task.id))) or 0

"""整改率 and on-time rate per area and per unit over a period, ranked lowest first (the weekly 通报).

A task counts for a period when its deadline falls in it and has passed (it is *due*):

    整改率   = due tasks closed (已销号) ÷ due tasks
    按期率   = due tasks closed whose accepted report came by the deadline ÷ due tasks
    逾期未改 = due tasks still 待整改 or 整改中

The accepted report is the last one (a task sent back and reported again late is late). Rankings
put the lowest 整改率 first (then the lowest on-time rate, then the most tasks due); groups with
nothing due come last.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from survey.models import Area, Task, User
from survey.models.areas import LEVELS
from survey.rectification.tasks import OPEN, visible
from survey.scope import visible_units, within

GROUPINGS = {"unit": "责任单位", "district": "区/县", "street": "街道/乡镇", "community": "社区/村"}


@dataclass(frozen=True)
class RateRow:
    key: int
    name: str
    note: str
    due: int
    closed: int
    on_time: int
    overdue_open: int

    @property
    def rate(self) -> float | None:
        return self.closed / self.due if self.due else None

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.due if self.due else None


def is_due(task: Task, start: datetime, end: datetime, now: datetime) -> bool:
    return start <= task.deadline < end and task.deadline <= now


def tally(key: int, name: str, note: str, tasks: Iterable[Task], now: datetime) -> RateRow:
    """Count one group's due tasks (the caller has kept only the due ones)."""
    due = closed = on_time = late_open = 0
    for task in tasks:
        due += 1
        if task.status == "closed":
            closed += 1
            on_time += task.reported_at is not None and task.reported_at <= task.deadline
        elif task.status in OPEN and task.deadline < now:
            late_open += 1
    return RateRow(key, name, note, due, closed, on_time, late_open)


def ranked(rows: list[RateRow]) -> list[RateRow]:
    """Lowest 整改率 first, then lowest on-time rate, then most due; nothing due last (by name)."""
    return sorted(rows, key=lambda r: (r.due == 0, r.rate if r.due else 0.0, r.on_time_rate if r.due else 0.0,
                                       -r.due, r.name))


def groupings_for(user: User) -> list[str]:
    """What an office may rank by: units, and the area levels below its own."""
    below = LEVELS[LEVELS.index(user.area.level) + 1:LEVELS.index("community") + 1]
    return ["unit", *below]


def rates(session: Session, user: User, by: str, start: datetime, end: datetime, now: datetime
          ) -> tuple[list[RateRow], RateRow]:
    """Return the ranked rows of the groups ``by`` (a level under the user's area, or "unit") and the total row."""
    due = [t for t in session.scalars(visible(session, user).where(Task.deadline >= start, Task.deadline < end,
                                                                   Task.deadline <= now))]
    groups: dict[int, list[Task]] = {}
    if by == "unit":
        names = {u.id: (u.name, u.contact) for u in visible_units(session, user)}
        for task in due:
            names.setdefault(task.unit_id, (task.unit.name, task.unit.contact))
            groups.setdefault(task.unit_id, []).append(task)
    else:
        areas = {a.id: a for a in session.scalars(select(Area).where(within(user.area), Area.level == by))}
        names = {i: (a.name, a.parent.name if a.parent is not None else "") for i, a in areas.items()}
        for task in due:
            ids = [int(part) for part in task.area.path.strip("/").split("/") if part]
            key = next((i for i in ids if i in areas), None)
            if key is not None:
                groups.setdefault(key, []).append(task)
    rows = [tally(key, name, note, groups.get(key, []), now) for key, (name, note) in names.items()]
    return ranked(rows), tally(0, user.area.name, "合计", due, now)

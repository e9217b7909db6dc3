"""Rectification (整改): responsible units, their communities and accounts, tasks, their history and photos."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Float, ForeignKey, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from survey.models.areas import Area
from survey.models.base import Base, UTCDateTime, utcnow
from survey.models.users import User

# A task's status: 待整改 → 整改中 → 已整改 → 已销号, or 退回 from 已整改 back to 整改中 (survey/rectification/tasks.py).
TASK_STATUSES = ("todo", "doing", "done", "closed")
PRIORITIES = ("high", "normal", "low")

unit_community = Table(
    "unit_community", Base.metadata,
    Column("unit_id", ForeignKey("unit.id", ondelete="CASCADE"), primary_key=True),
    Column("area_id", ForeignKey("area.id"), primary_key=True, index=True),
)

# A unit account (role ``unit``) is linked to exactly one unit; a unit may have several accounts.
unit_account = Table(
    "unit_account", Base.metadata,
    Column("user_id", ForeignKey("staff_user.id", ondelete="CASCADE"), primary_key=True),
    Column("unit_id", ForeignKey("unit.id"), nullable=False, index=True),
)


class Unit(Base):
    """A responsible unit (帮包单位/责任单位): who to call, which communities it helps."""

    __tablename__ = "unit"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    contact: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    # Optional: the grids or buildings it is responsible for (干部包楼栋), as written by the office.
    grids: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    communities: Mapped[list[Area]] = relationship(secondary=unit_community, order_by=Area.code)
    accounts: Mapped[list[User]] = relationship(secondary=unit_account, order_by=User.username, viewonly=True)


class Task(Base):
    """A rectification task: what is to be fixed, where (community, topic), by which unit, by when."""

    __tablename__ = "rect_task"
    __table_args__ = (
        CheckConstraint("status IN ('todo','doing','done','closed')", name="status"),
        CheckConstraint("priority IN ('high','normal','low')", name="priority"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text, default="")
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"), index=True)
    # Where the problem came from: a community x topic of an analysed wave, or a complaint term.
    questionnaire_code: Mapped[str | None] = mapped_column(String(64))
    item_code: Mapped[str | None] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(100), default="")
    term: Mapped[str | None] = mapped_column(String(100))
    wave_id: Mapped[int | None] = mapped_column(ForeignKey("wave.id"))
    score_before: Mapped[float | None] = mapped_column(Float)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    status: Mapped[str] = mapped_column(String(16), default="todo", index=True)
    report: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    area: Mapped[Area] = relationship()
    unit: Mapped[Unit] = relationship()
    created_by: Mapped[User] = relationship()
    events: Mapped[list[TaskEvent]] = relationship(back_populates="task", order_by="TaskEvent.id")
    photos: Mapped[list[TaskPhoto]] = relationship(order_by="TaskPhoto.id")


class TaskEvent(Base):
    """One change of a task: who, when, what (action), from -> to, and the note (report text, reason)."""

    __tablename__ = "rect_task_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("rect_task.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")

    task: Mapped[Task] = relationship(back_populates="events")
    user: Mapped[User] = relationship()


class TaskPhoto(Base):
    """A photo of a report, re-encoded as JPEG under instance/rectification_photos with a random name."""

    __tablename__ = "rect_task_photo"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("rect_task.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("rect_task_event.id"))
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

"""Staff accounts bound to an area, their sessions and login throttling, and the log of exports."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from survey.models.areas import Area
from survey.models.base import Base, UTCDateTime, utcnow
from survey.models.schools import School

OFFICE_ROLES = ("city", "district", "street", "community")
ROLES = (*OFFICE_ROLES, "school", "grid", "unit")
ROLE_NAMES = {"city": "市文明办", "district": "区文明办", "street": "街道", "community": "社区", "school": "学校",
              "grid": "网格员/录入员",
              "unit": "责任单位"}


class User(Base):
    __tablename__ = "staff_user"
    __table_args__ = (CheckConstraint("role IN ('city','district','street','community','school','grid','unit')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id"))
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    area: Mapped[Area] = relationship()
    school: Mapped[School | None] = relationship()


class StaffSession(Base):
    """A logged-in browser: the cookie holds a random id, the database only its SHA-256.

    Logging out deletes the row; a password change or disabling the account deletes them all.
    """

    __tablename__ = "staff_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoginFailure(Base):
    """Recent failed logins for a typed user name from one address (a keyed hash of it).

    Kept by the typed name, not by account, so a made-up name and a real one behave alike.
    """

    __tablename__ = "login_failure"
    __table_args__ = (UniqueConstraint("username", "address_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    address_hash: Mapped[str] = mapped_column(String(40))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)


class KnownAddress(Base):
    """An address (keyed hash) a user has logged in from: it still gets in while strangers are held off."""

    __tablename__ = "known_address"
    __table_args__ = (UniqueConstraint("user_id", "address_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"))
    address_hash: Mapped[str] = mapped_column(String(40))
    last_login_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ExportLog(Base):
    __tablename__ = "export_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    what: Mapped[str] = mapped_column(String(64))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("area.id"))
    wave_id: Mapped[int | None] = mapped_column(ForeignKey("wave.id"))
    file_format: Mapped[str] = mapped_column(String(8))
    rows: Mapped[int] = mapped_column(Integer)

    user: Mapped[User] = relationship()

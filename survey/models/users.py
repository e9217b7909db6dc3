"""Staff accounts bound to an area, and the log of what they exported."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from survey.models.areas import Area
from survey.models.base import Base, UTCDateTime, utcnow
from survey.models.schools import School

OFFICE_ROLES = ("city", "district", "street", "community")
ROLES = (*OFFICE_ROLES, "school", "grid")
ROLE_NAMES = {"city": "市文明办", "district": "区文明办", "street": "街道", "community": "社区", "school": "学校",
              "grid": "网格员/录入员"}


class User(Base):
    __tablename__ = "staff_user"
    __table_args__ = (CheckConstraint("role IN ('city','district','street','community','school','grid')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id"))
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"))
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    area: Mapped[Area] = relationship()
    school: Mapped[School | None] = relationship()


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

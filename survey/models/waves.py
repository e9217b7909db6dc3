"""Survey waves: a named period during which chosen questionnaire versions are fielded."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from survey.models.base import Base, UTCDateTime, utcnow
from survey.models.questionnaires import QuestionnaireVersion

wave_version = Table(
    "wave_version",
    Base.metadata,
    Column("wave_id", ForeignKey("wave.id"), primary_key=True),
    Column("questionnaire_version_id", ForeignKey("questionnaire_version.id"), primary_key=True),
)


class Wave(Base):
    __tablename__ = "wave"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Random salt of this wave's IP hashes; deleted with the device ids and hashes once the
    # wave has closed (``device_data_cleared_at``), after which no hash can be reversed.
    ip_salt: Mapped[str | None] = mapped_column(String(64))
    device_data_cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    versions: Mapped[list[QuestionnaireVersion]] = relationship(secondary=wave_version)

    def is_open(self, when: datetime) -> bool:
        return self.opens_at <= when < self.closes_at

"""Survey links: an unguessable token behind a QR code, for a questionnaire and a target."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from survey.models.areas import Area
from survey.models.base import Base, UTCDateTime, utcnow
from survey.models.questionnaires import Questionnaire
from survey.models.schools import SchoolClass


class Link(Base):
    __tablename__ = "link"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    questionnaire_id: Mapped[int] = mapped_column(ForeignKey("questionnaire.id"))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("area.id"), index=True)
    # A class link: parents (citizen questionnaire, they pick their community) or pupils.
    school_class_id: Mapped[int | None] = mapped_column(ForeignKey("school_class.id"), index=True)
    audience: Mapped[str | None] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16), default="qr")
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    questionnaire: Mapped[Questionnaire] = relationship()
    area: Mapped[Area | None] = relationship()
    school_class: Mapped[SchoolClass | None] = relationship()

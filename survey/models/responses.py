"""Responses and their answers. A response is written in one transaction with its answers."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from survey.models.base import Base, UTCDateTime

CHANNELS = ("qr", "school", "paper")
ATTRIBUTES = JSON().with_variant(JSONB(), "postgresql")
# A flagged response that the stored statistics count (survey/aggregates.py): the partial index's condition.
FLAGGED_COUNTED = ("(flag_speeder OR flag_straightline OR flag_repeat_device) "
                   "AND score IS NOT NULL AND area_id IS NOT NULL")


class Response(Base):
    __tablename__ = "response"
    __table_args__ = (
        CheckConstraint("channel IN ('qr','school','paper')", name="channel"),
        Index("ix_response_wave_area", "wave_id", "area_id"),
        Index("ix_response_wave_device", "wave_id", "device_id"),
        # The median duration and the responses near the speeder threshold, by range (migration 0012).
        Index("ix_response_wave_version_duration", "wave_id", "questionnaire_version_id", "duration_s"),
        # The flagged responses the statistics count (migration 0012): flag moves found without reading every response.
        Index("ix_response_flagged", "wave_id", "questionnaire_version_id", "id",
              postgresql_where=sql_text(FLAGGED_COUNTED), sqlite_where=sql_text(FLAGGED_COUNTED)),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("wave.id"))
    questionnaire_version_id: Mapped[int] = mapped_column(ForeignKey("questionnaire_version.id"))
    link_id: Mapped[int | None] = mapped_column(ForeignKey("link.id"), index=True)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("area.id"))
    school_class_id: Mapped[int | None] = mapped_column(ForeignKey("school_class.id"), index=True)
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    submission_key: Mapped[str] = mapped_column(String(64), unique=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_s: Mapped[float | None] = mapped_column(Float)
    # The respondent's weighting attributes as the questionnaire names them, e.g. {"sex": "F",
    # "age_band": "60+", "education": "college"} (choice codes; unanswered ones left out).
    attributes: Mapped[dict[str, str]] = mapped_column(ATTRIBUTES, default=dict, server_default="{}")
    # Mean of the scored items answered, and how many: what the analysis aggregates in SQL.
    score: Mapped[float | None] = mapped_column(Float)
    scored_items: Mapped[int] = mapped_column(Integer, default=0)
    # Data quality: a per-wave device cookie and a keyed per-wave hash of the IP address (never
    # the address), both cleared when the wave is over; flags set at submit and at analysis.
    device_id: Mapped[str | None] = mapped_column(String(40))
    ip_hash: Mapped[str | None] = mapped_column(String(40))
    flag_speeder: Mapped[bool] = mapped_column(default=False)
    flag_straightline: Mapped[bool] = mapped_column(default=False)
    flag_repeat_device: Mapped[bool] = mapped_column(default=False)

    answers: Mapped[list[Answer]] = relationship(back_populates="response", cascade="all, delete-orphan")


class Answer(Base):
    __tablename__ = "answer"
    __table_args__ = (
        # Only the answers with text (migration 0011): a community's newest comments without reading every answer.
        Index("ix_answer_text_response", "response_id", postgresql_where=sql_text("text IS NOT NULL"),
              sqlite_where=sql_text("text IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("response.id", ondelete="CASCADE"), index=True)
    item_code: Mapped[str] = mapped_column(String(32))
    choice_code: Mapped[str | None] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str | None] = mapped_column(Text)  # a comment: free text typed by the respondent
    # Every other answer that is not one choice: several choices ("a c"), a number, a date, a time,
    # a location, a photo's stored name, a calculated value, the text of "其他（请注明）"
    # (forms.items.ItemType.stored_value; migration 0014).
    value: Mapped[str | None] = mapped_column(Text)

    response: Mapped[Response] = relationship(back_populates="answers")

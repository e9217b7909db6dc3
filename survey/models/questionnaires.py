"""Questionnaires and their versions; a version keeps the definition it was fielded with."""
from __future__ import annotations

from datetime import datetime
from functools import cached_property

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from forms.definition import Definition, parse_definition
from survey.models.base import Base, UTCDateTime, utcnow


class Questionnaire(Base):
    __tablename__ = "questionnaire"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))

    versions: Mapped[list[QuestionnaireVersion]] = relationship(back_populates="questionnaire", order_by="QuestionnaireVersion.version")


class QuestionnaireVersion(Base):
    __tablename__ = "questionnaire_version"
    __table_args__ = (UniqueConstraint("questionnaire_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    questionnaire_id: Mapped[int] = mapped_column(ForeignKey("questionnaire.id"))
    version: Mapped[int]
    definition_json: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    questionnaire: Mapped[Questionnaire] = relationship(back_populates="versions")

    @cached_property
    def definition(self) -> Definition:
        return parse_definition(self.definition_json, f"{self.questionnaire.code}-v{self.version}")

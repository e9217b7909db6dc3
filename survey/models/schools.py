"""Schools and their classes, for "small hand pulls big hand" (小手拉大手) campaigns."""
from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from survey.models.areas import Area
from survey.models.base import Base

GRADE_BANDS = {1: "P1-3", 2: "P1-3", 3: "P1-3", 4: "P4-6", 5: "P4-6", 6: "P4-6",
               7: "J1-3", 8: "J1-3", 9: "J1-3", 10: "S1-3", 11: "S1-3", 12: "S1-3"}


class School(Base):
    __tablename__ = "school"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    district_id: Mapped[int] = mapped_column(ForeignKey("area.id"), index=True)

    district: Mapped[Area] = relationship()
    classes: Mapped[list[SchoolClass]] = relationship(back_populates="school", order_by="SchoolClass.grade, SchoolClass.name")

    __table_args__ = (UniqueConstraint("district_id", "name"),)


class SchoolClass(Base):
    __tablename__ = "school_class"
    __table_args__ = (
        UniqueConstraint("school_id", "name"),
        CheckConstraint("grade BETWEEN 1 AND 12", name="grade"),
        CheckConstraint("pupils > 0", name="pupils"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    grade: Mapped[int] = mapped_column(Integer)
    pupils: Mapped[int] = mapped_column(Integer)

    school: Mapped[School] = relationship(back_populates="classes")

    @property
    def grade_band(self) -> str:
        return GRADE_BANDS[self.grade]

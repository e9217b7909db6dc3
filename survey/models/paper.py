"""Print runs of numbered paper questionnaires: which serials a community's papers carry in a wave."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from survey.models.areas import Area
from survey.models.base import Base, UTCDateTime, utcnow
from survey.models.users import User
from survey.models.waves import Wave


class PaperBatch(Base):
    """One print run: copies numbered ``first_number`` to ``last_number`` for a community in a wave.

    Numbers run on per wave and community across questionnaires (a paper's serial is its key
    within wave and community, whatever the questionnaire); the unique start number makes two
    print runs racing for the same numbers fail instead of overlapping.
    """

    __tablename__ = "paper_batch"
    __table_args__ = (
        UniqueConstraint("wave_id", "area_id", "first_number"),
        CheckConstraint("first_number >= 1 AND last_number >= first_number", name="numbers"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("wave.id"))
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id"), index=True)
    questionnaire_code: Mapped[str] = mapped_column(String(64))
    first_number: Mapped[int] = mapped_column(Integer)
    last_number: Mapped[int] = mapped_column(Integer)
    # The office account that printed; empty for the command line.
    printed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    wave: Mapped[Wave] = relationship()
    area: Mapped[Area] = relationship()
    printed_by: Mapped[User | None] = relationship()

    @property
    def copies(self) -> int:
        return self.last_number - self.first_number + 1

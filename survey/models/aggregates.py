"""Sufficient statistics of a wave's responses, kept up to a watermark (see ``survey/aggregates.py``)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from survey.models.base import Base, UTCDateTime, utcnow

ID = BigInteger().with_variant(Integer, "sqlite")


class AggregateState(Base):
    """What the aggregate of one wave and questionnaire holds: its plan, watermark and checksum."""

    __tablename__ = "aggregate_state"
    __table_args__ = (UniqueConstraint("wave_id", "questionnaire_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("wave.id", ondelete="CASCADE"))
    questionnaire_code: Mapped[str] = mapped_column(String(64))
    # {"unit": ..., "attributes": [...], "versions": [...]}: another plan means a full rebuild.
    plan: Mapped[dict] = mapped_column(JSON)
    # Every response of the wave's versions with id <= watermark is in the statistics, no other;
    # count and sum of their ids catch a deletion or a late commit below it (then: full rebuild).
    watermark: Mapped[int] = mapped_column(ID, default=0)
    responses: Mapped[int] = mapped_column(ID, default=0)
    id_sum: Mapped[int] = mapped_column(ID, default=0)
    # Watermarks read by earlier refreshes that were not yet safe to add: [[server time, max id], ...].
    pending: Mapped[list] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AggregateCell(Base):
    """One area x weighting-attribute combination (``attrs``: a JSON array of the attribute values)."""

    __tablename__ = "aggregate_cell"
    __table_args__ = (UniqueConstraint("state_id", "area_id", "attrs"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    state_id: Mapped[int] = mapped_column(ForeignKey("aggregate_state.id", ondelete="CASCADE"))
    area_id: Mapped[int] = mapped_column(Integer)
    attrs: Mapped[str] = mapped_column(Text)


class AggregateScore(Base):
    """n, sum and sum of squares of respondent scores per cell x version x channel x flagged."""

    __tablename__ = "aggregate_score"

    state_id: Mapped[int] = mapped_column(ForeignKey("aggregate_state.id", ondelete="CASCADE"), primary_key=True)
    cell_id: Mapped[int] = mapped_column(ID, primary_key=True)
    version_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    flagged: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    n: Mapped[int] = mapped_column(ID)
    total: Mapped[float] = mapped_column(Float)
    total_sq: Mapped[float] = mapped_column(Float)


class AggregateChoice(Base):
    """Answer counts per cell x version x flagged x item x choice.

    No foreign key to the state (migration 0012): checking it cost a full build a second for its
    half million rows; ``survey/aggregates.py`` deletes a state's rows with it (STATE_ROWS).
    """

    __tablename__ = "aggregate_choice"

    state_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cell_id: Mapped[int] = mapped_column(ID, primary_key=True)
    version_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flagged: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    item_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    choice_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    n: Mapped[int] = mapped_column(ID)


class AggregateFlagged(Base):
    """The aggregated responses counted as flagged, so a flag set or cleared later moves them."""

    __tablename__ = "aggregate_flagged"

    state_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # no foreign key: see AggregateChoice
    response_id: Mapped[int] = mapped_column(ID, primary_key=True)

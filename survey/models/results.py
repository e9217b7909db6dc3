"""Population margins and stored analysis results, so pages read numbers instead of computing."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from survey.models.areas import Area
from survey.models.base import Base, UTCDateTime, utcnow
from survey.models.waves import Wave


class PopulationMargin(Base):
    """A raking target: e.g. (sex, F, 4430953). Community totals default to areas' population."""

    __tablename__ = "population_margin"
    __table_args__ = (UniqueConstraint("questionnaire_code", "variable", "category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    questionnaire_code: Mapped[str] = mapped_column(String(64), default="citizen")
    variable: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(64))
    total: Mapped[float] = mapped_column(Float)


class SampleDesign(Base):
    """The sampling design of an imported designed sample (a third-party assessment): a wave's
    questionnaire analysed as R's ``svydesign(ids=~A+B, strata=~S, fpc=~F1+F2, weights=~W)`` then raked.

    The columns name response attributes (``response.attributes``) the import stored with every
    response; ``cluster`` and ``fpc`` take one attribute per stage joined by ``+``. Without a
    cluster the respondents are the PSUs: ``cluster`` is then the respondent id attribute.
    """

    __tablename__ = "sample_design"
    __table_args__ = (UniqueConstraint("wave_id", "questionnaire_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("wave.id", ondelete="CASCADE"))
    questionnaire_code: Mapped[str] = mapped_column(String(64))
    weights: Mapped[str | None] = mapped_column(String(200))
    strata: Mapped[str | None] = mapped_column(String(200))
    cluster: Mapped[str] = mapped_column(String(200))
    fpc: Mapped[str | None] = mapped_column(String(200))
    lonely_psu: Mapped[str] = mapped_column(String(16), default="fail")
    source: Mapped[str | None] = mapped_column(String(200))  # the imported file's name
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AnalysisRun(Base):
    """One analysis of one questionnaire in one wave; the newest run of a wave is the one shown."""

    __tablename__ = "analysis_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("wave.id"), index=True)
    questionnaire_code: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    respondents: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict] = mapped_column(JSON)  # city figures, rake diagnostics, notes

    wave: Mapped[Wave] = relationship()
    areas: Mapped[list[AreaResult]] = relationship(back_populates="run", cascade="all, delete-orphan")


class AreaResult(Base):
    """Satisfaction of one area (community, street, district or city) in a run."""

    __tablename__ = "area_result"
    __table_args__ = (UniqueConstraint("run_id", "area_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_run.id", ondelete="CASCADE"))
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id"), index=True)
    level: Mapped[str] = mapped_column(String(16))
    n: Mapped[int] = mapped_column(Integer)
    estimate: Mapped[float] = mapped_column(Float)
    se: Mapped[float] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    n_eff: Mapped[float] = mapped_column(Float)
    population: Mapped[float] = mapped_column(Float)
    eb_estimate: Mapped[float | None] = mapped_column(Float)
    eb_mse: Mapped[float | None] = mapped_column(Float)
    prob_below_80: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str | None] = mapped_column(String(16))
    points_at_stake: Mapped[float | None] = mapped_column(Float)
    share_of_lost: Mapped[float | None] = mapped_column(Float)
    rank_by_cost: Mapped[int | None] = mapped_column(Integer)
    df: Mapped[float | None] = mapped_column(Float)  # the design's degrees of freedom of the interval
    # "" or why the variance is unusable: single_psu (inside one PSU per stratum), zero_variance (answers alike)
    variance_warning: Mapped[str | None] = mapped_column(String(16))
    answers_to_decide: Mapped[int | None] = mapped_column(Integer)  # decide the flag with 80% probability

    run: Mapped[AnalysisRun] = relationship(back_populates="areas")
    area: Mapped[Area] = relationship()


class ItemResult(Base):
    """One item (topic score or yes-type rate) in one area in a run: the heatmap's cells."""

    __tablename__ = "item_result"
    __table_args__ = (Index("ix_item_result_run_area", "run_id", "area_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_run.id", ondelete="CASCADE"))
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id"))
    item_code: Mapped[str] = mapped_column(String(32))
    n: Mapped[int] = mapped_column(Integer)
    estimate: Mapped[float] = mapped_column(Float)
    se: Mapped[float] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    eb_estimate: Mapped[float | None] = mapped_column(Float)

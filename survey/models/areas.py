"""Administrative areas: city, district, street, community, grid."""
from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from survey.models.base import Base

LEVELS = ("city", "district", "street", "community", "grid")
LEVEL_NAMES = {"city": "市", "district": "区/县", "street": "街道/乡镇", "community": "社区/村", "grid": "网格"}


class Area(Base):
    __tablename__ = "area"
    __table_args__ = (CheckConstraint("level IN ('city','district','street','community','grid')", name="level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("area.id"), index=True)
    adult_population: Mapped[int | None] = mapped_column(Integer)
    responsible_unit: Mapped[str | None] = mapped_column(String(200))
    # Materialized path of ancestor ids ("/1/4/17/"), so scoping a subtree is one LIKE.
    path: Mapped[str] = mapped_column(String(400), index=True, default="/")

    parent: Mapped[Area | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Area]] = relationship(back_populates="parent")

    def __repr__(self) -> str:
        return f"<Area {self.level} {self.code} {self.name}>"

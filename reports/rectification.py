"""The rectification 通报 as a PDF: 整改率 rankings, lowest first (倒数名次: 1 is the lowest) (numbers in, document out)."""
from __future__ import annotations

from dataclasses import dataclass

from reports.pdf import render_pdf


@dataclass(frozen=True)
class BulletinRow:
    rank: int
    name: str
    note: str
    due: int
    closed: int
    rate: float | None
    on_time: int
    on_time_rate: float | None
    overdue_open: int


@dataclass(frozen=True)
class Bulletin:
    title: str
    area_name: str
    grouping: str
    period: str
    generated: str
    total: BulletinRow
    rows: list[BulletinRow]
    lowest: list[BulletinRow]  # named in the text: the lowest with tasks due
    note_heading: str = "所属/联系人"  # what BulletinRow.note holds: a unit's contact, an area's parent


def bulletin_pdf(bulletin: Bulletin) -> bytes:
    return render_pdf("rectification_bulletin.html", b=bulletin)

"""CSV and XLSX exports with Chinese headers; cells that a spreadsheet would run are neutralised."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from forms import Definition
from survey.localtime import format_local
from survey.models import Area, Response
from survey.quality import FLAG_NAMES
from survey.scope import within

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHANNEL_NAMES = {"qr": "扫码", "school": "学校", "paper": "纸质"}


def safe_cell(value):
    """Return a value a spreadsheet shows as text, never runs as a formula.

    >>> safe_cell("=HYPERLINK(1)"), safe_cell("-3"), safe_cell(-3), safe_cell("好")
    ("'=HYPERLINK(1)", "'-3", -3, '好')
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(headers: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    """Return UTF-8 CSV with a byte-order mark, so Excel shows the Chinese headers."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if v is None else safe_cell(v) for v in row])
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(headers: Sequence[str], rows: Iterable[Sequence], title: str) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title[:31])
    sheet.append(list(headers))
    for row in rows:
        sheet.append([safe_cell(v) for v in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def response_table(
    session: Session, area: Area, wave_id: int, definition: Definition, version_ids: list[int]
) -> tuple[list[str], list[list]]:
    """Return the responses of a wave to one questionnaire in the area's subtree: a row each, a column per item."""
    items = definition.items
    headers = ["编号", "社区编码", "社区", "渠道", "提交时间", "用时(秒)", "满意度得分", "数据质量标记"]
    headers += [f"{i.code} {i.short_label if i.type == 'rating' else i.label_en}" for i in items]
    responses = session.execute(
        select(Response, Area)
        .join(Area, Area.id == Response.area_id)
        .where(Response.wave_id == wave_id, Response.questionnaire_version_id.in_(version_ids), within(area))
        .options(selectinload(Response.answers))
        .order_by(Response.id)
    ).all()
    rows = []
    for response, community in responses:
        answers = {a.item_code: (a.text if a.text is not None else a.choice_code) for a in response.answers}
        rows.append(
            [response.id, community.code, community.name, CHANNEL_NAMES.get(response.channel, response.channel),
             format_local(response.submitted_at), round(response.duration_s) if response.duration_s else None,
             round(response.score, 2) if response.score is not None else None,
             "、".join(name for flag, name in FLAG_NAMES.items() if getattr(response, flag)) or None]
            + [answers.get(i.code) for i in items]
        )
    return headers, rows

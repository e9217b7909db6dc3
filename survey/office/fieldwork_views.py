"""/office/fieldwork: the fieldwork monitor page and its CSV (the plan itself: survey/reading/fieldwork.py)."""
from __future__ import annotations

import math
from datetime import UTC, datetime
from urllib.parse import quote

from flask import Blueprint, Response, render_template, request

from survey import db
from survey.auth import login_required, staff_user
from survey.models import Area, ExportLog
from survey.reading.exports import Column, Table, csv_chunks
from survey.reading.fieldwork import SORTS, STATUS_TEXT, FieldworkPlan, cached_city_plan, current_wave, fieldwork_plan
from survey.scope import breadcrumbs, scoped_area

CSV_COLUMNS = [
    Column("seq", "序号", "int"), Column("community_code", "社区编码"), Column("community", "社区"),
    Column("street", "街道"), Column("answers", "已回收答卷", "int"), Column("status", "状态"),
    Column("estimate", "当前估计（分）", "float"), Column("answers_to_decide", "判定状态还需答卷（80%把握）", "int"),
    Column("half_width", "当前95%区间半宽（分）", "float"), Column("answers_for_precision", "达到目标精度还需答卷", "int"),
    Column("priority", "优先度（每份答卷使全市方差减少）", "float"), Column("city_rank", "全市优先次序", "int"),
    Column("groups_short", "缺少的人群（需补充答卷）"),
]


def _request_plan() -> FieldworkPlan:
    session = db.session()
    user = staff_user()
    code = request.args.get("area", type=str) or user.area.code
    place = scoped_area(session, user, code)
    sort = request.args.get("sort", "priority")
    wave = current_wave(session)
    return fieldwork_plan(session, place, sort=sort if sort in SORTS else "priority", wave=wave,
                          city=cached_city_plan(session, wave))


def page():
    """The fieldwork page: one row per community of the user's area, highest priority first."""
    plan = _request_plan()
    sort = request.args.get("sort", "priority")
    return render_template("office/fieldwork.html", plan=plan, area=plan.area, sorts=SORTS,
                           sort=sort if sort in SORTS else "priority", status_text=STATUS_TEXT,
                           breadcrumbs=_breadcrumbs(plan.area))


def csv_export():
    """The plan as CSV (UTF-8 with BOM, Chinese headers, one column per group), logged like the other exports."""
    plan = _request_plan()
    columns = CSV_COLUMNS + [Column(f"more_{key}", f"需补充：{label}", "int") for key, label in plan.group_columns]

    def rows():
        for seq, r in enumerate(plan.rows, start=1):
            yield (seq, r.community.code, r.community.name, r.street, r.answers, STATUS_TEXT.get(r.status, r.status),
                   None if r.estimate is None else round(r.estimate, 2), r.answers_to_decide,
                   None if r.half_width is None else round(r.half_width, 2), r.answers_for_precision,
                   None if math.isinf(r.priority) or math.isnan(r.priority) else float(f"{r.priority:.6g}"), r.city_rank,
                   "；".join(f"{g.label} {g.more}" for g in r.groups),
                   *(r.more_by_group.get(key) for key, _ in plan.group_columns))

    table = Table("fieldwork", "调查进度", columns, len(plan.rows), rows, code_row=False)
    session = db.session()
    with db.write_transaction(session):
        session.add(ExportLog(user_id=staff_user().id, what="fieldwork", area_id=plan.area.id,
                              wave_id=plan.wave.id if plan.wave else None, file_format="csv", rows=table.total,
                              created_at=datetime.now(UTC)))
    body = b"".join(csv_chunks(table))
    filename = f"调查进度-{plan.area.name}-{plan.wave.name if plan.wave else '无轮次'}.csv"
    response = Response(body, mimetype="text/csv")  # Werkzeug adds the charset
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _breadcrumbs(area: Area) -> list[Area]:
    return breadcrumbs(staff_user(), area)


def register(bp: Blueprint) -> None:
    """Add the fieldwork page and its CSV to the office blueprint (``office.fieldwork``, ``office.fieldwork_csv``)."""
    bp.add_url_rule("/fieldwork", "fieldwork", login_required(page))
    bp.add_url_rule("/fieldwork.csv", "fieldwork_csv", login_required(csv_export))

"""/rectification/: units, tasks from the problem list, the unit's landing page, reports with photos, 销号.

Views parse the request, check the account's scope (survey/scope.py: an office its area, a unit
account its unit's communities and tasks) and call plain functions in units.py, tasks.py and
photos.py. Every write is one transaction (db.write_transaction).
"""
from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, send_file, url_for
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from sqlalchemy import func, select
from wtforms import SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length

from survey import db
from survey.auth import login_required, role_required, staff_user
from survey.ids import query_id
from survey.localtime import format_local, now_local, parse_local, to_local
from survey.models import OFFICE_ROLES, PRIORITIES, AnalysisRun, Area, ItemResult, Task, TaskPhoto, Unit
from survey.reading import dashboard, wave_changes
from survey.reading.exports import FORMATS, Column, Table, csv_chunks, write_xlsx
from survey.rectification import photos
from survey.rectification.commands import register as register_commands
from survey.rectification.proof import league
from survey.rectification.proof import proof as next_wave_proof
from survey.rectification.rates import GROUPINGS, groupings_for
from survey.rectification.rates import rates as compute_rates
from survey.rectification.tasks import (
    ACTION_NAMES,
    ACTIONS,
    OPEN,
    PRIORITY_NAMES,
    STATUS_NAMES,
    Pick,
    TaskError,
    create_tasks,
    is_overdue,
    may_act,
    task_count,
    task_for,
    task_list,
    transition,
    visible,
)
from survey.rectification.units import UnitError, save_unit, split_codes, unit_of, units_by_community
from survey.scope import in_scope, scoped_area, visible_units, within
from survey.security import allow_upload

bp = Blueprint("rectification", __name__, url_prefix="/rectification", template_folder="templates", cli_group=None)
staff_required = role_required(*OFFICE_ROLES, "unit")
city_required = role_required("city")
register_commands(bp)  # flask import-units, flask create-unit-account
MAX_PICKS = 100
TASK_PAGE_ROWS = 100  # the task list a page at a time (?page=N, links without JavaScript)
MAX_TERM = 50


class UnitForm(FlaskForm):
    name = StringField("单位名称", validators=[InputRequired("请填写单位名称"), Length(max=200, message="最多200个字")])
    contact = StringField("联系人", validators=[Length(max=100, message="最多100个字")])
    phone = StringField("联系电话", validators=[Length(max=40, message="最多40个字")])
    communities = TextAreaField("帮包社区（社区编码，用分号、顿号或空格隔开）", validators=[Length(max=4000, message="最多4000个字")])
    grids = TextAreaField("包保网格/楼栋（可不填）", validators=[Length(max=1000, message="最多1000个字")])


class NewTasksForm(FlaskForm):
    deadline = StringField("整改期限（日期，如 2026-12-31，当天24点前）", validators=[InputRequired("请填写整改期限")])
    priority = SelectField("优先级", choices=[SelectChoice(p, PRIORITY_NAMES[p]) for p in PRIORITIES], default="normal")
    detail = TextAreaField("整改要求（可不填）", validators=[Length(max=4000, message="最多4000个字")])


class ReportForm(FlaskForm):
    note = TextAreaField("整改情况", validators=[InputRequired("请写明整改情况"), Length(max=4000, message="最多4000个字")])
    photos = MultipleFileField(f"整改照片（JPEG、PNG 或 WebP，每张不超过{photos.MAX_BYTES // (1024 * 1024)}MB，"
                               f"最多{photos.MAX_PHOTOS}张）")


class NoteForm(FlaskForm):
    note = TextAreaField("说明", validators=[Length(max=4000, message="最多4000个字")])


@bp.url_value_preprocessor
def _upload_size(endpoint: str | None, values) -> None:
    """Allow a report's photos in the body (runs before the CSRF check reads it)."""
    if endpoint == "rectification.act" and (values or {}).get("action") == "report":
        allow_upload(photos.MAX_PHOTOS * photos.MAX_BYTES + 256 * 1024)


@bp.after_request
def _private(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "private, no-store")
    return response


@bp.app_template_filter("deadline")
def _deadline_text(moment: datetime) -> str:
    """A deadline at local midnight is the end of the day before: shown as 2026-12-31 24:00, as it was typed."""
    local = to_local(moment)
    if (local.hour, local.minute, local.second) == (0, 0, 0):
        return (local - timedelta(days=1)).strftime("%Y-%m-%d") + " 24:00"
    return local.strftime("%Y-%m-%d %H:%M")


@bp.app_context_processor
def _globals():
    return {"task_status_names": STATUS_NAMES, "priority_names": PRIORITY_NAMES, "is_overdue": is_overdue,
            "rectification_units": _problem_units, "rectification_tasks": _problem_tasks,
            "rectification_unit_name": _unit_name}


def _unit_name(user) -> str:
    """The unit a unit account belongs to, for the page header."""
    unit = unit_of(db.session(), user)
    return unit.name if unit is not None else ""


def _problem_units(problems) -> dict[int, str]:
    """{community id: its units' names}, for the problem list's 责任单位 column."""
    found = units_by_community(db.session(), list({p.community.id for p in problems}))
    return {area_id: "、".join(u.name for u in units) for area_id, units in found.items()}


def _problem_tasks(problems) -> dict[tuple[int, str | None], Task]:
    """{(community id, item code): its newest task}, for the problem list's 整改 column."""
    ids = list({p.community.id for p in problems})
    if not ids:
        return {}
    rows = db.session().scalars(select(Task).where(Task.area_id.in_(ids), Task.item_code.is_not(None)).order_by(Task.id))
    return {(t.area_id, t.item_code): t for t in rows}


# Pages --------------------------------------------------------------------------------------------

@bp.get("/")
@staff_required
def home():
    """A unit's landing page (what is due, its communities); an office's task list."""
    user = staff_user()
    session = db.session()
    if user.role != "unit":
        return redirect(url_for("rectification.tasks"))
    unit = unit_of(session, user) or abort(403)
    found = task_list(session, user)
    now = datetime.now(UTC)
    return render_template("rectification/unit_home.html", unit=unit, tasks=found, now=now,
                           overdue=sum(is_overdue(t, now) for t in found),
                           communities=_community_scores(session, unit.communities))


def _community_scores(session, communities: list[Area]) -> list[tuple[Area, object]]:
    """Each community with its result in the newest run of the city's questionnaire (None without one)."""
    analysed = dashboard.analysed_questionnaires(session)
    runs = dashboard.runs_by_wave(session, next(iter(analysed), "citizen"))
    run = runs[-1] if runs else None
    return [(a, dashboard.area_result(session, run, a) if run else None) for a in communities]


@bp.get("/tasks")
@login_required
def tasks():
    """The office's tasks: filters by status, unit and overdue; counts per status."""
    user = staff_user()
    session = db.session()
    status = request.args.get("status")
    unit_id = request.args.get("unit", type=query_id)
    overdue = request.args.get("overdue") == "1"
    now = datetime.now(UTC)
    page = dashboard.Page.of(request.args.get("page"), TASK_PAGE_ROWS, task_count(session, user, status, unit_id, overdue, now))
    found = task_list(session, user, status, unit_id, overdue, now, limit=page.size, offset=page.offset)
    counts = dict(session.execute(visible(session, user).with_only_columns(Task.status, func.count(Task.id))
                                  .group_by(Task.status)).all())
    late = session.scalar(visible(session, user).with_only_columns(func.count(Task.id))
                          .where(Task.status.in_(OPEN), Task.deadline < now))
    communities = list(session.scalars(select(Area).where(within(user.area), Area.level == "community").order_by(Area.code)))
    return render_template("rectification/tasks.html", tasks=found, page=page, counts=counts, late=late, now=now, status=status,
                           unit_id=unit_id, overdue=overdue, units=visible_units(session, user), communities=communities)


@bp.get("/tasks/<int:task_id>")
@staff_required
def task(task_id: int):
    session = db.session()
    user = staff_user()
    found = task_for(session, user, task_id)
    return _task_page(found)


def _task_page(found: Task, error: str | None = None, status: int = 200, report: ReportForm | None = None):
    session = db.session()
    user = staff_user()
    allowed = [a for a in ACTIONS if may_act(session, user, found, a)]
    return render_template("rectification/task.html", task=found, allowed=allowed, error=error, now=datetime.now(UTC),
                           proof=next_wave_proof(session, found),
                           report_form=report or ReportForm(formdata=None), note_form=NoteForm(formdata=None),
                           action_names=ACTION_NAMES, max_photos=photos.MAX_PHOTOS), status


@bp.post("/tasks/<int:task_id>/<action>")
@staff_required
def act(task_id: int, action: str):
    """Take a step of the status machine: start, report (text + photos), close (销号), return (退回)."""
    if action not in ACTIONS:
        abort(404)
    session = db.session()
    user = staff_user()
    found = task_for(session, user, task_id)
    form = ReportForm() if action == "report" else NoteForm()
    if not form.validate_on_submit():
        messages = "；".join(m for field in form.errors.values() for m in field)
        return _task_page(found, messages or "表单已过期，请重试", 400 if "csrf_token" in form.errors else 422,
                          form if action == "report" else None)
    note = form.note.data or ""
    stored: list[photos.StoredPhoto] = []
    instance = current_app.instance_path
    try:
        if action == "report":
            uploads = [f for f in form.photos.data or [] if f and f.filename]
            if len(uploads) > photos.MAX_PHOTOS:
                raise TaskError(f"最多{photos.MAX_PHOTOS}张照片")
            if not may_act(session, user, found, action):  # before any file is written
                raise TaskError(f"本账号不能对这项任务{ACTION_NAMES[action]}")
            for upload in uploads:
                stored.append(photos.store(instance, upload.stream.read(photos.MAX_BYTES + 1), upload.filename))
        with db.write_transaction(session):
            found = session.get(Task, task_id) or abort(404)  # read again in the write (task_for found it)
            event = transition(session, user, found, action, note)
            for photo in stored:
                session.add(TaskPhoto(task_id=found.id, event_id=event.id, stored_name=photo.name, width=photo.width,
                                      height=photo.height, size=photo.size, uploaded_by_id=user.id))
    except (TaskError, photos.PhotoError) as exc:
        photos.remove(instance, [p.name for p in stored])
        session.rollback()
        return _task_page(session.get(Task, task_id) or abort(404), str(exc), 422, form if action == "report" else None)
    except BaseException:
        photos.remove(instance, [p.name for p in stored])
        raise
    return redirect(url_for("rectification.task", task_id=task_id), 303)


@bp.get("/photos/<int:photo_id>")
@staff_required
def photo(photo_id: int):
    """Send a report photo to an account that may see its task (404 for anyone else)."""
    session = db.session()
    found = session.get(TaskPhoto, photo_id) or abort(404)
    task_for(session, staff_user(), found.task_id)
    path = photos.path_of(current_app.instance_path, found.stored_name)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype="image/jpeg", download_name=f"photo-{found.id}.jpg")
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/community/<code>")
@role_required("unit")
def community(code: str):
    """A unit's helped community: its satisfaction and topics in the newest run (other communities: 404)."""
    session = db.session()
    user = staff_user()
    place = scoped_area(session, user, code)
    analysed = dashboard.analysed_questionnaires(session)
    runs = dashboard.runs_by_wave(session, next(iter(analysed), "citizen"))
    run = runs[-1] if runs else None
    topics = dashboard.topic_results(session, run, place, dashboard.run_definition(run)) if run else []
    history = dashboard.trend(session, place, run.questionnaire_code) if run else []
    own = [t for t in task_list(session, user) if t.area_id == place.id]
    return render_template("rectification/community.html", area=place, run=run, topics=topics, history=history,
                           result=dashboard.area_result(session, run, place) if run else None, tasks=own,
                           now=datetime.now(UTC))


# New tasks from the problem list ------------------------------------------------------------------

def _picks(session, place: Area) -> tuple[list[Pick], AnalysisRun | None]:
    """Read the chosen problems (?pick=item:<community>:<item>, or ?community=&term=) against the stored run."""
    user = staff_user()
    code = request.args.get("q")
    analysed = dashboard.analysed_questionnaires(session)
    if code and code not in analysed:
        abort(404)
    runs = dashboard.runs_by_wave(session, code or next(iter(analysed), "citizen"))
    wave_id = request.args.get("wave", type=query_id)
    chosen = [r for r in runs if r.wave_id == wave_id] if wave_id else runs[-1:]
    run = chosen[0] if chosen else None
    definition = dashboard.run_definition(run) if run else None
    picks: list[Pick] = []
    values = list(dict.fromkeys(request.args.getlist("pick")))[:MAX_PICKS]
    if request.args.get("community") and request.args.get("term", "").strip():
        values.append(f"term:{request.args['community']}:{request.args['term'].strip()[:MAX_TERM]}")
    for value in values:
        kind, _, rest = value.partition(":")
        community_code, _, what = rest.partition(":")
        area = session.scalar(select(Area).where(Area.code == community_code))
        if area is None or area.level != "community" or not area.path.startswith(place.path) or not what:
            abort(404)
        scoped_area(session, user, area.code)
        if kind == "term":
            picks.append(Pick(area, f"{area.name}：群众反映“{what}”问题整改", term=what, wave_id=run.wave_id if run else None))
        elif kind == "item" and run is not None and definition is not None and what in definition.column_names:
            topic = definition.column_names[what]
            result = session.scalar(select(ItemResult).where(ItemResult.run_id == run.id, ItemResult.area_id == area.id,
                                                             ItemResult.item_code == what))
            score = result.estimate if result else None
            title = f"{area.name}“{topic}”满意度" + (f"{score:.1f}分，低于80分" if score is not None else "偏低") + "，整改提升"
            picks.append(Pick(area, title, run.questionnaire_code, what, topic, None, run.wave_id, score))
        else:
            abort(404)
    return picks, run


@bp.route("/area/<code>/new", methods=["GET", "POST"])
@login_required
def new_tasks(code: str):
    """Turn the chosen problems into tasks: one row per problem (name, unit), one deadline and priority for all."""
    session = db.session()
    user = staff_user()
    place = scoped_area(session, user, code)
    picks, run = _picks(session, place)
    units = visible_units(session, user)
    defaults = units_by_community(session, [p.area.id for p in picks])
    form = NewTasksForm()
    error, status = None, 200
    if not picks:
        error, status = "请先在问题清单里勾选要整改的问题，或填写社区和投诉热词", 200 if request.method == "GET" else 422
    elif form.validate_on_submit():
        by_id = {u.id: u for u in units}
        try:
            deadline = _deadline(form.deadline.data)
            chosen = []
            for i, pick in enumerate(picks):
                unit = by_id.get(request.form.get(f"unit_{i}", type=int) or 0)
                if unit is None:
                    raise TaskError(f"第{i + 1}条没有选择责任单位")
                title = " ".join(request.form.get(f"title_{i}", "").split()) or pick.title  # a textarea: one line
                chosen.append((Pick(pick.area, title, pick.questionnaire_code, pick.item_code, pick.topic, pick.term,
                                    pick.wave_id, pick.score_before), unit))
            with db.write_transaction(session):
                made = create_tasks(session, user, chosen, deadline, form.priority.data, form.detail.data or "")
        except TaskError as exc:
            session.rollback()
            error, status = str(exc), 422
        else:
            return redirect(url_for("rectification.tasks", created=len(made)), 303)
    elif request.method == "POST":
        error, status = "；".join(m for field in form.errors.values() for m in field) or "表单已过期，请重试", 422
    if request.method == "GET" and not form.deadline.data:
        form.deadline.data = format_local(now_local() + timedelta(weeks=4), "%Y-%m-%d")
    return render_template("rectification/new_tasks.html", area=place, run=run, picks=picks, units=units, form=form,
                           defaults=defaults, error=error), status


def _deadline(text: str) -> datetime:
    """A typed date is the end of that day in local time (the next midnight); a time is taken as it is."""
    try:
        moment = parse_local(text)
    except ValueError:
        raise TaskError("整改期限要写成日期，如 2026-12-31") from None
    if "T" not in text and " " not in text.strip():
        moment += timedelta(days=1)
    return moment


# Units --------------------------------------------------------------------------------------------

@bp.get("/units")
@login_required
def units():
    session = db.session()
    user = staff_user()
    found = visible_units(session, user, with_communities=True)
    # What an office below the city sees of a unit stops at its own area: the communities there, the open tasks there.
    scoped = visible(session, user).subquery()
    open_counts: dict[int, int] = dict(session.execute(select(scoped.c.unit_id, func.count()).where(scoped.c.status.in_(OPEN))
                                       .group_by(scoped.c.unit_id)).all())
    communities = {u.id: [a for a in u.communities if user.role == "unit" or in_scope(user, a)] for u in found}
    return render_template("rectification/units.html", units=found, open_counts=open_counts, communities=communities,
                           can_edit=user.role == "city")


@bp.route("/units/new", methods=["GET", "POST"], defaults={"unit_id": None})
@bp.route("/units/<int:unit_id>", methods=["GET", "POST"])
@city_required
def unit_edit(unit_id: int | None):
    session = db.session()
    unit = session.get(Unit, unit_id) if unit_id else None
    if unit_id and unit is None:
        abort(404)
    form = UnitForm(obj=None if request.method == "POST" else unit)
    if request.method == "GET" and unit is not None:
        form.communities.data = "；".join(a.code for a in unit.communities)
    error, status = None, 200
    if form.validate_on_submit():
        try:
            with db.write_transaction(session):
                target = session.get(Unit, unit_id) if unit_id else None
                save_unit(session, target, form.name.data, form.contact.data or "", form.phone.data or "",
                          split_codes(form.communities.data or ""), form.grids.data or "")
        except UnitError as exc:
            session.rollback()
            error, status = str(exc), 422
        else:
            return redirect(url_for("rectification.units"), 303)
    elif request.method == "POST":
        error, status = "；".join(m for field in form.errors.values() for m in field) or "表单已过期，请重试", 422
    return render_template("rectification/unit_edit.html", unit=unit, form=form, error=error), status


# Rates and rankings (the 通报) --------------------------------------------------------------------

def _period() -> tuple[datetime, datetime, str, str]:
    """The period typed as local dates ?from=&to= (both days included); the last 28 days by default."""
    today = now_local().date()
    start_text = request.args.get("from") or (today - timedelta(days=27)).isoformat()
    end_text = request.args.get("to") or today.isoformat()
    try:
        start, end = parse_local(start_text), parse_local(end_text) + timedelta(days=1)
    except ValueError:
        abort(400)
    if end <= start:
        abort(400)
    return start, end, start_text, end_text


def _rates_table(rows, total) -> Table:
    columns = [Column("rank", "倒数名次", "int"), Column("name", "名称"), Column("note", "所属/联系人"),
               Column("due", "到期任务", "int"), Column("closed", "已销号", "int"), Column("rate", "整改率(%)", "float"),
               Column("on_time", "按期销号", "int"), Column("on_time_rate", "按期率(%)", "float"),
               Column("overdue_open", "逾期未改", "int")]

    def pct(value):
        return None if value is None else round(100 * value, 1)

    def lines():
        for rank, r in enumerate(rows, start=1):
            yield (rank if r.due else None, r.name, r.note, r.due, r.closed, pct(r.rate), r.on_time, pct(r.on_time_rate),
                   r.overdue_open)
        yield (None, "合计", "", total.due, total.closed, pct(total.rate), total.on_time, pct(total.on_time_rate),
               total.overdue_open)

    return Table("rectification_rates", "整改率排名", columns, len(rows) + 1, lines, code_row=False)


@bp.get("/rates", defaults={"fmt": None})
@bp.get("/rates.<fmt>")
@login_required
def rates_page(fmt: str | None):
    """整改率 and on-time rate by unit or by area level over a period, lowest first; CSV, XLSX and the PDF 通报."""
    session = db.session()
    user = staff_user()
    choices = groupings_for(user)
    by = request.args.get("by") or choices[0]
    if by not in choices or fmt not in (None, "csv", "xlsx", "pdf"):
        abort(404)
    start, end, start_text, end_text = _period()
    now = datetime.now(UTC)
    rows, total = compute_rates(session, user, by, start, end, now)
    name = f"整改率排名-{user.area.name}-按{GROUPINGS[by]}-{start_text}至{end_text}"
    if fmt in ("csv", "xlsx"):
        table = _rates_table(rows, total)
        body = io.BytesIO()
        if fmt == "csv":
            body.write(b"".join(csv_chunks(table)))
        else:
            write_xlsx(table, body)
        return _download(body.getvalue(), FORMATS[fmt], f"{name}.{fmt}")
    if fmt == "pdf":
        from reports.pdf import ReportError
        from reports.rectification import Bulletin, BulletinRow, bulletin_pdf

        def row(rank, r):
            return BulletinRow(rank, r.name, r.note, r.due, r.closed, r.rate, r.on_time, r.on_time_rate, r.overdue_open)

        shown = [row(rank, r) for rank, r in enumerate(rows, start=1)]
        due = [r for r in shown if r.due]
        lowest = [r for r in due if r.rate == due[0].rate][:3] if due else []
        try:
            pdf = bulletin_pdf(Bulletin(f"{user.area.name}整改情况通报", user.area.name, GROUPINGS[by],
                                        f"{start_text} 至 {end_text}", format_local(now), row(0, total), shown, lowest,
                                        "联系人" if by == "unit" else "所属"))
        except ReportError as exc:
            return Response(str(exc), status=503, mimetype="text/plain")
        return _download(pdf, "application/pdf", f"整改情况通报-{user.area.name}-{start_text}至{end_text}.pdf")
    return render_template("rectification/rates.html", rows=rows, total=total, by=by, choices=choices,
                           groupings=GROUPINGS, start=start_text, end=end_text)


def _download(body: bytes, mimetype: str, filename: str) -> Response:
    from urllib.parse import quote

    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/league")
@login_required
def league_page():
    """帮包单位排名: each unit's communities, their satisfaction and change since the last wave, points, 整改率."""
    session = db.session()
    rows, wave, previous = league(session, staff_user(), datetime.now(UTC))
    return render_template("rectification/league.html", rows=rows, wave=wave, previous=previous,
                           fdr_note=wave_changes.FDR_NOTE)

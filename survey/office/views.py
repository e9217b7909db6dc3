"""Office pages: login, area dashboard, community page, problem list, exports, PDF report, QR sheet,
numbered paper questionnaires.

Views parse the request, resolve the area through ``survey.scope`` and call plain functions.
"""
from __future__ import annotations

import math
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    has_request_context,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, Length

from reports.charts import bar_chart_svg, line_chart_svg
from reports.heatmap import heatmap_html
from survey import db, refresh
from survey.appcontext import app_object
from survey.auth import (
    LOGIN_FAILED,
    check_credentials,
    current_user,
    home_endpoint,
    log_in,
    log_out,
    login_required,
    record_login,
    staff_user,
)
from survey.ids import query_id
from survey.limits import LOGIN_LIMIT, limiter
from survey.localtime import format_local
from survey.models import OFFICE_ROLES, AnalysisRun, Area, ExportLog, Wave
from survey.models.areas import LEVEL_NAMES
from survey.models.users import ROLE_NAMES
from survey.office.accounts import MANAGER_ROLES as ACCOUNT_MANAGERS
from survey.office.accounts import register as register_accounts
from survey.office.fieldwork_views import register as register_fieldwork
from survey.office.map_views import register as register_map
from survey.questionnaires import questionnaire_named
from survey.questionnaires import titles as questionnaire_titles
from survey.reading import dashboard, documents, export_jobs, wave_changes
from survey.reading.dashboard import STATUS_NAMES
from survey.reading.exports import FORMATS, WHATS, csv_chunks, export_filename, table_for, write
from survey.scope import breadcrumbs, scoped_area

bp = Blueprint("office", __name__, url_prefix="/office", template_folder="templates")
register_fieldwork(bp)  # /office/fieldwork and /office/fieldwork.csv: the fieldwork monitor (survey/office/fieldwork_views.py)
register_accounts(bp)  # /office/accounts: staff accounts of the viewer's area and below (survey/office/accounts.py)
register_map(bp)  # /office/map, /office/area/<code>/sites, /office/site/<code> (survey/office/map_views.py)
PAGE_ROWS = 200  # longer lists are shown a page at a time (?page=N); the exports have every row
DASHBOARD_AT_RISK = 50  # the dashboard lists the communities that cost most; 查看全部 opens the whole list


class LoginForm(FlaskForm):
    username = StringField("用户名", validators=[InputRequired("请输入用户名"), Length(max=64, message="最多64个字")])
    password = PasswordField("密码", validators=[InputRequired("请输入密码"), Length(max=200, message="最多200个字")])


class PrintForm(FlaskForm):
    """Numbered paper questionnaires for one community; the choices are filled in per request."""

    wave = SelectField("调查轮次", coerce=int, validate_choice=True)
    questionnaire = SelectField("问卷")
    count = IntegerField("份数", default=50, validators=[InputRequired("请填写份数（1到500）")])


class ActionForm(FlaskForm):
    """A form with only the CSRF token (logout)."""


@bp.app_context_processor
def _globals():
    return {"current_user": current_user, "level_names": LEVEL_NAMES, "role_names": ROLE_NAMES,
            "status_names": STATUS_NAMES, "action_form": ActionForm, "refresh_pending": _refresh_pending,
            "account_manager_roles": ACCOUNT_MANAGERS}


def _refresh_pending(run: AnalysisRun) -> bool:
    codes = sorted({v.questionnaire.code for v in run.wave.versions})
    return refresh.pending(app_object(), run.wave_id, codes)


@bp.post("/refresh/<int:wave_id>")
@login_required
def refresh_wave(wave_id: int):
    """The city office's 刷新: queue a refresh of every questionnaire of the wave now, then go back."""
    user = staff_user()
    if user.role != "city":
        abort(403)
    if not ActionForm().validate_on_submit():
        abort(400)
    session = db.session()
    wave = session.get(Wave, wave_id) or abort(404)
    app = app_object()
    for code in sorted({v.questionnaire.code for v in wave.versions}):
        refresh.enqueue(app, wave.id, code, force=True)
    target = request.form.get("next", "")
    return redirect(target if target.startswith("/office/") and not target.startswith("//") else url_for("office.home"), 303)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(LOGIN_LIMIT, methods=["POST"])
def login():
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        session = db.session()
        credentials = check_credentials(session, form.username.data, form.password.data)  # slow: outside the write
        with db.write_transaction(session):
            user = record_login(session, credentials, request.remote_addr)
            if user is not None:
                log_in(session, user)
        if user is None:
            error = LOGIN_FAILED
        else:
            target = request.args.get("next", "")
            home = url_for(home_endpoint(user))
            allowed = target.startswith("/office/") if user.role in OFFICE_ROLES else target.startswith(home)
            return redirect(target if allowed and not target.startswith("//") else home)
    return render_template("office/login.html", form=form, error=error), 200 if error is None else 401


@bp.errorhandler(429)
def _too_many_logins(exc):
    """The login page again, saying 登录 and how long to wait (the hour's limit holds longer than a minute)."""
    if request.endpoint != "office.login":
        return render_template("public/message.html", title="访问太频繁", message="访问太频繁了，请稍等片刻再试。"), 429
    limit = limiter.current_limit
    seconds = max(1, math.ceil(limit.reset_at - time.time())) if limit is not None else 60
    wait = f"{seconds} 秒" if seconds < 60 else f"{math.ceil(seconds / 60)} 分钟"
    error = f"这个网络地址登录太频繁了，请 {wait}后再登录。"
    response = make_response(render_template("office/login.html", form=LoginForm(formdata=None), error=error), 429)
    response.headers["Retry-After"] = str(seconds)
    return response


@bp.post("/logout")
def logout():
    if ActionForm().validate_on_submit():
        session = db.session()
        with db.write_transaction(session):
            log_out(session)
    return redirect(url_for("office.login"))


@bp.get("/")
def home():
    user = current_user()
    if user is None:
        return redirect(url_for("office.login"))
    if user.role not in OFFICE_ROLES:
        return redirect(url_for(home_endpoint(user)))
    return redirect(url_for("office.area", code=user.area.code))


@bp.get("/area/<code>/schools")
@login_required
def schools(code: str):
    """Participation of the schools in the area: counts only, never answers."""
    from survey.schools import participation_by_school
    from survey.waves import latest_wave

    session = db.session()
    place = scoped_area(session, staff_user(), code)
    wave = latest_wave(session)
    rows = participation_by_school(session, place, wave.id) if wave else []
    return render_template("office/schools.html", area=place, wave=wave, rows=rows, breadcrumbs=_breadcrumbs(place))


def _area_and_run(code: str) -> tuple:
    """Return the request's session, the user's area ``code`` (404 outside their scope) and the run."""
    session = db.session()
    place = scoped_area(session, staff_user(), code)
    return session, place, _run(session) or abort(404)


# Pages that show one analysis run: a link between them keeps the questionnaire the office chose.
RUN_PAGES = {"office.area", "office.community", "office.problems", "office.at_risk", "office.report", "office.export",
             "office.exports"}


@bp.url_defaults
def _keep_questionnaire(endpoint: str, values: dict) -> None:
    """Add the page's ?q= to links to the other result pages (it is one with results: _run refused any other)."""
    code = request.args.get("q") if has_request_context() else None
    if code and endpoint in RUN_PAGES:
        values.setdefault("q", code)


def _page_args() -> dict[str, Any]:
    """The query arguments a result page reads, carried to the page it redirects to (no other name reaches url_for)."""
    return {key: value for key in ("q", "wave", "compare") if (value := request.args.get(key))}


def _questionnaire(session) -> str:
    """Return the questionnaire whose results a page shows: ?q=<code>, else citizen, else the first analysed."""
    code = request.args.get("q")
    analysed = dashboard.analysed_questionnaires(session)
    if code and code not in analysed:
        abort(404)
    return code or next(iter(analysed), "citizen")


def _run(session) -> AnalysisRun | None:
    """Return the run of the page's questionnaire chosen by ?wave=<id>, else its newest one."""
    runs = dashboard.runs_by_wave(session, _questionnaire(session))
    wave_id = request.args.get("wave", type=query_id)
    chosen = [r for r in runs if r.wave_id == wave_id] if wave_id else runs[-1:]
    if wave_id and not chosen:
        abort(404)
    return chosen[0] if chosen else None


def _link(area: Area) -> str:
    endpoint = "office.community" if area.level == "community" else "office.area"
    # The waves as numbers, never the raw query text: nothing a link carries is echoed into the page.
    chosen: dict[str, Any] = {key: value for key in ("wave", "compare") if (value := request.args.get(key, type=query_id))}
    return url_for(endpoint, code=area.code, **chosen)


def _changes(session, run: AnalysisRun):
    """Return the run's changes since the previous wave, or ?compare=<wave id> (404 if that has no run)."""
    compare_wave = request.args.get("compare", type=query_id)
    found = wave_changes.comparison(session, run, compare_wave)
    if compare_wave and found is None:
        abort(404)
    return found


@bp.get("/area/<code>")
@login_required
def area(code: str):
    session = db.session()
    place = scoped_area(session, staff_user(), code)
    if place.level == "community":
        return redirect(url_for("office.community", code=code, **_page_args()))
    run = _run(session)
    if run is None:
        return render_template("office/no_run.html", area=place)
    definition = dashboard.run_definition(run)
    columns, rows = dashboard.heatmap_rows(session, run, place, definition, _link)
    at_risk = dashboard.at_risk(session, run, place, limit=DASHBOARD_AT_RISK)
    changes = _changes(session, run)
    chart = None
    if at_risk:
        top = at_risk[:12]
        chart = bar_chart_svg([a.name for _, a in top], [r.points_at_stake for r, _ in top], "失分最多的社区（满分20分）",
                              unit="分", digits=3, chart_id="cost")
    return render_template(
        "office/area.html", area=place, run=run, runs=dashboard.runs_by_wave(session, run.questionnaire_code),
        questionnaires=dashboard.analysed_questionnaires(session),
        result=dashboard.area_result(session, run, place), rates=dashboard.rates(session, run, place, definition),
        channels=dashboard.responses_by_channel(run, place),
        heatmap=heatmap_html(columns, rows, caption="单元格为加权满意度（分）；斜体：样本少于5份。", tappable=True),
        at_risk=at_risk, at_risk_total=dashboard.at_risk_count(session, run, place) if at_risk else 0, cost_chart=chart, breadcrumbs=_breadcrumbs(place),
        minors=dashboard.minor_summary(session, run.wave_id, place), quality=dashboard.quality(session, run, place),
        changes=changes, child_changes=wave_changes.child_changes(session, changes, place) if changes else [],
        changed=wave_changes.significant_communities(session, changes, place)[:PAGE_ROWS] if changes else [],
        fdr_note=wave_changes.FDR_NOTE,
    )


@bp.get("/community/<code>")
@login_required
def community(code: str):
    session = db.session()
    place = scoped_area(session, staff_user(), code)
    if place.level != "community":
        return redirect(url_for("office.area", code=code, **_page_args()))
    run = _run(session)
    if run is None:
        return render_template("office/no_run.html", area=place)
    definition = dashboard.run_definition(run)
    history = dashboard.trend(session, place, run.questionnaire_code)
    chart = None
    if len(history) >= 2:
        chart = line_chart_svg([w for w, _ in history], [r.estimate for _, r in history],
                               [r.ci_low or r.estimate for _, r in history], [r.ci_high or r.estimate for _, r in history],
                               "满意度变化（分）", chart_id="trend")
    texts, terms = dashboard.comments(session, run.wave_id, place, refresh.stored_terms(run, place))
    return render_template(
        "office/community.html", area=place, run=run, runs=dashboard.runs_by_wave(session, run.questionnaire_code),
        questionnaires=dashboard.analysed_questionnaires(session),
        result=dashboard.area_result(session, run, place), topics=dashboard.topic_results(session, run, place, definition),
        rates=dashboard.rates(session, run, place, definition), history=history, trend_chart=chart,
        comments=texts, terms=terms, breadcrumbs=_breadcrumbs(place), changes=_changes(session, run),
        fdr_note=wave_changes.FDR_NOTE,
    )


@bp.route("/community/<code>/paper", methods=["GET", "POST"])
@login_required
def paper(code: str):
    """Print numbered paper questionnaires for a community (a POST returns the PDF) and list past runs."""
    from reports.pdf import ReportError
    from survey.paper import MAX_COPIES, PrintError, batches, print_questionnaires, printable_waves

    session = db.session()
    place = scoped_area(session, staff_user(), code)
    if place.level != "community":
        abort(404)
    waves = printable_waves(session)
    form = PrintForm()
    form.wave.choices = [(w.id, w.name) for w in waves]
    codes = {v.questionnaire.code: v.questionnaire.title for w in waves for v in w.versions}
    form.questionnaire.choices = sorted(codes.items())
    error, status = None, 200
    if form.validate_on_submit():
        wave = next(w for w in waves if w.id == form.wave.data)
        try:
            printed = print_questionnaires(session, form.questionnaire.data, place, form.count.data, wave_name=wave.name,
                                           user_id=staff_user().id)
        except (PrintError, ReportError) as exc:
            error, status = str(exc), 422
        else:
            return _file(printed.pdf, "application/pdf",
                         f"纸质问卷-{place.name}-{printed.first}至{printed.last}.pdf")
    elif request.method == "POST":
        error, status = "；".join(m for messages in form.errors.values() for m in messages), 422
    titles = questionnaire_titles(session)
    return render_template("office/paper.html", area=place, form=form, error=error, runs=batches(session, place),
                           titles=titles, max_copies=MAX_COPIES, breadcrumbs=_breadcrumbs(place)), status


@bp.get("/area/<code>/problems")
@login_required
def problems(code: str):
    session, place, run = _area_and_run(code)
    fmt = request.args.get("format")
    if fmt:
        return _export(session, place, run, "problems", fmt, request.args.get("labels") == "1")
    definition = dashboard.run_definition(run)
    page = dashboard.Page.of(request.args.get("page"), PAGE_ROWS, dashboard.problems_count(session, run, place, definition))
    found = dashboard.problems(session, run, place, definition, limit=page.size, offset=page.offset)
    return render_template("office/problems.html", area=place, run=run, problems=found, total=page.total, page=page,
                           breadcrumbs=_breadcrumbs(place))


@bp.get("/area/<code>/flagged")
def old_at_risk_address(code: str):
    """The list's earlier address (bookmarks): the same list."""
    return redirect(url_for("office.at_risk", code=code, **_page_args()), 301)


@bp.get("/area/<code>/at-risk")
@login_required
def at_risk(code: str):
    """Every community below 80 or at risk in the area, most points at stake first, a page at a time."""
    session, place, run = _area_and_run(code)
    page = dashboard.Page.of(request.args.get("page"), PAGE_ROWS, dashboard.at_risk_count(session, run, place))
    return render_template("office/at_risk.html", area=place, run=run, page=page, breadcrumbs=_breadcrumbs(place),
                           at_risk=dashboard.at_risk(session, run, place, limit=page.size, offset=page.offset))


@bp.get("/area/<code>/export/<what>.<fmt>")
@login_required
def export(code: str, what: str, fmt: str):
    """Download an export: small ones at once, large ones through the export page's background job."""
    session, place, run = _area_and_run(code)
    return _export(session, place, run, what, fmt, request.args.get("labels") == "1")


@bp.route("/area/<code>/exports", methods=["GET", "POST"])
@login_required
def exports(code: str):
    """The export page: choose what, the format and codes or labels; large exports run in the background."""
    session, place, run = _area_and_run(code)
    form = ExportForm()
    if form.validate_on_submit():
        return _export(session, place, run, form.what.data, form.fmt.data, form.labels.data, background=True)
    return _export_page(place, run, form)


@bp.get("/exports/<job_id>")
@login_required
def export_job(job_id: str):
    """A background export: 正在导出… N/M (refresh, or the page's script polls), then the download link."""
    job = export_jobs.jobs(current_app).state(job_id, staff_user().id) or abort(404)
    expires = datetime.fromtimestamp(job.created + export_jobs.KEEP_SECONDS, UTC)
    return render_template("office/export_job.html", job=job, expires=expires, what_name=WHATS.get(job.what, job.what))


@bp.get("/exports/<job_id>/state")
@login_required
def export_job_state(job_id: str):
    job = export_jobs.jobs(current_app).state(job_id, staff_user().id) or abort(404)
    return jsonify(state=job.state, done=job.done, total=job.total)


@bp.get("/exports/<job_id>/download")
@login_required
def export_download(job_id: str):
    """Hand the finished file to the user who asked for it (404 for anyone else, or after a day); log it."""
    jobs = export_jobs.jobs(current_app)
    job = jobs.state(job_id, staff_user().id) or abort(404)
    path = jobs.file(job) or abort(404)
    _log_export(db.session(), job.what, job.area_id, job.wave_id, job.fmt, job.total)
    response = send_file(path, mimetype=FORMATS[job.fmt], as_attachment=True, download_name=job.filename)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/area/<code>/report.pdf")
@login_required
def report(code: str):
    session, place, run = _area_and_run(code)
    changes = _changes(session, run)
    pdf, _ = documents.area_report(app_object(), session, run, place,
                                   previous=changes.previous if changes else None)
    _log(session, "report", place, run, "pdf", 1)
    return _file(pdf, "application/pdf", f"满意度测评报告-{place.name}-{run.wave.name}.pdf")


@bp.get("/area/<code>/qr.pdf")
@login_required
def qr(code: str):
    session = db.session()
    place = scoped_area(session, staff_user(), code)
    chosen = None
    if request.args.get("q"):  # one questionnaire's codes (?q=CODE); without it, each questionnaire's in turn
        chosen = questionnaire_named(session, request.args["q"]) or abort(404)
    pdf, _ = documents.qr_sheet(app_object(), session, place, chosen)
    suffix = f"-{chosen.title}" if chosen else ""
    return _file(pdf, "application/pdf", f"二维码-{place.name}{suffix}.pdf")


def _round(value, digits: int = 2):
    return None if value is None else round(value, digits)


def _breadcrumbs(area: Area) -> list[Area]:
    return breadcrumbs(staff_user(), area)


class ExportForm(FlaskForm):
    what = SelectField("内容", choices=[SelectChoice("responses", "答卷（每份一行，每题一列）"),
                                        SelectChoice("estimates", "社区估计"), SelectChoice("problems", "问题清单")])
    fmt = SelectField("格式", choices=[SelectChoice("xlsx", "Excel（.xlsx）"), SelectChoice("csv", "CSV（Excel、WPS 可直接打开）"),
                                       SelectChoice("sav", "SPSS（.sav，含变量标签和值标签）"),
                                       SelectChoice("dta", "Stata（.dta，含变量标签和值标签）")])
    labels = BooleanField("写选项文字（不写选项编码）")


def _export_page(place: Area, run: AnalysisRun, form: ExportForm, notice: str | None = None, status: int = 200):
    return render_template("office/exports.html", area=place, run=run, form=form, notice=notice,
                           direct_rows=current_app.config["EXPORT_DIRECT_ROWS"], breadcrumbs=_breadcrumbs(place)), status


def _export(session, place: Area, run: AnalysisRun, what: str, fmt: str, labels: bool, background: bool = False):
    """Stream a small export in the response; start a background job for a large one (or offer it).

    The rows are read on a session of their own that the stream closes when it ends, so a download
    holds no connection before it starts or after it ends, whatever the server does with it.
    """
    if what not in WHATS or fmt not in FORMATS:
        abort(404)
    compare = request.args.get("compare", type=query_id) if what == "estimates" else None
    if compare is not None and wave_changes.previous_run(session, run, compare) is None:
        abort(404)
    own = current_app.extensions["db_sessionmaker"]()
    try:
        table = table_for(own, what, place, run.wave_id, run.questionnaire_code, run.id, compare_wave_id=compare)
    finally:
        own.rollback()  # the count is read; the rows are read later, in a transaction of their own
    # 数据截至: the run's data time for its estimates and problems; the responses are read now.
    as_of = datetime.now(UTC) if what == "responses" else refresh.data_time(run)
    stem, _, extension = export_filename(what, place, run.wave.name, fmt, labels, run.questionnaire_code).rpartition(".")
    filename = f"{stem}-数据截至{format_local(as_of, '%Y%m%d-%H%M')}.{extension}"
    if table.total > current_app.config["EXPORT_DIRECT_ROWS"]:
        own.close()
        if not background:
            form = ExportForm(formdata=None, what=what, fmt=fmt, labels=labels)
            return _export_page(place, run, form, f"共 {table.total} 行，数据较多，请点击“导出”在后台生成文件，完成后在此下载。")
        user = staff_user()
        job = export_jobs.jobs(current_app).start(
            user.id, what, fmt, labels, filename, place.id, run.wave_id, table.total,
            _job_builder(app_object(), what, place.id, run.wave_id, run.questionnaire_code, run.id,
                         compare))
        return redirect(url_for("office.export_job", job_id=job.id), 303)
    _log_export(session, what, place.id, run.wave_id, fmt, table.total)
    if fmt == "csv":
        def stream():
            try:
                yield from csv_chunks(table, labels)
            finally:
                own.close()

        return _attachment(Response(stream(), mimetype=FORMATS[fmt]), filename)
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"export.{fmt}"
            write(table, fmt, path, labels)
            body = path.read_bytes()
    finally:
        own.close()
    return _attachment(Response(body, mimetype=FORMATS[fmt]), filename)


def _job_builder(app, what: str, area_id: int, wave_id: int, questionnaire_code: str, run_id: int,
                 compare_wave_id: int | None = None):
    """Return what a job runs in its thread: its own session, the table, and how to close the session."""

    def build():
        session = app.extensions["db_sessionmaker"]()
        return (table_for(session, what, session.get(Area, area_id), wave_id, questionnaire_code, run_id,
                          compare_wave_id=compare_wave_id), session.close)

    return build


def _log_export(session, what: str, area_id: int, wave_id: int | None, fmt: str, rows: int) -> None:
    with db.write_transaction(session):
        session.add(ExportLog(user_id=staff_user().id, what=what, area_id=area_id, wave_id=wave_id,
                              file_format=fmt, rows=rows, created_at=datetime.now(UTC)))


def _log(session, what: str, area: Area, run: AnalysisRun, fmt: str, rows: int) -> None:
    _log_export(session, what, area.id, run.wave_id, fmt, rows)


def _file(body: bytes, mimetype: str, filename: str) -> Response:
    return _attachment(Response(body, mimetype=mimetype), filename)


def _attachment(response: Response, filename: str) -> Response:
    from urllib.parse import quote

    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    response.headers["Cache-Control"] = "private, no-store"
    return response

"""Office pages for questionnaires at /office/questionnaires: versions and the waves fielding them,
XLSForm upload with every error located, a phone-sized preview, publishing, downloads, wave fielding.

Every office account may look and download; only city-level accounts upload, publish, choose
what a wave fields and make community links (a questionnaire is the city's). An upload is
checked (size, type, zip bomb, then the XLSForm rules) and, when valid, kept for its owner as the
definition dict in ``instance/questionnaire_uploads`` (a day at most) until it is published as
the next version; a published version never changes.
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from wtforms import SelectField, StringField
from wtforms.validators import Length, Optional, Regexp

from forms.xlsform import Located
from survey import db
from survey.auth import login_required, role_required, staff_user
from survey.ids import query_id
from survey.links import make_community_links
from survey.models import ExportLog, Link, Questionnaire, QuestionnaireVersion, Wave
from survey.questionnaires import (
    MAX_UPLOAD_BYTES,
    Checked,
    check_xlsform,
    definition_of,
    drop_pending,
    export_xlsx,
    find_version,
    load_pending,
    next_version,
    overview,
    publish,
    same_as_latest,
    save_pending,
)
from survey.reading.tables import RESPONSE_META
from survey.security import allow_upload
from survey.waves import WaveChangeRefused, field_version

bp = Blueprint("questionnaires", __name__, url_prefix="/office/questionnaires")
city_required = role_required("city")
# The preview is shown in a frame of the office page; nothing in it can be sent anywhere.
PREVIEW_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
               "form-action 'none'; frame-ancestors 'self'; base-uri 'none'; object-src 'none'")


class UploadForm(FlaskForm):
    file = FileField("问卷文件（XLSForm 格式的 .xlsx）", validators=[FileRequired("请选择问卷文件")])
    code = StringField("问卷代码（可不填，默认用 settings 表的 form_id）", validators=[
        Optional(), Length(max=64, message="问卷代码最长64个字符"),
        Regexp(r"[A-Za-z_][A-Za-z0-9_.-]*\Z", message="问卷代码只能用英文字母、数字、_、-、.，且不以数字开头")])


class ActionForm(FlaskForm):
    """Only the CSRF token (publish, make links)."""


class FieldForm(FlaskForm):
    wave = SelectField("调查轮次", coerce=int, validate_choice=True)


def _folder() -> Path:
    return Path(current_app.config.get("QUESTIONNAIRE_UPLOAD_FOLDER") or Path(current_app.instance_path) / "questionnaire_uploads")


@bp.url_value_preprocessor
def _upload_size(endpoint: str | None, _values) -> None:
    """Allow an upload's body up to the file limit (runs before the CSRF check reads the body)."""
    if endpoint == "questionnaires.upload":
        allow_upload(MAX_UPLOAD_BYTES + 64 * 1024)


@bp.after_request
def _private(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "private, no-store")
    return response


def _open_waves(session) -> list[Wave]:
    """Waves that have not closed: the ones whose questionnaires may still be chosen."""
    now = datetime.now(UTC)
    return list(session.scalars(select(Wave).where(Wave.closes_at > now).order_by(Wave.opens_at)))


def _field_form(waves: list[Wave]) -> FieldForm:
    form = FieldForm()
    form.wave.choices = [(w.id, w.name) for w in waves]
    return form


def _list_page(notice: str | None = None, error: str | None = None, upload: UploadForm | None = None, status: int = 200):
    session = db.session()
    waves = _open_waves(session)
    links = dict(session.execute(select(Link.questionnaire_id, func.count(Link.id))
                                 .where(Link.area_id.is_not(None)).group_by(Link.questionnaire_id)).all())
    user = staff_user()
    return render_template(
        "office/questionnaires.html", questionnaires=overview(session), links=links, notice=notice, error=error,
        can_edit=user.role == "city", upload=upload or UploadForm(formdata=None), field_form=_field_form(waves),
        open_waves=waves, action=ActionForm(formdata=None), max_mb=MAX_UPLOAD_BYTES // 1024 // 1024,
    ), status


@bp.get("/")
@login_required
def index():
    notice = None
    published = request.args.get("published", type=query_id)
    if published:
        version = db.session().get(QuestionnaireVersion, published)
        if version is not None:
            notice = f"已发布：{version.questionnaire.title}（{version.questionnaire.code}）第{version.version}版。"
    return _list_page(notice)


@bp.post("/upload")
@city_required
def upload():
    """Check an uploaded XLSForm: errors are listed on a result page; a valid one waits for publishing."""
    form = UploadForm()
    if not form.validate_on_submit():
        message = "；".join(m for messages in form.errors.values() for m in messages)
        return _list_page(error=message or "请重新选择文件上传", upload=form, status=422)
    upload_file = form.file.data
    filename = Path(upload_file.filename or "upload").name
    data = upload_file.read(MAX_UPLOAD_BYTES + 1)
    checked = check_xlsform(data, filename, form.code.data or None)
    if checked.raw is not None:
        checked.warnings.extend(_export_clashes(checked.raw))
    if not checked.ok:
        return render_template("office/questionnaire_check.html", checked=checked, filename=filename, pending=None), 422
    upload_id = save_pending(_folder(), staff_user().id, checked, filename)
    return redirect(url_for("questionnaires.pending", upload_id=upload_id), 303)


def _export_clashes(raw: dict) -> list[Located]:
    """Warn of questions named like a fixed column of the responses export (they are renamed there)."""
    fixed = {column.name for column in RESPONSE_META}
    return [Located("survey", None, "name", f"题目名称 \"{item['code']}\" 与导出表的固定列（{item['code']}）同名，"
                                            f"导出时这一题的列名改为 \"{item['code']}_2\"；如不希望这样，请改名")
            for section in raw.get("sections", ()) for item in section.get("items", ()) if item.get("code") in fixed]


def _pending(upload_id: str):
    return load_pending(_folder(), upload_id, staff_user().id) or abort(404)


@bp.get("/upload/<upload_id>")
@city_required
def pending(upload_id: str):
    """The result of a valid upload: its warnings, what publishing will do, the preview and the 发布 button."""
    found = _pending(upload_id)
    session = db.session()
    same = same_as_latest(session, found.raw)
    checked = Checked(found.raw, [], found.warnings)
    return render_template("office/questionnaire_check.html", checked=checked, filename=found.filename, pending=found,
                           definition=found.definition, same=same, next_number=next_version(session, found.raw["code"]),
                           action=ActionForm(formdata=None))


@bp.get("/upload/<upload_id>/preview")
@city_required
def preview(upload_id: str):
    """The uploaded questionnaire as a resident's phone shows it, with nothing that can be submitted."""
    found = _pending(upload_id)
    page = render_template("public/questionnaire.html", definition=found.definition, token="preview", place=None,
                           answers={}, errors={}, submission_key="", notice=None, picker=None, picked=None,
                           picker_error=None)
    page = page.replace('<button type="submit"', '<button type="submit" disabled')
    response = Response(page, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.post("/upload/<upload_id>/publish")
@city_required
def publish_upload(upload_id: str):
    """Publish a checked upload as the next version of its questionnaire; log who did it."""
    found = _pending(upload_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    session = db.session()
    user = staff_user()
    try:
        with db.write_transaction(session):
            published = publish(session, found.raw)
            version = published.version
            if published.created:
                session.add(ExportLog(user_id=user.id, what=f"publish {version.questionnaire.code} v{version.version}"[:64],
                                      area_id=user.area_id, wave_id=None, file_format="xlsx",
                                      rows=len(definition_of(version).items), created_at=datetime.now(UTC)))
    except IntegrityError:
        return _list_page(error="另一位同事刚刚发布了同一问卷的新版本，请刷新页面确认后再发布。", status=409)
    drop_pending(_folder(), upload_id)
    if published.created:
        current_app.logger.info("questionnaire %s v%d published by %s", version.questionnaire.code, version.version,
                                user.username)
    if not published.created:
        return _list_page(notice=f"内容与已发布的{version.questionnaire.title}第{version.version}版完全相同，没有新建版本。")
    return redirect(url_for("questionnaires.index", published=version.id), 303)


@bp.get("/<code>/v<int:number>.xlsx")
@login_required
def download(code: str, number: int):
    """Any stored version as an XLSForm workbook."""
    try:
        version = find_version(db.session(), code, number)
    except LookupError:
        abort(404)
    from urllib.parse import quote

    response = Response(export_xlsx(version), mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(f'{code}-v{number}.xlsx')}"
    return response


@bp.post("/<code>/v<int:number>/field")
@city_required
def field(code: str, number: int):
    """Let a wave that has not closed field this version (replacing another version of it not yet answered)."""
    session = db.session()
    try:
        version = find_version(session, code, number)
    except LookupError:
        abort(404)
    form = _field_form(_open_waves(session))
    if not form.validate_on_submit():
        return _list_page(error="请选择一个尚未结束的调查轮次。", status=422)
    try:
        with db.write_transaction(session):
            wave = session.get(Wave, form.wave.data)
            if wave is None:  # the form offers only waves that exist
                abort(404)
            replaced = field_version(session, wave, version, datetime.now(UTC))
            wave_name = wave.name
    except WaveChangeRefused as exc:
        return _list_page(error=str(exc), status=409)
    notice = f"{wave_name}现在使用{version.questionnaire.title}第{number}版"
    notice += f"（替换了第{replaced.version}版）。" if replaced else "。"
    if not session.scalar(select(func.count(Link.id)).where(Link.questionnaire_id == version.questionnaire_id,
                                                             Link.area_id.is_not(None))):
        notice += "这份问卷还没有社区二维码链接：请点“生成社区二维码链接”。"
    return _list_page(notice=notice)


@bp.post("/<code>/links")
@city_required
def links(code: str):
    """Make a QR link for every community that has none yet for this questionnaire."""
    session = db.session()
    if session.scalar(select(Questionnaire.id).where(Questionnaire.code == code)) is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    with db.write_transaction(session):
        made = make_community_links(session, code)
    return _list_page(notice=f"{code}：{len(made)} 个社区有二维码链接。二维码打印页在各区域页面的“二维码打印页”。")

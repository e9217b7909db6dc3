"""Public questionnaire pages at /s/<token>: no login, no JavaScript needed."""
from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from threading import Lock

from flask import Blueprint, current_app, make_response, render_template, request
from flask_wtf.csrf import generate_csrf
from sqlalchemy import exists, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

from forms import Definition, collect_answers
from forms.definition import has_control_characters
from survey import db
from survey.limits import PUBLIC_GET_LIMIT, PUBLIC_POST_LIMIT, limiter
from survey.links import LinkUnavailable, OpenLink, resolve
from survey.models import Area, Response
from survey.quality import device_id, ip_hash, set_device_cookie
from survey.questionnaires import definition_by_id, form_class_of
from survey.schools import community_choices
from survey.security import csrf
from survey.submissions import issue_key, read_key, store_response

bp = Blueprint("public", __name__)
# The form's own CSRF field is checked in the view, so a stale token re-shows the answers
# instead of losing them to the global check.
csrf.exempt(bp)

# A blank questionnaire is the same page for every visitor of a link but for two hidden values,
# so it is rendered once and those values are filled in per request.
_CSRF_SLOT, _KEY_SLOT, _NOTICE_SLOT = "\x00csrf\x00", "\x00key\x00", "\x00notice\x00"
ALREADY_SENT = "这台手机（电脑）已经提交过这份问卷，感谢参与！不需要再次填写。"
_blank_pages: OrderedDict[tuple, str] = OrderedDict()
_blank_lock = Lock()


@bp.errorhandler(LinkUnavailable)
def _unavailable(exc: LinkUnavailable):
    return render_template("public/message.html", title=exc.title, message=exc.message), exc.status


def _page(definition: Definition, target: OpenLink, form, submission_key: str, csrf_value: str,
          notice: str | None = None, picked: str | None = None, picker_error: str | None = None) -> str:
    picker = community_choices(db.session()) if target.picks_community else None
    return render_template(
        "public/questionnaire.html", definition=definition, token=target.token, place=target.place, form=form,
        submission_key=submission_key, csrf_value=csrf_value, notice=notice, picker=picker, picked=picked,
        picker_error=picker_error,
    )


def _picked_community(session, target: OpenLink) -> tuple[str | None, int | None, str | None]:
    """Return (code, area id, error) of the community a parent picked."""
    code = (request.form.get("community") or "").strip()[:64]
    if not code or has_control_characters(code):
        return None, None, "请选择您居住的社区"
    area = session.scalar(select(Area).where(Area.code == code, Area.level == "community"))
    if area is None:
        return code, None, "请从列表中选择您居住的社区"
    return code, area.id, None


def _blank_page(definition: Definition, target: OpenLink, notice: str | None = None) -> str:
    cache_key = (id(current_app._get_current_object()), target.version_id, target.token, target.place)
    with _blank_lock:
        page = _blank_pages.get(cache_key)
    if page is None:
        form = form_class_of(definition)(formdata=None, data=_known_answers(definition, target))
        page = _page(definition, target, form, _KEY_SLOT, _CSRF_SLOT, notice=_NOTICE_SLOT)
        with _blank_lock:
            _blank_pages[cache_key] = page
            while len(_blank_pages) > 2048:
                _blank_pages.popitem(last=False)
    notice_html = f'<div class="success" role="status">{notice}</div>' if notice else ""
    return (page.replace(f'<div class="alert" role="alert">{_NOTICE_SLOT}</div>', notice_html)
            .replace(_CSRF_SLOT, generate_csrf()).replace(_KEY_SLOT, issue_key(target.link_id, target.wave_id)))


def _grade_band_item(definition: Definition, target: OpenLink):
    """Return the pupil's grade-band item when the class link already says the answer."""
    if target.audience != "pupil" or not target.grade_band:
        return None
    return next((i for i in definition.items if i.attribute == "grade_band" and i.choice(target.grade_band)), None)


def _known_answers(definition: Definition, target: OpenLink) -> dict[str, str]:
    """Return answers the link itself gives (a class's grade band), chosen in advance on the form."""
    item = _grade_band_item(definition, target)
    return {item.code: target.grade_band} if item else {}


def _contradicts_link(definition: Definition, target: OpenLink, form) -> bool:
    """Mark a grade band that contradicts the pupil's class; return True when there is one."""
    item = _grade_band_item(definition, target)
    field = form[item.code] if item else None
    if field is None or not field.data or field.data == target.grade_band:
        return False
    field.errors = [*field.errors, f"这是{item.choice(target.grade_band).label}班级的问卷链接，请选择“{item.choice(target.grade_band).label}”"]
    return True


def _answered_before(session, target: OpenLink, device: str) -> bool:
    return bool(session.scalar(select(exists().where(
        Response.wave_id == target.wave_id, Response.device_id == device, Response.link_id == target.link_id))))


@bp.errorhandler(429)
def _too_many(_exc):
    """Too many submissions from this address: show the form again with every answer kept."""
    message = render_template("public/message.html", title="访问太频繁", message="访问太频繁了，请稍等一分钟后再试。")
    if request.method != "POST":
        return message, 429
    token = request.view_args.get("token", "") if request.view_args else ""
    try:
        target = resolve(db.session(), token, datetime.now(UTC))
    except LinkUnavailable:
        return message, 429
    definition = definition_by_id(db.session(), target.version_id)
    form = form_class_of(definition)(formdata=request.form)
    notice = "提交太频繁了，请稍等一分钟后再点“提交问卷”。您的回答都已保留。"
    return _page(definition, target, form, request.form.get("submission_key", ""), generate_csrf(), notice), 429


@bp.route("/s/<token>", methods=["GET", "POST"])
@limiter.limit(PUBLIC_GET_LIMIT, methods=["GET"])
@limiter.limit(PUBLIC_POST_LIMIT, methods=["POST"])
def questionnaire(token: str):
    """Show the questionnaire of a link, or store a submitted one and thank the respondent."""
    now = datetime.now(UTC)
    session = db.session()
    target = resolve(session, token, now)
    definition = definition_by_id(session, target.version_id)
    device, new_device = device_id(request, target.wave_id)
    if request.method == "GET":
        notice = ALREADY_SENT if not new_device and _answered_before(session, target, device) else None
        page = make_response(_blank_page(definition, target, notice))
        if new_device:
            set_device_cookie(page, target.wave_id, device)
        return page

    # Answers come from the form fields only: a file part named like a question is not an answer.
    form = form_class_of(definition)(formdata=request.form)
    picked, area_id, picker_error = (
        _picked_community(session, target) if target.picks_community
        else (None, target.area_id or target.school_district_id, None)
    )
    key = read_key(request.form.get("submission_key"), target.link_id)
    if key is None:
        # Not a key we issued for this link (tampered, or very old): keep the answers, new key.
        form.validate()
        notice = "页面已过期，您的回答都已保留，请检查后再次提交。"
        return _page(definition, target, form, issue_key(target.link_id, target.wave_id), generate_csrf(), notice,
                     picked), 400
    if not key.belongs_to(target.wave_id, target.opens_at):
        # Rendered in an earlier wave: never store it in this one unseen; keep the answers, new key.
        form.validate()
        notice = "调查已进入新一轮，您的回答都已保留。请核对后再点“提交问卷”。"
        return _page(definition, target, form, issue_key(target.link_id, target.wave_id), generate_csrf(), notice,
                     picked), 409
    valid = form.validate()
    valid = not _contradicts_link(definition, target, form) and valid
    if not valid or picker_error:
        expired = "csrf_token" in form.errors
        notice = "页面已过期，您的回答都已保留，请再次提交。" if expired else None
        page = _page(definition, target, form, request.form["submission_key"], generate_csrf(), notice, picked, picker_error)
        return page, 400 if expired else 422
    try:
        stored = store_response(
            session,
            definition,
            collect_answers(definition, form),
            key=key.key,
            wave_id=target.wave_id,
            version_id=target.version_id,
            link_id=target.link_id,
            area_id=area_id,
            channel=target.channel,
            school_class_id=target.school_class_id,
            started_at=key.started_at,
            submitted_at=now,
            device_id=device,
            ip_hash=ip_hash(request.remote_addr, target.ip_salt),
        )
    except (OperationalError, SQLAlchemyTimeoutError):
        current_app.logger.exception("could not store a response; the respondent keeps their answers")
        notice = "系统繁忙，您的回答都已保留，请稍后再点一次“提交问卷”。"
        return _page(definition, target, form, request.form["submission_key"], generate_csrf(), notice, picked), 503
    page = make_response(render_template("public/thanks.html", definition=definition, repeated=not stored.created))
    if new_device:
        set_device_cookie(page, target.wave_id, device)
    return page

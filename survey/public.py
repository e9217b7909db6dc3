"""Public questionnaire pages at /s/<token>: no login, no JavaScript needed."""
from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from threading import Lock

from flask import Blueprint, current_app, make_response, render_template, request
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

from forms import Definition, collect_answers
from survey import db
from survey.limits import PUBLIC_GET_LIMIT, PUBLIC_POST_LIMIT, limiter
from survey.links import LinkUnavailable, OpenLink, resolve
from survey.models import Area
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
_CSRF_SLOT, _KEY_SLOT = "\x00csrf\x00", "\x00key\x00"
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
    if not code:
        return None, None, "请选择您居住的社区"
    area = session.scalar(select(Area).where(Area.code == code, Area.level == "community"))
    if area is None:
        return code, None, "请从列表中选择您居住的社区"
    return code, area.id, None


def _blank_page(definition: Definition, target: OpenLink) -> str:
    cache_key = (id(current_app._get_current_object()), target.version_id, target.token, target.place)
    with _blank_lock:
        page = _blank_pages.get(cache_key)
    if page is None:
        page = _page(definition, target, form_class_of(definition)(formdata=None), _KEY_SLOT, _CSRF_SLOT)
        with _blank_lock:
            _blank_pages[cache_key] = page
            while len(_blank_pages) > 2048:
                _blank_pages.popitem(last=False)
    return page.replace(_CSRF_SLOT, generate_csrf()).replace(_KEY_SLOT, issue_key(target.link_id))


@bp.errorhandler(429)
def _too_many(_exc):
    """Too many submissions from this address: show the form again with every answer kept."""
    if request.method != "POST":
        return render_template("public/message.html", title="访问太频繁", message="访问太频繁了，请稍等一分钟后再试。"), 429
    token = request.view_args.get("token", "") if request.view_args else ""
    target = resolve(db.session(), token, datetime.now(UTC))
    definition = definition_by_id(db.session(), target.version_id)
    form = form_class_of(definition)()
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
        page = make_response(_blank_page(definition, target))
        if new_device:
            set_device_cookie(page, target.wave_id, device)
        return page

    form = form_class_of(definition)()
    picked, area_id, picker_error = (
        _picked_community(session, target) if target.picks_community
        else (None, target.area_id or target.school_district_id, None)
    )
    key = read_key(request.form.get("submission_key"), target.link_id)
    if key is None:
        # Not a key we issued for this link (tampered, or very old): keep the answers, new key.
        form.validate()
        notice = "页面已过期，您的回答都已保留，请检查后再次提交。"
        return _page(definition, target, form, issue_key(target.link_id), generate_csrf(), notice, picked), 400
    valid = form.validate()
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
            ip_hash=ip_hash(request.remote_addr, target.wave_id),
        )
    except (OperationalError, SQLAlchemyTimeoutError):
        current_app.logger.exception("could not store a response; the respondent keeps their answers")
        notice = "系统繁忙，您的回答都已保留，请稍后再点一次“提交问卷”。"
        return _page(definition, target, form, request.form["submission_key"], generate_csrf(), notice, picked), 503
    page = make_response(render_template("public/thanks.html", definition=definition, repeated=not stored.created))
    if new_device:
        set_device_cookie(page, target.wave_id, device)
    return page

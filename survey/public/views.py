"""Public questionnaire pages at /s/<token>: no login, no JavaScript and no session cookie needed.

This is the hot path of every answer, so it stays lean. A GET serves the blank page rendered once
per questionnaire version and wave (kept ``BLANK_PAGE_SECONDS``, default 60, so communities
imported later reach the parents' picker) with the link's address and place and a one-time key
filled in; the link itself is looked up at most every ``LINK_CACHE_SECONDS`` (survey/links.py),
and no ORM session is made unless something is not cached. A POST is checked by the item types
themselves (``Definition.parse_submission``) and stored in one statement (survey/submissions.py).

Everything works without JavaScript: every follow-up question is on the page with a line saying
when to answer it ("（第3题选“是”的请回答）"), and the server requires it only when its rule holds
and drops its answer when the rule does not; a list cut by earlier answers (``choice_filter``) is
cut again by 更新选项 (``_refresh``: the page again, nothing checked or stored). ``static/form.js``
(when scripts run) hides follow-ups, cuts lists, checks answers as they are typed, shows
``field-list`` groups as pages and keeps a draft on the phone; what it reads is in data attributes
(survey/public/phone.py). ``?lang=`` shows another language of the questionnaire (kept in ``_lang``).

Forged submissions: the public form carries no session-based CSRF token and never touches the
Flask session. A POST must carry a signed one-time key that a GET of this link issued in this
wave, and a browser's POST whose ``Origin`` (or, without one, ``Referer``) names another site is
refused, so a third-party page cannot make its visitors' browsers answer; the device cookie is
``SameSite=Lax`` and so is not sent with such a POST either.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from flask import Blueprint, current_app, make_response, render_template, request
from markupsafe import escape
from sqlalchemy import exists, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

from forms import Definition
from forms.common import has_control_characters
from survey import answer_photos, db
from survey.caching import app_cache
from survey.limits import PUBLIC_GET_LIMIT, PUBLIC_POST_LIMIT, public_limits
from survey.links import LinkUnavailable, OpenLink, resolve
from survey.localtime import now_local
from survey.models import Area, Response
from survey.public.phone import PhonePage, pick_language
from survey.quality import device_id, ip_hash, set_device_cookie
from survey.questionnaires import cached_definition, definition_by_id
from survey.schools import community_choices
from survey.security import allow_upload, csrf
from survey.submissions import issue_key, read_key, store_response

bp = Blueprint("public", __name__, template_folder="templates")
csrf.exempt(bp)  # see the module docstring: one-time keys and an Origin check instead
bp.add_app_template_global(PhonePage, "phone_page")  # the office's phone preview renders the page without a view

ALREADY_SENT = ("这台手机（电脑）已经提交过这份问卷，感谢参与！不需要再次填写："
                "同一台手机再次提交的问卷不计入统计。")
FOREIGN_POST = "请在本问卷的页面上提交。您的回答都已保留，请检查后点“提交问卷”。"


@bp.errorhandler(LinkUnavailable)
def _unavailable(exc: LinkUnavailable):
    return render_template("public/message.html", title=exc.title, message=exc.message), exc.status


def _page(definition: Definition, target: OpenLink, answers: dict[str, str | None], errors: dict[str, str],
          submission_key: str, notice: str | None = None, picked: str | None = None,
          picker_error: str | None = None, language: str | None = None, returned: bool = True) -> str:
    picker = community_choices(db.session()) if target.picks_community else None
    page = PhonePage(definition, answers, language, now_local().date(), returned, _known_answers(definition, target))
    return render_template(
        "public/questionnaire.html", definition=definition, token=target.token, place=target.place,
        answers=answers, errors=page.messages(errors), submission_key=submission_key, notice=notice, picker=picker,
        picked=picked, picker_error=picker_error, page=page,
    )


def _language(definition: Definition) -> str | None:
    """Return the language the respondent chose (``?lang=``, kept across a POST in ``_lang``); None: the default."""
    return pick_language(definition, request.form.get("_lang") or request.args.get("lang"))


def _blank_page(definition: Definition, target: OpenLink, notice: str | None = None,
                language: str | None = None) -> bytes:
    """Return the link's blank questionnaire with a fresh one-time key (and a notice, if any), as UTF-8.

    The page is rendered once per questionnaire version, wave and kind of link, not per link: a
    city has a link per community, and most GETs would otherwise render the whole questionnaire.
    It is kept encoded and cut at its slots (the link's address and place, the key, the notice),
    which each GET fills by joining a few byte strings.
    """
    pages = app_cache("blank_pages", "BLANK_PAGE_SECONDS", 60, 2048)
    known = _known_answers(definition, target)
    cache_key = (target.version_id, target.wave_id, target.picks_community, tuple(known.items()), language)
    pieces = pages.get(cache_key)
    if pieces is None:
        slotted = replace(target, token=_TOKEN_SLOT, place=_PLACE_SLOT)
        shown: dict[str, str | None] = {**definition.defaults, **known}  # defaults pre-filled
        pieces = _cut(_page(definition, slotted, shown, {}, _KEY_SLOT, notice=_NOTICE_SLOT,
                            language=language, returned=False))
        pages.put(cache_key, pieces)
    place = f'<p class="place">{escape(target.place)}</p>'.encode() if target.place else b""
    values = {
        "key": issue_key(target.link_id, target.wave_id).encode(),
        "notice": f'<div class="success" role="status">{notice}</div>'.encode() if notice else b"",
        "token": quote(target.token, safe="").encode(), "place": place,
    }
    return b"".join(piece if isinstance(piece, bytes) else values[piece] for piece in pieces)


_KEY_SLOT, _NOTICE_SLOT, _PLACE_SLOT = "\x00key\x00", "\x00notice\x00", "\x00place\x00"
_TOKEN_SLOT = f"token-slot-{secrets.token_hex(8)}"  # a path segment url_for leaves as it is
_SLOTS = {
    "key": _KEY_SLOT,
    "notice": f'<div class="alert" role="alert">{_NOTICE_SLOT}</div>',
    "token": _TOKEN_SLOT,
    "place": f'<p class="place">{_PLACE_SLOT}</p>',
}
_SLOT_PATTERN = re.compile("|".join(re.escape(text) for text in _SLOTS.values()))
_SLOT_NAMES = {text: name for name, text in _SLOTS.items()}


def _cut(page: str) -> tuple[bytes | str, ...]:
    """Return the page as encoded literal pieces and slot names, in order."""
    pieces: list[bytes | str] = []
    at = 0
    for found in _SLOT_PATTERN.finditer(page):
        pieces += [page[at:found.start()].encode(), _SLOT_NAMES[found.group()]]
        at = found.end()
    pieces.append(page[at:].encode())
    if not {"key", "notice", "token", "place"} <= set(pieces):
        raise RuntimeError("the questionnaire template lost one of its slots (key, notice, token, place)")
    return tuple(pieces)


def _definition(target: OpenLink) -> Definition:
    """Return the link's questionnaire version, without making a database session once it is known."""
    return cached_definition(db.engine(), target.version_id) or definition_by_id(db.session(), target.version_id)


def _thanks(definition: Definition, version_id: int, repeated: bool, second: bool = False,
            language: str | None = None) -> str:
    """The thank-you page; ``repeated``: the same form sent twice; ``second``: this phone had answered before."""
    pages = app_cache("thank_you_pages", "BLANK_PAGE_SECONDS", 60, 256)
    page = pages.get((version_id, repeated, second, language))
    if page is None:
        page = render_template("public/thanks.html", definition=definition, repeated=repeated, second=second,
                               page=PhonePage(definition, {}, language))
        pages.put((version_id, repeated, second, language), page)
    return page


def _grade_band_item(definition: Definition, target: OpenLink):
    """Return the pupil's grade-band item when the class link already says the answer."""
    if target.audience != "pupil" or not target.grade_band:
        return None
    return next((i for i in definition.items if i.attribute == "grade_band" and i.choice(target.grade_band)), None)


def _known_answers(definition: Definition, target: OpenLink) -> dict[str, str | None]:
    """Return answers the link itself gives (a class's grade band), chosen in advance on the form."""
    item = _grade_band_item(definition, target)
    return {item.code: target.grade_band} if item else {}


def _contradiction(definition: Definition, target: OpenLink, answers: dict[str, str | None]) -> dict[str, str]:
    """Return an error for a grade band that contradicts the pupil's class (else nothing)."""
    item = _grade_band_item(definition, target)
    if item is None or not answers.get(item.code) or answers[item.code] == target.grade_band:
        return {}
    label = item.choice(target.grade_band).label
    return {item.code: f"这是{label}班级的问卷链接，请选择“{label}”"}


def _picked_community(session, target: OpenLink) -> tuple[str | None, int | None, str | None]:
    """Return (code, area id, error) of the community a parent picked."""
    code = (request.form.get("community") or "").strip()[:64]
    if not code or has_control_characters(code):
        return None, None, "请选择您居住的社区"
    area = session.scalar(select(Area).where(Area.code == code, Area.level == "community"))
    if area is None:
        return code, None, "请从列表中选择您居住的社区"
    return code, area.id, None


def _answered_before(session, target: OpenLink, device: str, other_than: int | None = None) -> bool:
    """Whether this device sent this link's questionnaire in this wave (a response other than ``other_than``)."""
    where = [Response.wave_id == target.wave_id, Response.device_id == device, Response.link_id == target.link_id]
    if other_than is not None:
        where.append(Response.id != other_than)
    return bool(session.scalar(select(exists().where(*where))))


def _foreign_post() -> bool:
    """Return True when a browser says this POST comes from a page of another site."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source:
        return False  # not a browser that says; the one-time key still binds the POST to a GET
    allowed = {request.host}
    base = current_app.config.get("PUBLIC_BASE_URL")
    if base:
        allowed.add(urlsplit(base).netloc)
    try:
        return urlsplit(source).netloc not in allowed
    except ValueError:  # not an address at all ("http://[::1"): no browser sends that for its own page
        return True


@bp.errorhandler(OperationalError)
@bp.errorhandler(SQLAlchemyTimeoutError)
def _database_unavailable(_exc):
    """The database could not be reached before the answers were checked: keep them on the page.

    Without the database the questionnaire cannot be shown again (the link and its version are
    unknown), so a POST gets a page holding every field it sent, hidden, with a "重新提交" button:
    the same one-time key then stores the answers once, whenever the database is back.
    """
    current_app.logger.exception("database unavailable on the public form")
    if request.method != "POST":
        return render_template("public/message.html", title="系统繁忙", message="系统暂时繁忙，请稍后再试。"), 503
    fields = [(name, value) for name, values in request.form.lists() for value in values]
    return render_template("public/resubmit.html", action=request.path, fields=fields), 503


@bp.errorhandler(429)
def _too_many(_exc):
    """Too many submissions from this address: show the form again with every answer kept."""
    message = render_template("public/message.html", title="访问太频繁", message="访问太频繁了，请稍等一分钟后再试。")
    wait = {"Retry-After": "60"}
    if request.method != "POST":
        return message, 429, wait
    token = request.view_args.get("token", "") if request.view_args else ""
    try:
        target = resolve(db.engine(), token, datetime.now(UTC))
    except LinkUnavailable:
        return message, 429, wait
    definition = _definition(target)
    notice = "提交太频繁了，请稍等一分钟后再点“提交问卷”。您的回答都已保留。"
    picked = _picked_community(db.session(), target)[0] if target.picks_community else None
    return _page(definition, target, definition.submitted_values(request.form), {}, request.form.get("submission_key", ""),
                 notice, picked, language=_language(definition)), 429, wait


@bp.url_value_preprocessor
def _upload_size(endpoint: str | None, values: dict | None) -> None:
    """Let a questionnaire with photo questions post them (before anything reads the body)."""
    if endpoint != "public.questionnaire" or request.method != "POST" or request.mimetype != "multipart/form-data":
        return
    try:
        definition = _definition(resolve(db.engine(), (values or {}).get("token", ""), datetime.now(UTC)))
    except LinkUnavailable:
        return  # the view says why
    if answer_photos.image_items(definition):
        allow_upload(answer_photos.upload_limit(definition))


def _with_photos(definition: Definition):
    """Return (the form's fields with each photo question's stored name, the photos' errors)."""
    if not answer_photos.image_items(definition):
        return request.form, {}
    values, errors, _written = answer_photos.receive(definition, request.form, request.files, current_app.instance_path)
    formdata = request.form.copy()
    for code, name in values.items():
        formdata[code] = name or ""
    return formdata, errors


@bp.route("/s/<token>", methods=["GET", "POST"])
@public_limits(PUBLIC_GET_LIMIT, PUBLIC_POST_LIMIT)
def questionnaire(token: str):
    """Show the questionnaire of a link, or store a submitted one and thank the respondent."""
    now = datetime.now(UTC)
    engine = db.engine()
    target = resolve(engine, token, now)
    definition = _definition(target)
    device, new_device = device_id(request, target.wave_id)
    if request.method == "GET":
        notice = ALREADY_SENT if not new_device and _answered_before(db.session(), target, device) else None
        page = make_response(_blank_page(definition, target, notice, _language(definition)))
        if new_device:
            set_device_cookie(page, target.wave_id, device)
        return page

    formdata = request.form  # (with the photos' stored names once the post is known to be ours)
    picked, area_id, picker_error = (
        _picked_community(db.session(), target) if target.picks_community
        else (None, target.area_id or target.school_district_id, None)
    )

    def again(status: int, notice: str | None = None, key: str | None = None, shown: dict | None = None):
        # Every answer as sent is shown again, a follow-up's included while its rule does not hold.
        page = _page(definition, target, definition.submitted_values(formdata), shown or {},
                     key or issue_key(target.link_id, target.wave_id),
                     notice, picked, picker_error if shown is not None else None, _language(definition))
        return page, status

    if "_refresh" in request.form:
        # 更新选项 without scripts: the page again with the choices the answers allow; nothing is checked or stored.
        return again(200, key=request.form.get("submission_key", ""))
    if _foreign_post():
        return again(403, FOREIGN_POST)
    key = read_key(request.form.get("submission_key"), target.link_id)
    if key is None:
        # Not a key we issued for this link (tampered, or very old): keep the answers, new key.
        return again(400, "页面已过期，您的回答都已保留，请检查后再次提交。")
    if not key.belongs_to(target.wave_id, target.opens_at):
        # Rendered in an earlier wave: never store it in this one unseen; keep the answers, new key.
        return again(409, "调查已进入新一轮，您的回答都已保留。请核对后再点“提交问卷”。")
    # Answers come from the form fields; a photo question's from its file (stored, then named) or
    # from the signed name a page shown again carried, never from a name typed into the form.
    # Photos are written only now, for a post of this page with a key of this link and wave.
    formdata, photo_errors = _with_photos(definition)
    answers, errors = definition.parse_submission(formdata, now_local().date())
    errors |= photo_errors
    errors |= _contradiction(definition, target, answers)
    if errors or picker_error:
        return again(422, key=request.form["submission_key"], shown=errors)
    try:
        stored = store_response(
            db.session() if db.has_session() else engine,  # a session made for this request ends its reading first
            definition,
            answers,
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
        return again(503, "系统繁忙，您的回答都已保留，请稍后再点一次“提交问卷”。", key=request.form["submission_key"])
    if stored.created:
        answer_photos.keep(definition, answers, current_app.instance_path)
    # A later answer from a phone that answered before is flagged as a repeat and not counted: say so.
    second = False
    if stored.created and not new_device:
        with engine.connect() as connection:  # no ORM session on this path
            second = _answered_before(connection, target, device, stored.response_id)
    page = make_response(_thanks(definition, target.version_id, repeated=not stored.created, second=second,
                                 language=_language(definition)))
    if new_device:
        set_device_cookie(page, target.wave_id, device)
    return page

"""Paper questionnaires keyed in by grid workers: choice numbers, keyboard only, once per paper.

The paper's serial number, within its wave and community, is its submission key, so the same
paper cannot be stored twice, and a serial used in another community is no business of this one.
"""
from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from flask import Blueprint, abort, current_app, render_template, request
from flask_wtf.csrf import generate_csrf
from sqlalchemy import func, select

from forms import Definition
from survey import db
from survey.auth import role_required, staff_user
from survey.localtime import format_local, now_local
from survey.models import Questionnaire, QuestionnaireVersion, Response, User, Wave, wave_version
from survey.paper import SERIAL, check_serial, numbered_items
from survey.questionnaires import definition_by_id
from survey.submissions import store_response

bp = Blueprint("entry", __name__, url_prefix="/entry", template_folder="templates")


def open_questionnaires(session) -> dict[str, str]:
    """Return {code: title} of the questionnaires an open wave fields (citizen first, then by code)."""
    now = datetime.now(UTC)
    rows = session.execute(
        select(Questionnaire.code, Questionnaire.title).distinct()
        .join(QuestionnaireVersion, QuestionnaireVersion.questionnaire_id == Questionnaire.id)
        .join(wave_version, wave_version.c.questionnaire_version_id == QuestionnaireVersion.id)
        .join(Wave, Wave.id == wave_version.c.wave_id)
        .where(Wave.opens_at <= now, Wave.closes_at > now)
    ).all()
    return dict(sorted(rows, key=lambda row: (row[0] != "citizen", row[0])))


def _open_version(session, code: str) -> tuple[Wave, int] | None:
    now = datetime.now(UTC)
    row = session.execute(
        select(Wave, QuestionnaireVersion.id)
        .join(wave_version, wave_version.c.wave_id == Wave.id)
        .join(QuestionnaireVersion, QuestionnaireVersion.id == wave_version.c.questionnaire_version_id)
        .join(Questionnaire, Questionnaire.id == QuestionnaireVersion.questionnaire_id)
        .where(Questionnaire.code == code, Wave.opens_at <= now, Wave.closes_at > now)
        .order_by(Wave.opens_at.desc(), QuestionnaireVersion.version.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


def parse_paper(definition: Definition, form, today: date | None = None) -> tuple[dict[str, str | None], dict[str, str]]:
    """Turn what was typed into answers; return (answers, errors by item code).

    Numbers mean what the printed copy and the entry page show (:func:`survey.paper.numbered_items`);
    each item type reads what was typed for it (``parse_typed``: choice numbers, ``1,3`` for several,
    digits, dates, times...), then the question's choice_filter and constraint are checked against
    the answers keyed before it, as on the phone (:meth:`forms.Definition.parse_submission`).
    Calculated items are worked out in their place and stored; read-only questions keep their
    default; a photo is never keyed from paper. A follow-up question whose rule does not hold
    (given the answers keyed before it) is not answered: something typed for it is refused with
    a plain message, since the paper or the earlier number was mistyped. One whose rule holds is
    keyed like any other question (required if it is required). ``today`` is the city's date.
    """
    answers: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    when = {q.item.code: q.when for q in numbered_items(definition)}
    for item in definition.stored_items:
        handler = item.handler
        raw = (form.get(item.code) or "") if item.is_question else ""
        rule = item.relevant
        if rule is not None and not item.is_relevant(answers, today):
            answers[item.code] = None
            unsure = any(code in errors for code in rule.references())
            if raw.strip() and not unsure:
                errors[item.code] = f"本题只有{when[item.code]}时才填写，请清空此格，或核对前面的题"
            continue
        if item.worked_out:
            answers[item.code] = item.work_out(answers, today)
            continue
        value, error = handler.parse_typed(item, raw)
        if error is None and value is not None:
            error = item.check_answer(value, answers, today)
        answers[item.code] = None if error else value
        if error:
            errors[item.code] = error
    return answers, errors


def paper_key(wave_id: int, area_id: int, serial: str) -> str:
    """Return the submission key of a paper questionnaire: its serial within wave and community."""
    return f"paper:{wave_id}:{area_id}:{serial.upper()}"


def _counts(session, user: User, wave_id: int | None) -> tuple[int, list[tuple[str, int]]]:
    if wave_id is None:
        return 0, []
    rows = session.execute(
        select(User.username, func.count())
        .join(Response, Response.entered_by_id == User.id)
        .where(Response.wave_id == wave_id, Response.channel == "paper", User.area_id == user.area_id)
        .group_by(User.username)
        .order_by(User.username)
    ).all()
    mine = next((n for name, n in rows if name == user.username), 0)
    return mine, [(name, n) for name, n in rows]


@bp.route("/", methods=["GET", "POST"])
@role_required("grid")
def page():
    session = db.session()
    user = staff_user()
    questionnaires = open_questionnaires(session)
    code = request.values.get("q") or next(iter(questionnaires), "citizen")
    if questionnaires and code not in questionnaires:
        abort(404)
    found = _open_version(session, code) if questionnaires else None
    if found is None:
        return render_template("entry/page.html", closed=True, code=code, questionnaires=questionnaires, user=user)
    wave, version_id = found
    definition = definition_by_id(session, version_id)
    today = now_local().date()
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    message: tuple[str, str] | None = None
    status = 200
    if request.method == "POST":
        values = request.form.to_dict()
        serial = (values.get("serial") or "").strip()
        answers, errors = parse_paper(definition, request.form, today)
        if not SERIAL.fullmatch(serial):
            errors["serial"] = "编号只能是1到40位字母、数字或短横线"
        else:
            serial, refused = check_serial(session, wave.id, user.area, code, serial)
            if refused:
                errors["serial"] = refused
        if errors:
            status = 422
        else:
            key = paper_key(wave.id, user.area_id, serial)
            stored = store_response(
                session, definition, answers, key=key, wave_id=wave.id, version_id=version_id, link_id=None,
                area_id=user.area_id, channel="paper", started_at=None, entered_by_id=user.id,
            )
            if stored.created:
                message, values = ("ok", f"已保存：编号 {serial}"), {}
            else:
                first = session.get(Response, stored.response_id)
                if first is None:  # the id store_response has just read (responses are never deleted)
                    raise LookupError(f"response {stored.response_id} is gone")
                entered_by = session.get(User, first.entered_by_id) if first.entered_by_id else None
                who = entered_by.username if entered_by is not None else "—"
                message = ("dup", f"编号 {serial} 的问卷已经录入过（{who}，{format_local(first.submitted_at, '%m-%d %H:%M')}），这次没有重复保存。")
                status, values = 409, {}
    mine, by_worker = _counts(session, user, wave.id)
    return render_template(
        "entry/page.html", closed=False, code=code, questionnaires=questionnaires, user=user, wave=wave,
        definition=definition, numbered=numbered_items(definition), values=values, errors=errors, message=message, mine=mine, by_worker=by_worker,
        csrf_value=generate_csrf(), today=today.isoformat(), expr_script=_has_expression_script(),
    ), status


def _has_expression_script() -> bool:
    """Return whether the expression engine's browser half (static/expr.js) is installed."""
    return Path(current_app.static_folder or "", "expr.js").is_file()

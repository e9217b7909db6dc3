"""Public questionnaire pages at /s/<token>: no login, no JavaScript needed."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, make_response, render_template, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

from forms import collect_answers
from survey import db
from survey.limits import PUBLIC_GET_LIMIT, PUBLIC_POST_LIMIT, limiter
from survey.links import LinkUnavailable, resolve
from survey.quality import device_id, ip_hash, set_device_cookie
from survey.questionnaires import definition_of, form_class_of
from survey.security import csrf
from survey.submissions import already_stored, issue_key, read_key, store_response

bp = Blueprint("public", __name__)
# The form's own CSRF field is checked in the view, so a stale token re-shows the answers
# instead of losing them to the global check.
csrf.exempt(bp)


@bp.errorhandler(LinkUnavailable)
def _unavailable(exc: LinkUnavailable):
    return render_template("public/message.html", title=exc.title, message=exc.message), exc.status


@bp.errorhandler(429)
def _too_many(_exc):
    """Too many submissions from this address: show the form again with every answer kept."""
    if request.method != "POST":
        return render_template("public/message.html", title="访问太频繁", message="访问太频繁了，请稍等一分钟后再试。"), 429
    token = request.view_args.get("token", "") if request.view_args else ""
    target = resolve(db.session(), token, datetime.now(UTC))
    definition = definition_of(target.version)
    form = form_class_of(definition)()
    place = target.link.area.name if target.link.area else None
    return render_template(
        "public/questionnaire.html", definition=definition, token=token, place=place, form=form,
        submission_key=request.form.get("submission_key", ""),
        notice="提交太频繁了，请稍等一分钟后再点“提交问卷”。您的回答都已保留。",
    ), 429


@bp.route("/s/<token>", methods=["GET", "POST"])
@limiter.limit(PUBLIC_GET_LIMIT, methods=["GET"])
@limiter.limit(PUBLIC_POST_LIMIT, methods=["POST"])
def questionnaire(token: str):
    """Show the questionnaire of a link, or store a submitted one and thank the respondent."""
    now = datetime.now(UTC)
    session = db.session()
    target = resolve(session, token, now)
    definition = definition_of(target.version)
    form = form_class_of(definition)()
    # Plain values only: the template must render even after a failed write expired the ORM objects.
    place = target.link.area.name if target.link.area else None
    context = {"definition": definition, "token": token, "place": place, "form": form}
    device, new_device = device_id(request, target.wave.id)
    if request.method == "GET":
        page = make_response(render_template("public/questionnaire.html", submission_key=issue_key(target.link.id), **context))
        if new_device:
            set_device_cookie(page, target.wave.id, device)
        return page

    key = read_key(request.form.get("submission_key"), target.link.id)
    if key is None:
        # Not a key we issued for this link (tampered, or very old): keep the answers, new key.
        form.validate()
        return render_template(
            "public/questionnaire.html",
            submission_key=issue_key(target.link.id),
            notice="页面已过期，您的回答都已保留，请检查后再次提交。",
            **context,
        ), 400
    if already_stored(session, key.key):
        return render_template("public/thanks.html", definition=definition, repeated=True)
    if not form.validate():
        status = 400 if "csrf_token" in form.errors else 422
        notice = "页面已过期，您的回答都已保留，请再次提交。" if "csrf_token" in form.errors else None
        return render_template(
            "public/questionnaire.html", submission_key=request.form["submission_key"], notice=notice, **context
        ), status
    try:
        stored = store_response(
            session,
            definition,
            collect_answers(definition, form),
            key=key.key,
            wave_id=target.wave.id,
            version_id=target.version.id,
            link_id=target.link.id,
            area_id=target.link.area_id,
            channel=target.link.channel,
            started_at=key.started_at,
            submitted_at=now,
            device_id=device,
            ip_hash=ip_hash(request.remote_addr, target.wave.id),
        )
    except (OperationalError, SQLAlchemyTimeoutError):
        current_app.logger.exception("could not store a response; the respondent keeps their answers")
        return render_template(
            "public/questionnaire.html",
            submission_key=request.form["submission_key"],
            notice="系统繁忙，您的回答都已保留，请稍后再点一次“提交问卷”。",
            **context,
        ), 503
    return render_template("public/thanks.html", definition=definition, repeated=not stored.created)

"""The school's campaign board: per class, answers received against class size. Never answers."""
from __future__ import annotations

from flask import Blueprint, render_template

from survey import db
from survey.auth import current_user, role_required
from survey.links import public_url
from survey.models import Link, SchoolClass
from survey.schools import AUDIENCE_NAMES, class_progress
from survey.waves import latest_wave

bp = Blueprint("school", __name__, url_prefix="/school")


@bp.get("/")
@role_required("school")
def board():
    session = db.session()
    school = current_user().school
    wave = latest_wave(session)
    rows = class_progress(session, school, wave.id if wave else None)
    links = {
        (link.school_class_id, link.audience): public_url(link)
        for link in session.query(Link).join(SchoolClass, SchoolClass.id == Link.school_class_id)
        .filter(SchoolClass.school_id == school.id, Link.enabled)
    }
    return render_template("school/board.html", school=school, wave=wave, rows=rows, links=links,
                           audiences=AUDIENCE_NAMES)

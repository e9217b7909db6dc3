"""The school's campaign board: per class, answers received against class size. Never answers."""
from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, abort, jsonify, render_template

from survey import db
from survey.appcontext import app_object
from survey.auth import role_required, staff_user
from survey.links import public_url
from survey.models import Link, School, SchoolClass
from survey.reading import documents
from survey.schools import AUDIENCE_NAMES, class_progress
from survey.waves import latest_wave

bp = Blueprint("school", __name__, url_prefix="/school", template_folder="templates")
POLL_SECONDS = 60  # how often the board's script asks for fresh counts


def _school() -> School:
    """Return the logged-in school account's school (create_user binds every school account to one)."""
    school = staff_user().school
    if school is None:
        abort(403)
    return school


@bp.get("/")
@role_required("school")
def board():
    session = db.session()
    school = _school()
    wave = latest_wave(session)
    rows = class_progress(session, school, wave.id if wave else None)
    links = {
        (link.school_class_id, link.audience): public_url(link)
        for link in session.query(Link).join(SchoolClass, SchoolClass.id == Link.school_class_id)
        .filter(SchoolClass.school_id == school.id, Link.enabled)
    }
    return render_template("school/board.html", school=school, wave=wave, rows=rows, links=links,
                           audiences=AUDIENCE_NAMES, poll_seconds=POLL_SECONDS)


@bp.get("/progress.json")
@role_required("school")
def progress():
    """Return the board's counts per class (the board's script polls this), never answers."""
    session = db.session()
    wave = latest_wave(session)
    rows = class_progress(session, _school(), wave.id if wave else None)
    response = jsonify({"classes": [
        {"id": r["class"].id, "name": r["class"].name, "pupils": r["pupils"], "parents_answered": r["parents_answered"],
         "pupils_answered": r["pupils_answered"], "parent_rate": r["parent_rate"], "pupil_rate": r["pupil_rate"]}
        for r in rows
    ]})
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/qr.pdf")
@role_required("school")
def qr():
    """Return the printable QR codes of this school's classes (parents' and pupils' links) only."""
    school = _school()
    pdf, _ = documents.school_qr_sheet(app_object(), db.session(), school)
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(f'二维码-{school.name}.pdf')}"
    response.headers["Cache-Control"] = "private, no-store"
    return response

"""Data-quality flags: straight-lining at submit, speeders and repeated devices at analysis."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from survey import db
from survey.models import AnalysisRun, Response, Wave
from survey.quality import purge_device_data
from tests.conftest import form_fields, full_answers


def submit(client, token, **answers):
    fields = form_fields(client.get(f"/s/{token}").get_data(as_text=True))
    page = client.post(f"/s/{token}", data=fields | full_answers(**answers))
    assert page.status_code == 200
    return page


def responses(app):
    with app.app_context():
        return db.session().scalars(select(Response).order_by(Response.id)).all()


def test_same_choice_on_every_satisfaction_item_is_flagged_at_submit(app, client, city):
    submit(client, city["A1"])  # all ten satisfaction items "4": straight-lining
    varied = {f"q{i:02d}": str(1 + i % 5) for i in range(1, 11)}
    other = app.test_client()  # a second phone
    submit(other, city["A1"], **varied)
    first, second = responses(app)
    assert first.flag_straightline and not second.flag_straightline


@pytest.mark.parametrize("secure", [False, True])
def test_the_device_cookie_is_written_as_werkzeug_would_write_it(app, secure, monkeypatch):
    """set_device_cookie writes its header itself (hot path); it must say what Response.set_cookie would."""
    from flask import Response as FlaskResponse

    from survey.quality import DEVICE_COOKIE_DAYS, set_device_cookie
    from survey.signing import sign

    app.config["SESSION_COOKIE_SECURE"] = secure
    monkeypatch.setattr("survey.quality.time.time", lambda: 1_800_000_000.25)
    max_age = DEVICE_COOKIE_DAYS * 24 * 3600
    with app.test_request_context("/"):
        ours, theirs = FlaskResponse(), FlaskResponse()
        set_device_cookie(ours, 3, "0123456789abcdef")
        theirs.set_cookie("sv_dev_3", sign("device-3", "0123456789abcdef"), max_age=max_age,
                          expires=1_800_000_000 + max_age, httponly=True, samesite="Lax", secure=secure)
        assert ours.headers.getlist("Set-Cookie") == theirs.headers.getlist("Set-Cookie")


def test_device_cookie_and_ip_hash_never_the_address(app, client, city):
    page = client.get(f"/s/{city['A1']}")
    cookies = page.headers.getlist("Set-Cookie")
    assert any(c.startswith("sv_dev_") and "HttpOnly" in c for c in cookies), cookies
    submit(client, city["A1"], q01="5")
    submit(client, city["A1"], q01="3")  # same phone again
    first, second = responses(app)
    assert first.device_id and first.device_id == second.device_id
    assert first.ip_hash and first.ip_hash != "127.0.0.1" and len(first.ip_hash) == 40


def test_analysis_flags_speeders_and_repeats_and_leaves_them_out_unless_asked(app, runner, client, city):
    for i in range(6):
        submit(app.test_client(), city["A1"], q01=str(1 + i % 5))
    submit(client, city["A2"], q01="5")
    submit(client, city["A2"], q01="1")  # repeated device
    with app.app_context(), db.write_transaction() as session:
        rows = session.scalars(select(Response).order_by(Response.id)).all()
        for i, response in enumerate(rows):
            response.duration_s = 240.0 + i
            response.flag_straightline = False
        rows[0].duration_s = 25.0  # a speeder: under both half the median and the floor
    result = runner.invoke(args=["analyze"])
    assert result.exit_code == 0, result.output
    assert "Data quality: 2 flagged responses left out (too fast 1, same choice throughout 0, repeated device 1)" in result.output
    with app.app_context():
        run = db.session().scalars(select(AnalysisRun)).one()
        assert run.respondents == 6 and run.summary["quality"]["flagged"] == 2
        flags = [(r.flag_speeder, r.flag_repeat_device) for r in db.session().scalars(select(Response).order_by(Response.id))]
    assert flags[0] == (True, False) and flags[-1] == (False, True) and flags.count((False, False)) == 6
    kept = runner.invoke(args=["analyze", "--include-flagged"])
    assert "kept in" in kept.output
    with app.app_context():
        newest = db.session().scalars(select(AnalysisRun).order_by(AnalysisRun.id.desc())).first()
        assert newest.respondents == 8


def test_device_data_is_cleared_when_the_wave_is_over(app, client, city):
    submit(client, city["A1"])
    with app.app_context(), db.write_transaction() as session:
        session.scalars(select(Wave)).one().closes_at = datetime.now(UTC) - timedelta(hours=1)
    with app.app_context(), db.write_transaction() as session:
        assert purge_device_data(session) == 1
    (response,) = responses(app)
    assert response.device_id is None and response.ip_hash is None

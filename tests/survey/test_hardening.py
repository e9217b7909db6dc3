"""Regressions found by trying the platform as a resident, a grid worker and an attacker would."""
from __future__ import annotations

import hashlib
import hmac
import io
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from survey import db
from survey.auth import create_user
from survey.models import Link, Response, Wave
from survey.schools import import_schools, make_class_links
from survey.waves import create_wave
from tests.conftest import PASSWORD, dispose, form_fields, full_answers, logged_in


def count(app, *where) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(Response).where(*where))


def grid_client(app, username: str, community: str, address: str):
    with app.app_context(), db.write_transaction() as session:
        create_user(session, username, PASSWORD, "grid", community)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    logged_in(client, username)
    client.csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/entry/").get_data(as_text=True)).group(1)
    return client


def paper(client, serial: str, **override: str):
    """Post a paper questionnaire by choice numbers (every question answered with its first choice)."""
    numbers = {code: "1" for code in full_answers()} | override
    return client.post("/entry/", data={"csrf_token": client.csrf, "serial": serial} | numbers)


# 1a. Paper entry with Unicode digits.
@pytest.mark.parametrize(("typed", "number"), [("４", 4), ("2", 2), (" ６ ", 6)])
def test_paper_entry_takes_full_width_digits(app, city, typed, number):
    from forms.bundled import bundled_definitions

    client = grid_client(app, "grid1", "A1", "10.20.0.1")
    assert paper(client, "P-1", q01=typed).status_code == 200
    with app.app_context():
        response = db.session().scalars(select(Response)).one()
        chosen = {a.item_code: a.choice_code for a in response.answers}["q01"]
    assert chosen == bundled_definitions()[("citizen", 1)].item("q01").choices[number - 1].code


@pytest.mark.parametrize("typed", ["²", "٣", "৪", "1²", "-1", "+2", "1.0", "0"])
def test_paper_entry_refuses_other_digits_with_a_message(app, city, typed):
    client = grid_client(app, "grid1", "A1", "10.20.0.2")
    page = paper(client, "P-2", q01=typed)
    assert page.status_code == 422
    assert "请输入1到6" in page.get_data(as_text=True)
    assert count(app) == 0


# 1b. Multipart with the comment as a file part.
def test_a_file_part_named_like_a_question_is_not_an_answer(app, client, city):
    fields = form_fields(client.get(f"/s/{city['A1']}").get_data(as_text=True))
    data = fields | full_answers() | {"comment": (io.BytesIO(b"x" * 100), "comment.txt")}
    page = client.post(f"/s/{city['A1']}", data=data, content_type="multipart/form-data")
    assert page.status_code == 200
    with app.app_context():
        response = db.session().scalars(select(Response)).one()
        assert "comment" not in {a.item_code for a in response.answers}


# 1c. The 429 page for a link that is unknown, disabled or closed.
@pytest.mark.parametrize("state", ["unknown", "disabled", "closed"])
def test_too_many_posts_to_a_dead_link_get_a_429_page(app, client, city, state):
    token = city["A1"]
    with app.app_context(), db.write_transaction() as session:
        if state == "disabled":
            session.execute(update(Link).where(Link.token == token).values(enabled=False))
        if state == "closed":
            session.execute(update(Wave).values(closes_at=datetime.now(UTC) - timedelta(minutes=1)))
    target = "does-not-exist-123" if state == "unknown" else token
    statuses = {client.post(f"/s/{target}", data={"q01": "5"}).status_code for _ in range(121)}
    assert statuses == {404 if state == "unknown" else 410, 429}
    last = client.post(f"/s/{target}", data={"q01": "5"})
    assert last.status_code == 429 and "访问太频繁" in last.get_data(as_text=True)


# 1d. Control characters in any text input.
@pytest.mark.parametrize("comment", ["楼道灯\x00坏了", "bell\x07", "esc\x1b[31m", "del\x7f", "路灯\u202e了坏"])
def test_control_characters_in_a_comment_are_refused_with_the_answers_kept(app, client, city, comment):
    fields = form_fields(client.get(f"/s/{city['A1']}").get_data(as_text=True))
    page = client.post(f"/s/{city['A1']}", data=fields | full_answers(q03="2", comment=comment))
    html = page.get_data(as_text=True)
    assert page.status_code == 422
    assert "特殊字符" in html
    assert 'name="q03" value="2" checked' in html
    assert count(app) == 0


def test_line_breaks_and_tabs_in_a_comment_are_kept(app, client, city):
    fields = form_fields(client.get(f"/s/{city['A1']}").get_data(as_text=True))
    page = client.post(f"/s/{city['A1']}", data=fields | full_answers(comment="路灯坏了\r\n两周\t没人修"))
    assert page.status_code == 200
    with app.app_context():
        texts = db.session().scalars(select(Response)).one().answers
        assert [a.text for a in texts if a.text] == ["路灯坏了\r\n两周\t没人修"]


def test_control_characters_in_paper_entry_and_logins_get_a_4xx(app, city):
    client = grid_client(app, "grid1", "A1", "10.20.0.3")
    page = paper(client, "P-3", comment="坏了\x00")
    assert page.status_code == 422 and "特殊字符" in page.get_data(as_text=True)
    assert paper(client, "P\x00-3").status_code == 422
    other = app.test_client()
    login_page = other.get("/office/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    assert other.post("/office/login", data={"csrf_token": token, "username": "ci\x00ty", "password": "x"}).status_code == 400
    assert other.get("/office/area/C%00").status_code == 404
    assert other.get("/s/aaaaaaaa%00bbbb").status_code == 404
    assert count(app) == 0


def test_a_parent_picking_a_community_code_with_a_nul_is_asked_again(app, client, city):
    with app.app_context(), db.write_transaction() as session:
        import_schools(session, "school,district,class,grade,pupils\n一小,D1,三年级1班,3,40\n")
        parent = next(link for link in make_class_links(session) if link.audience == "parent").token
    fields = form_fields(client.get(f"/s/{parent}").get_data(as_text=True))
    page = client.post(f"/s/{parent}", data=fields | full_answers(community="A1\x00"))
    assert page.status_code == 422 and "请选择您居住的社区" in page.get_data(as_text=True)


# 4. Paper serials are per wave and community.
def test_the_same_serial_in_two_communities_is_two_papers(app, city):
    first, second = grid_client(app, "grid1", "A1", "10.21.0.1"), grid_client(app, "grid2", "B1", "10.21.0.2")
    assert paper(first, "0001").status_code == 200
    page = paper(second, "0001")
    assert page.status_code == 200 and "已保存" in page.get_data(as_text=True)
    assert count(app) == 2


def test_a_serial_typed_twice_in_one_community_is_stored_once_and_names_no_other_area(app, city):
    first, again = grid_client(app, "grid1", "A1", "10.21.0.3"), grid_client(app, "grid3", "A1", "10.21.0.4")
    stranger = grid_client(app, "grid2", "B1", "10.21.0.5")
    assert paper(stranger, "a-7").status_code == 200
    assert paper(first, "A-7").status_code == 200
    duplicate = paper(again, "a-7")  # serials are not case-sensitive
    html = duplicate.get_data(as_text=True)
    assert duplicate.status_code == 409 and "已经录入过" in html and "grid1" in html and "grid2" not in html
    assert count(app) == 2


# 6. IP hashes with a random per-wave salt, cleared by housekeeping without `flask analyze`.
def test_ip_hashes_use_a_random_wave_salt_not_the_app_secret(app, client, city):
    client.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    fields = form_fields(client.get(f"/s/{city['A1']}").get_data(as_text=True))
    client.post(f"/s/{city['A1']}", data=fields | full_answers())
    with app.app_context():
        response = db.session().scalars(select(Response)).one()
        salt = db.session().get(Wave, response.wave_id).ip_salt
    assert len(salt) == 64
    assert response.ip_hash == hmac.new(bytes.fromhex(salt), b"203.0.113.9", hashlib.sha256).hexdigest()[:40]
    keyed = hashlib.sha256(f"test-secret|ip|{response.wave_id}".encode()).digest()  # the old, reversible scheme
    assert response.ip_hash != hmac.new(keyed, b"203.0.113.9", hashlib.sha256).hexdigest()[:40]


def test_closing_a_wave_deletes_salt_hashes_and_device_ids_on_its_own(app, city, tmp_path):
    from survey import create_app

    client = app.test_client()
    fields = form_fields(client.get(f"/s/{city['A1']}").get_data(as_text=True))
    client.post(f"/s/{city['A1']}", data=fields | full_answers())
    with app.app_context(), db.write_transaction() as session:
        session.execute(update(Wave).values(closes_at=datetime.now(UTC) - timedelta(seconds=1)))
    # A server process with the housekeeping thread on: its first request starts the thread.
    served = create_app(app.config | {"HOUSEKEEPING_INTERVAL_S": 0.05})
    served.test_client().get("/s/unknown-token")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with app.app_context():
            wave = db.session().scalars(select(Wave)).one()
            response = db.session().scalars(select(Response)).one()
            if wave.device_data_cleared_at is not None:
                break
        time.sleep(0.05)
    served.extensions["housekeeping_stop"].set()
    served.extensions["housekeeping_thread"].join(timeout=10)
    dispose(served)
    assert wave.ip_salt is None and wave.device_data_cleared_at is not None
    assert response.ip_hash is None and response.device_id is None


def test_housekeeping_command_clears_closed_waves(app, runner, city):
    client = app.test_client()
    fields = form_fields(client.get(f"/s/{city['A1']}").get_data(as_text=True))
    client.post(f"/s/{city['A1']}", data=fields | full_answers())
    with app.app_context(), db.write_transaction() as session:
        session.execute(update(Wave).values(closes_at=datetime.now(UTC) - timedelta(seconds=1)))
    result = runner.invoke(args=["housekeeping"])
    assert result.exit_code == 0 and "responses cleared 1" in result.output
    assert "responses cleared 0" in runner.invoke(args=["housekeeping"]).output


# 7. A form rendered in one wave and sent in the next; a pupil's grade band.
def test_a_form_from_the_last_wave_is_not_stored_in_the_new_one(app, client, city):
    fields = form_fields(client.get(f"/s/{city['A1']}").get_data(as_text=True))
    now = datetime.now(UTC)
    with app.app_context(), db.write_transaction() as session:
        session.execute(update(Wave).values(closes_at=now - timedelta(seconds=1)))
        create_wave(session, "第二轮", now - timedelta(seconds=1), now + timedelta(days=30), ["citizen"])
    page = client.post(f"/s/{city['A1']}", data=fields | full_answers(q05="2"))
    html = page.get_data(as_text=True)
    assert page.status_code == 409 and "新一轮" in html
    assert 'name="q05" value="2" checked' in html
    assert count(app) == 0
    again = client.post(f"/s/{city['A1']}", data=form_fields(html) | full_answers(q05="2"))
    assert again.status_code == 200
    with app.app_context():
        stored = db.session().scalars(select(Response)).one()
        assert db.session().get(Wave, stored.wave_id).name == "第二轮"


@pytest.fixture
def pupil_link(app, city):
    with app.app_context(), db.write_transaction() as session:
        import_schools(session, "school,district,class,grade,pupils\n一小,D1,五年级2班,5,40\n")
        return next(link for link in make_class_links(session) if link.audience == "pupil").token


def minor_answers(**override: str) -> dict[str, str]:
    from forms.bundled import bundled_definitions

    definition = bundled_definitions()[("minor", 1)]
    answers = {item.code: item.choices[0].code for item in definition.items if item.choices}
    return answers | override


def test_a_pupil_form_comes_with_the_class_grade_band_chosen(app, client, pupil_link):
    html = client.get(f"/s/{pupil_link}").get_data(as_text=True)
    assert 'name="grade_band" value="P4-6" checked' in html
    assert html.count("checked") == 1
    # Only the class's 学段 is offered (issue 26 item 10): the other three would be refused anyway.
    assert re.findall(r'name="grade_band" value="([^"]+)"', html) == ["P4-6"]


def test_a_pupil_grade_band_that_contradicts_the_class_is_refused(app, client, pupil_link):
    fields = form_fields(client.get(f"/s/{pupil_link}").get_data(as_text=True))
    page = client.post(f"/s/{pupil_link}", data=fields | minor_answers(grade_band="J1-3"))
    assert page.status_code == 422 and "小学4—6年级" in page.get_data(as_text=True)
    assert count(app) == 0
    ok = client.post(f"/s/{pupil_link}", data=fields | minor_answers(grade_band="P4-6"))
    assert ok.status_code == 200
    with app.app_context():
        assert db.session().scalars(select(Response)).one().attributes == {"grade_band": "P4-6"}


# 11. Little things.
def test_the_root_sends_people_somewhere_useful(client):
    page = client.get("/")
    assert page.status_code == 302 and page.headers["Location"].endswith("/office/login")


def test_reopening_a_link_after_answering_says_it_was_sent(app, client, city):
    fields = form_fields(client.get(f"/s/{city['A1']}").get_data(as_text=True))
    assert "已经提交过" not in client.get(f"/s/{city['A2']}").get_data(as_text=True)
    client.post(f"/s/{city['A1']}", data=fields | full_answers())
    assert "已经提交过这份问卷" in client.get(f"/s/{city['A1']}").get_data(as_text=True)
    assert "已经提交过" not in client.get(f"/s/{city['A2']}").get_data(as_text=True)  # another link
    assert "已经提交过" not in app.test_client().get(f"/s/{city['A1']}").get_data(as_text=True)  # another phone


def test_a_second_answer_from_the_same_phone_is_told_it_will_not_count(app, client, city):
    """Issue 26 item 11: the reopened page says a second answer won't count, and the second thanks says so too."""
    first = form_fields(client.get(f"/s/{city['A1']}").get_data(as_text=True))
    assert "不计入统计" not in client.post(f"/s/{city['A1']}", data=first | full_answers()).get_data(as_text=True)
    reopened = client.get(f"/s/{city['A1']}").get_data(as_text=True)
    assert "同一台手机再次提交的问卷不计入统计" in reopened
    thanks = client.post(f"/s/{city['A1']}", data=form_fields(reopened) | full_answers()).get_data(as_text=True)
    assert "提交成功" in thanks and "这一份不计入统计" in thanks
    again = client.post(f"/s/{city['A1']}", data=form_fields(reopened) | full_answers()).get_data(as_text=True)
    assert "此前已经收到" in again  # the same form twice: stored once, said as before


def test_staff_pages_are_not_cached(app, city):
    client = grid_client(app, "grid1", "A1", "10.22.0.1")
    for path in ("/entry/", "/office/login"):
        assert "no-store" in client.get(path).headers.get("Cache-Control", ""), path


def test_the_browser_s_favicon_request_is_answered(client):
    reply = client.get("/favicon.ico")
    assert reply.status_code == 200 and reply.data[:4] == b"\x00\x00\x01\x00"  # an ICO file

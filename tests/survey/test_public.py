"""The resident's flow at /s/<token>: form, validation, thank-you, idempotent resubmission."""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, Request, build_opener

import pytest
from sqlalchemy import func, select

from survey import db
from survey.models import Answer, Link, Response, Wave
from tests.conftest import POSTGRES_URL, POSTGRESQL_ONLY, form_fields, full_answers


def count_responses(app) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(Response))


def open_form(client, token):
    page = client.get(f"/s/{token}")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_form_renders_in_chinese_with_privacy_note_and_community(client, city):
    html = open_form(client, city["A1"])
    assert "全国文明城市创建工作市民问卷调查" in html
    assert "隐私说明" in html and "甲社区" in html
    assert '<html lang="zh-CN">' in html
    # Every question is a fieldset with a legend, every choice a labelled radio button.
    assert html.count("<fieldset") == 17
    assert html.count('<label class="choice">') == 2 + 4 + 2 + 4 * 3 + 10 * 6
    # One script (form.js: drafts, progress, checks as you type), from the site itself: no inline script.
    assert re.findall(r"<script[^>]*>", html)[-1] == '<script src="/static/form.js" defer>'
    assert "<script>" not in html and " on" + "click=" not in html
    fields = form_fields(html)
    assert set(fields) == {"submission_key"}


def test_links_share_one_rendering_of_the_form_each_with_its_own_address_place_and_key(app, client, city):
    """The blank form is rendered once per version and wave; each link's page still says its own place and address."""
    from flask import template_rendered

    from survey.models import Area

    with app.app_context(), db.write_transaction() as session:
        session.scalars(select(Area).where(Area.code == "B1")).one().name = '丙<社区> & "新村"'
    rendered = []

    def record(_sender, template, context, **_extra):
        rendered.append(template.name)

    template_rendered.connect(record, app)
    try:
        pages = {code: open_form(client, city[code]) for code in ("A1", "A2", "B1", "A1")}
    finally:
        template_rendered.disconnect(record, app)
    assert rendered.count("public/questionnaire.html") == 1
    for code, html in pages.items():
        assert f'action="/s/{city[code]}"' in html
        assert "token-slot" not in html and "\x00" not in html
    assert '<p class="place">甲社区</p>' in pages["A1"] and "乙社区" not in pages["A1"]
    assert '<p class="place">丙&lt;社区&gt; &amp; &#34;新村&#34;</p>' in pages["B1"]
    assert len({form_fields(html)["submission_key"] for html in pages.values()}) == 3
    # A key belongs to the link whose page issued it: A1's key does not store an answer through A2.
    refused = client.post(f"/s/{city['A2']}", data=form_fields(pages["A1"]) | full_answers())
    assert refused.status_code == 400 and count_responses(app) == 0


def test_submission_is_stored_with_scores_attributes_and_timing(app, client, city):
    fields = form_fields(open_form(client, city["A2"]))
    answers = full_answers(q01="5", q02="0", comment="  楼道灯坏了  ")
    page = client.post(f"/s/{city['A2']}", data=fields | answers)
    assert page.status_code == 200
    assert "提交成功" in page.get_data(as_text=True)
    with app.app_context():
        response = db.session().scalars(select(Response)).one()
        # q01 100, q02 don't know (left out), eight items at 80: mean over nine scored items.
        assert response.score == pytest.approx((100 + 8 * 80) / 9)
        assert response.scored_items == 9
        assert (response.attributes, response.channel) == ({"sex": "F", "age_band": "30-44", "resident_6m": "Y"}, "qr")
        assert response.area_id == db.session().scalar(select(Link.area_id).where(Link.token == city["A2"]))
        assert 0 <= response.duration_s < 60
        answers_stored = {a.item_code: (a.choice_code, a.score, a.text) for a in response.answers}
        assert answers_stored["q02"] == ("0", None, None)
        assert answers_stored["q01"] == ("5", 100.0, None)
        assert answers_stored["k04"] == ("N", None, None)
        assert answers_stored["comment"] == (None, None, "楼道灯坏了")


def test_retried_or_double_tapped_submit_stores_one_response(app, client, city):
    fields = form_fields(open_form(client, city["A1"]))
    first = client.post(f"/s/{city['A1']}", data=fields | full_answers())
    second = client.post(f"/s/{city['A1']}", data=fields | full_answers())
    assert first.status_code == second.status_code == 200
    assert "提交成功" in second.get_data(as_text=True)
    assert "无需重复提交" in second.get_data(as_text=True)
    assert count_responses(app) == 1
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Answer)) == 17


def test_two_forms_from_the_same_phone_are_two_responses(app, client, city):
    for _ in range(2):
        fields = form_fields(open_form(client, city["A1"]))
        assert client.post(f"/s/{city['A1']}", data=fields | full_answers()).status_code == 200
    assert count_responses(app) == 2


def test_validation_errors_keep_every_answer(app, client, city):
    fields = form_fields(open_form(client, city["B1"]))
    partial = full_answers(comment="路灯不亮")
    del partial["q03"], partial["k01"]
    page = client.post(f"/s/{city['B1']}", data=fields | partial)
    html = page.get_data(as_text=True)
    assert page.status_code == 422
    assert "还有 2 题需要处理" in html
    assert html.count("请选择一项") >= 2
    assert re.search(r'href="#q-q03"[^>]*>第10题</a>', html) and re.search(r'href="#q-k01"[^>]*>第4题</a>', html)
    assert 'aria-invalid="true" aria-describedby="e-q03"' in html
    # Every answer given is still selected, the free text still there, the key unchanged.
    checked = dict(re.findall(r'name="(\w+)" value="([^"]+)" checked', html))
    assert checked == {k: v for k, v in partial.items() if k != "comment"}
    assert "路灯不亮</textarea>" in html
    assert form_fields(html)["submission_key"] == fields["submission_key"]
    assert count_responses(app) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [({"q01": "9"}, "请从列出的选项中选择一项"), ({"comment": "长" * 501}, "请不要超过500个字")],
)
def test_invalid_values_are_rejected_without_storing(app, client, city, change, message):
    fields = form_fields(open_form(client, city["A1"]))
    page = client.post(f"/s/{city['A1']}", data=fields | full_answers(**change))
    assert page.status_code == 422
    assert message in page.get_data(as_text=True)
    assert count_responses(app) == 0


def test_tampered_submission_key_keeps_answers_and_issues_a_new_key(app, client, city):
    fields = form_fields(open_form(client, city["A1"]))
    key = fields["submission_key"]
    # Change a character of the signed payload (trailing base64 characters can carry ignored bits).
    tampered = fields | {"submission_key": key[:3] + ("A" if key[3] != "A" else "B") + key[4:]}
    page = client.post(f"/s/{city['A1']}", data=tampered | full_answers(q05="2"))
    html = page.get_data(as_text=True)
    assert page.status_code == 400
    assert "您的回答都已保留" in html
    assert 'name="q05" value="2" checked' in html
    new_key = form_fields(html)["submission_key"]
    assert new_key != tampered["submission_key"]
    assert client.post(f"/s/{city['A1']}", data=fields | {"submission_key": new_key} | full_answers()).status_code == 200
    assert count_responses(app) == 1


def test_a_key_for_another_link_is_not_accepted(app, client, city):
    fields = form_fields(open_form(client, city["A1"]))
    page = client.post(f"/s/{city['A2']}", data=fields | full_answers())
    assert page.status_code == 400
    assert count_responses(app) == 0


def test_residents_get_no_session_cookie(client, city):
    fields = form_fields(open_form(client, city["A1"]))
    page = client.post(f"/s/{city['A1']}", data=fields | full_answers())
    assert page.status_code == 200
    assert client.get_cookie("session", domain="survey.test") is None
    assert all(not c.startswith("session=") for c in page.headers.getlist("Set-Cookie"))


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Origin": "http://[::1"}, 403),  # not an address: refused with the answers kept, never a 500
        ({"Referer": "http://[survey.test/s/x"}, 403),
        ({"Referer": "https://evil.example/page"}, 403),
        ({"Origin": "http://survey.test"}, 200),
        ({"Referer": "http://survey.test/s/x"}, 200),
        ({}, 200),  # a browser that says nothing: the signed one-time key still binds the POST to a GET
    ],
)
def test_a_post_from_another_site_is_refused_and_keeps_the_answers(app, client, city, headers, status):
    fields = form_fields(open_form(client, city["A1"]))
    page = client.post(f"/s/{city['A1']}", data=fields | full_answers(q07="1"), headers=headers)
    assert page.status_code == status
    if status == 403:
        html = page.get_data(as_text=True)
        assert "请在本问卷的页面上提交" in html and 'name="q07" value="1" checked' in html
    assert count_responses(app) == (1 if status == 200 else 0)


def test_a_public_base_url_origin_is_accepted(app, client, city):
    app.config["PUBLIC_BASE_URL"] = "https://survey.example.gov.cn"
    fields = form_fields(open_form(client, city["A1"]))
    page = client.post(f"/s/{city['A1']}", data=fields | full_answers(), headers={"Origin": "https://survey.example.gov.cn"})
    assert page.status_code == 200


def test_a_community_imported_later_reaches_the_parents_picker(app, city):
    import time

    from survey.areas import import_areas
    from survey.schools import import_schools, make_class_links

    app.config["BLANK_PAGE_SECONDS"] = 0.3
    with app.app_context(), db.write_transaction() as session:
        import_schools(session, "school,district,class,grade,pupils\n一小,D1,三年级1班,3,40\n")
        parent = next(link for link in make_class_links(session) if link.audience == "parent").token
    client = app.test_client()
    assert "新建社区" not in open_form(client, parent)
    with app.app_context(), db.write_transaction() as session:
        import_areas(session, "code,name,level,parent_code,adult_population,responsible_unit\nB2,新建社区,community,S2,100,\n")
    time.sleep(0.4)
    assert "新建社区" in open_form(client, parent)


def test_unknown_token_is_404_in_chinese(client, city):
    page = client.get("/s/no-such-token-here")
    assert page.status_code == 404
    assert "链接无效" in page.get_data(as_text=True)


def test_disabled_link_is_410(app, client, city):
    with app.app_context(), db.write_transaction() as session:
        session.scalars(select(Link).where(Link.token == city["A1"])).one().enabled = False
    page = client.get(f"/s/{city['A1']}")
    assert page.status_code == 410
    assert "链接已停用" in page.get_data(as_text=True)


def test_closed_wave_is_410_and_refuses_posts(app, client, city):
    fields = form_fields(open_form(client, city["A1"]))
    with app.app_context(), db.write_transaction() as session:
        wave = session.scalars(select(Wave)).one()
        wave.closes_at = datetime.now(UTC) - timedelta(minutes=1)
    assert client.get(f"/s/{city['A1']}").status_code == 410
    page = client.post(f"/s/{city['A1']}", data=fields | full_answers())
    assert page.status_code == 410
    assert "调查未在进行" in page.get_data(as_text=True)
    assert count_responses(app) == 0


def test_security_headers(client, city):
    page = client.get(f"/s/{city['A1']}")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_fifty_concurrent_distinct_submissions_are_all_stored(app, city, live_server):
    url = f"{live_server}/s/{city['A1']}"

    def one_phone(i: int) -> int:
        opener = build_opener(HTTPCookieProcessor())
        html = opener.open(url, timeout=30).read().decode()
        body = urlencode(form_fields(html) | full_answers(q01=str(1 + i % 5))).encode()
        with opener.open(Request(url, data=body, method="POST"), timeout=60) as reply:
            assert "提交成功" in reply.read().decode()
            return reply.status

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(one_phone, range(50)))
    assert statuses == [200] * 50
    assert count_responses(app) == 50


def test_too_many_submissions_get_a_chinese_429_that_keeps_the_answers(app, city):
    from survey.limits import PUBLIC_POST_LIMIT

    per_minute = int(PUBLIC_POST_LIMIT.split()[0])
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.20.30.40"
    fields = form_fields(open_form(client, city["A1"]))
    incomplete = full_answers(q06="2")
    del incomplete["q01"]
    for _ in range(per_minute):
        assert client.post(f"/s/{city['A1']}", data=fields | incomplete).status_code == 422
    page = client.post(f"/s/{city['A1']}", data=fields | incomplete)
    html = page.get_data(as_text=True)
    assert page.status_code == 429
    assert "提交太频繁了" in html and 'name="q06" value="2" checked' in html
    assert form_fields(html)["submission_key"] == fields["submission_key"]
    # Another address (another family) is not affected.
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.20.30.41"
    assert other.post(f"/s/{city['A1']}", data=form_fields(open_form(other, city["A1"])) | full_answers()).status_code == 200


def test_database_outage_at_submit_keeps_answers_and_the_retry_stores_once(app, client, city, monkeypatch):
    from sqlalchemy.exc import OperationalError

    import survey.public.views

    real_store = survey.public.views.store_response
    calls = []

    def failing_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))
        return real_store(*args, **kwargs)

    monkeypatch.setattr(survey.public.views, "store_response", failing_once)
    fields = form_fields(open_form(client, city["A1"]))
    page = client.post(f"/s/{city['A1']}", data=fields | full_answers(q09="1", comment="灯坏了"))
    html = page.get_data(as_text=True)
    assert page.status_code == 503
    assert "系统繁忙，您的回答都已保留" in html and 'name="q09" value="1" checked' in html and "灯坏了</textarea>" in html
    retry = form_fields(html)
    assert retry["submission_key"] == fields["submission_key"]
    assert client.post(f"/s/{city['A1']}", data=retry | full_answers(q09="1")).status_code == 200
    assert client.post(f"/s/{city['A1']}", data=retry | full_answers(q09="1")).status_code == 200
    assert count_responses(app) == 1


def test_comments_and_attributes_are_stored_exactly_as_typed(app, client, city):
    # The PostgreSQL insert sends answers and attributes as JSON text: quotes, backslashes, braces,
    # emoji and line breaks must arrive unchanged on both databases.
    comment = '他说"路灯坏了"\\n不是换行 {"a": 1} \'单引号\' 😀\r\n第二行\t制表'
    fields = form_fields(open_form(client, city["A1"]))
    assert client.post(f"/s/{city['A1']}", data=fields | full_answers(comment=comment)).status_code == 200
    with app.app_context():
        response = db.session().scalars(select(Response)).one()
        stored = {a.item_code: (a.choice_code, a.score, a.text) for a in response.answers}
        assert stored["comment"] == (None, None, comment)
        assert stored["q01"] == ("4", 80.0, None)
        assert response.attributes == {"sex": "F", "age_band": "30-44", "resident_6m": "Y"}
        assert len(stored) == 18


@pytest.mark.parametrize("app", POSTGRESQL_ONLY, indirect=True)  # SQLite has no server connection to lose
def test_a_dropped_database_connection_at_submit_gets_503_and_the_retry_stores_once(app, client, city):
    """A real lost connection (the server ended it), not a mocked one: 503 with the answers kept, then one response."""
    from sqlalchemy import create_engine, text

    app.config["LINK_CACHE_SECONDS"] = 60  # as served: the link is known, so the insert is what meets the dead connection
    # A first resident's answers: the app now holds a pooled connection for reading and one for storing.
    first = client.post(f"/s/{city['A1']}", data=form_fields(open_form(client, city["A1"])) | full_answers())
    assert first.status_code == 200
    fields = form_fields(open_form(client, city["A1"]))
    assert app.extensions["db_engine"].pool.checkedin() >= 1
    # End every connection of the app from outside, as a server restart would.
    outside = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with outside.connect() as conn:
        ended = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    outside.dispose()
    assert ended >= 1
    page = client.post(f"/s/{city['A1']}", data=fields | full_answers(comment="灯坏了"))
    html = page.get_data(as_text=True)
    assert page.status_code == 503, html[:300]
    assert "系统繁忙，您的回答都已保留" in html and "灯坏了</textarea>" in html
    retry = form_fields(html)
    assert client.post(f"/s/{city['A1']}", data=retry | full_answers(comment="灯坏了")).status_code == 200
    assert client.post(f"/s/{city['A1']}", data=retry | full_answers(comment="灯坏了")).status_code == 200
    assert count_responses(app) == 2


def test_a_database_outage_before_the_answers_are_checked_keeps_them_on_a_resubmit_page(app, client, city, monkeypatch):
    """The link lookup itself fails (database down, link not cached): the answers come back hidden with a button."""
    from sqlalchemy.exc import OperationalError

    import survey.public.views

    fields = form_fields(open_form(client, city["A1"]))
    answers = full_answers(q09="1", comment='路灯"坏了" <b>&</b>')
    real_resolve = survey.public.views.resolve

    def down(*_args, **_kwargs):
        raise OperationalError("SELECT", {}, Exception("could not connect to server"))

    monkeypatch.setattr(survey.public.views, "resolve", down)
    page = client.post(f"/s/{city['A1']}", data=fields | answers)
    html = page.get_data(as_text=True)
    assert page.status_code == 503
    assert "您的回答还没有提交，但都已保留" in html and "重新提交" in html
    kept = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))
    assert kept["comment"] == "路灯&#34;坏了&#34; &lt;b&gt;&amp;&lt;/b&gt;"  # escaped, not markup
    assert f'action="/s/{city["A1"]}"' in html
    unescaped = {k: v.replace("&#34;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
                 for k, v in kept.items()}
    assert unescaped == fields | answers
    # Back up: pressing the button sends the same fields and stores them once.
    monkeypatch.setattr(survey.public.views, "resolve", real_resolve)
    assert client.post(f"/s/{city['A1']}", data=unescaped).status_code == 200
    assert client.post(f"/s/{city['A1']}", data=unescaped).status_code == 200
    assert count_responses(app) == 1
    with app.app_context():
        stored = db.session().scalar(select(Answer.text).where(Answer.item_code == "comment"))
    assert stored == '路灯"坏了" <b>&</b>'

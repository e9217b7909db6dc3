"""The phone page of a questionnaire using every new item type, without JavaScript (test client POSTs):
each type's field and parsing, 更新选项 (``_refresh``), the language switch, piping, defaults."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from survey import db
from survey.models import Response
from tests.conftest import form_fields
from tests.survey.phone_forms import ENGINE_READY, full_phone_answers, phone_links


@pytest.fixture
def life(app, city):
    with app.app_context(), db.write_transaction() as session:
        return phone_links(session)


def fields(answers: dict) -> MultiDict:
    return MultiDict([(k, v) for k, values in answers.items() for v in (values if isinstance(values, list) else [values])])


def stored(app) -> list[dict[str, str | None]]:
    with app.app_context():
        return [{a.item_code: a.value or a.choice_code or a.text for a in r.answers}
                for r in db.session().scalars(select(Response).order_by(Response.id))]


def question(html: str, code: str) -> str:
    found = re.search(rf'<(fieldset|div) class="question[^"]*" id="q-{code}".*?</\1>', html, re.S)
    assert found, code
    return found.group(0)


def test_every_type_has_its_field_on_the_blank_page(client, life):
    html = client.get(f"/s/{life['A1']}").get_data(as_text=True)
    assert '<input type="checkbox" name="consent" value="OK" required>' in html
    used = question(html, "used")
    assert used.count('type="checkbox" name="used"') == 5 and 'value="none" data-exclusive' in used
    # The exclusive choice comes last, apart; 其他's box right under its question, saying when to fill it.
    assert used.index('value="other"') < used.index('value="none"')
    other = question(html, "used_other")
    assert "（第2题选了“其他”的请回答）" in other and html.index('id="q-used"') < html.index('id="q-used_other"')
    age = question(html, "age")
    assert 'type="text" class="typed" value="" inputmode="numeric"' in age and 'type="number"' not in html
    assert 'type="date"' in question(html, "moved")
    recommend = question(html, "recommend")
    assert re.findall(r'name="recommend" value="(\d+)"', recommend) == [str(n) for n in range(11)]
    place = question(html, "place")
    assert 'name="place.lat"' in place and 'name="place.lon"' in place
    assert '<button type="button" class="locate" hidden>获取当前位置</button>' in place
    # The table-list: one header, each row a fieldset of radios named by its item.
    assert html.count('class="tl-head"') == 1 and html.count('class="question tl-row"') == 4
    assert re.search(r'<fieldset class="question tl-row" id="q-s3"[^>]*>\s*<legend', html)
    assert 'enctype="multipart/form-data"' not in html  # no image question
    assert "data-returned" not in html


def test_a_complete_submission_is_parsed_by_each_type(app, client, life):
    page = client.get(f"/s/{life['A1']}").get_data(as_text=True)
    answers = full_phone_answers(age="３５", moved="2018/5/1", **{"place.lat": "39.9100", "place.lon": "116.40"})
    reply = client.post(f"/s/{life['A1']}", data=fields(form_fields(page) | answers))
    assert reply.status_code == 200, re.findall(r'class="error"[^>]*>([^<]+)', reply.get_data(as_text=True))
    assert stored(app) == [{
        "consent": "OK", "used": "clinic library", "age": "35", "district": "d1", "street": "s12", "years": "8",
        "moved": "2018-05-01", "s1": "5", "s2": "4", "s3": "0", "s4": "3", "recommend": "9",
        "place": "39.91 116.4", "comment": "多种树",
    }]


@pytest.mark.parametrize(("change", "code", "message"), [
    ({"consent": ""}, "consent", "请勾选此项"),
    ({"used": ["none", "clinic"]}, "used", "选了“以上都没有”就不能再选其他选项"),
    ({"age": "35.5"}, "age", "请填写整数"),
    ({"recommend": "11"}, "recommend", "请填写0到10之间的数"),
    ({"moved": "2018-13-01"}, "moved", "请填写有效日期，如 2026-12-08"),
    ({"place.lat": "95"}, "place", "请填写有效的位置：纬度（-90到90）和经度（-180到180）"),
    ({"s2": ""}, "s2", "请选择一项"),
])
def test_a_wrong_answer_comes_back_with_its_message_and_every_answer_kept(app, client, life, change, code, message):
    page = client.get(f"/s/{life['A1']}").get_data(as_text=True)
    reply = client.post(f"/s/{life['A1']}", data=fields(form_fields(page) | full_phone_answers(**change)))
    html = reply.get_data(as_text=True)
    assert reply.status_code == 422
    assert f'<p class="error" id="e-{code}">{message}</p>' in html
    assert f'href="#q-{code}"' in html and "data-returned" in html
    assert 'value="library" checked' in html or code == "used"
    assert 'name="place.lon" value="116.40"' in html and 'name="years" type="text" class="typed" value="8"' in html
    assert stored(app) == []


@pytest.mark.parametrize(("change", "code", "message"), [
    ({"age": "12"}, "age", "年龄应在16到100岁之间"),
    ({"district": "d2", "street": "s12"}, "street", "这个选项与前面的回答不符，请重新选择"),
])
def test_the_server_holds_answers_to_constraints_and_choice_filters(app, client, life, change, code, message):
    assert ENGINE_READY, "the stand-in expression engine reads neither the constraint nor the choice filter"
    page = client.get(f"/s/{life['A1']}").get_data(as_text=True)
    reply = client.post(f"/s/{life['A1']}", data=fields(form_fields(page) | full_phone_answers(**change)))
    assert reply.status_code == 422
    assert f'<p class="error" id="e-{code}">{message}</p>' in reply.get_data(as_text=True)


def test_the_other_box_is_kept_beside_its_choice(app, client, life):
    page = client.get(f"/s/{life['A1']}").get_data(as_text=True)
    answers = full_phone_answers(used=["other"], used_other="老年食堂")
    assert client.post(f"/s/{life['A1']}", data=fields(form_fields(page) | answers)).status_code == 200
    assert stored(app)[0]["used_other"] == "老年食堂"


def test_other_with_another_choice_keeps_its_box(app, client, life):
    """selected() reads one of several choices: fails with the stand-in, which compares the whole answer."""
    page = client.get(f"/s/{life['A1']}").get_data(as_text=True)
    answers = full_phone_answers(used=["clinic", "other"], used_other="老年食堂")
    assert client.post(f"/s/{life['A1']}", data=fields(form_fields(page) | answers)).status_code == 200
    assert stored(app)[0]["used_other"] == "老年食堂"


def test_the_street_list_is_cut_by_the_district_with_a_refresh_button(app, client, life):
    url = f"/s/{life['A1']}"
    blank = client.get(url).get_data(as_text=True)
    street = question(blank, "street")
    if not ENGINE_READY:
        pytest.fail("the stand-in expression engine reads no choice filter: the street is a plain list")
    # Not cut yet: every street, grouped by district, and what to do first.
    assert '<p class="when wait" id="p-street">请先回答第5题<span class="nojs">，再点“更新选项”</span></p>' in street
    assert re.findall(r'<optgroup label="([^"]+)">', street) == ["东城区", "西城区"]
    assert '<button type="submit" name="_refresh" value="1" class="refresh nojs" formaction="#q-street">更新选项</button>' in street
    # 更新选项: the same page with the answers kept, the list cut, the same key, nothing stored or checked.
    key = form_fields(blank)["submission_key"]
    again = client.post(url, data={"submission_key": key, "district": "d2", "age": "12", "_refresh": "1"})
    html = again.get_data(as_text=True)
    assert again.status_code == 200 and form_fields(html)["submission_key"] == key
    street = question(html, "street")
    assert re.findall(r'<option value="(\w+)"', street[:street.index("</select>")]) == ["s21", "s22"]
    assert re.findall(r'<option value="(\w+)"', street[street.index("<template>"):]) == ["s11", "s12"]
    assert 'id="p-street" hidden' in street and "optgroup" not in street
    assert 'class="error"' not in html
    assert 'id="error-summary"' not in html and 'value="12"' in html
    assert stored(app) == []


def test_a_refresh_keeps_every_answer_and_stores_nothing(app, client, life):
    url = f"/s/{life['A1']}"
    key = form_fields(client.get(url).get_data(as_text=True))["submission_key"]
    again = client.post(url, data=fields({"submission_key": key, "_refresh": "1"} | full_phone_answers()))
    html = again.get_data(as_text=True)
    assert again.status_code == 200 and "提交成功" not in html and form_fields(html)["submission_key"] == key
    assert 'value="library" checked' in html and 'value="9" checked' in html and 'class="error"' not in html
    assert '您在<span data-pipe="street" data-empty="（第6题的回答）">安定街道</span>住了几年？' in html  # piped
    assert stored(app) == []
    # The same key still stores the answers once.
    assert client.post(url, data=fields({"submission_key": key} | full_phone_answers())).status_code == 200
    assert len(stored(app)) == 1


def test_a_label_quotes_an_earlier_answer(app, client, life):
    url = f"/s/{life['A1']}"
    blank = client.get(url).get_data(as_text=True)
    assert '您在<span data-pipe="street" data-empty="（第6题的回答）">（第6题的回答）</span>住了几年？' in blank
    page = client.post(url, data=fields(form_fields(blank) | full_phone_answers(age="", street="s21", district="d2")))
    assert page.status_code == 422
    assert '您在<span data-pipe="street" data-empty="（第6题的回答）">金融街道</span>住了几年？' in page.get_data(as_text=True)
    english = client.post(url, data=fields(form_fields(blank) | full_phone_answers(age="", street="s21", district="d2"))
                          | {"_lang": "English"})
    assert 'How many years have you lived in <span data-pipe="street" data-empty="(your answer to question 6)">Finance street</span>?' \
        in english.get_data(as_text=True)


def test_the_questionnaire_in_english_and_back(app, client, life):
    url = f"/s/{life['A1']}"
    chinese = client.get(url).get_data(as_text=True)
    assert '<html lang="zh-CN">' in chinese and "<h1>社区生活问卷</h1>" in chinese
    assert f'<a href="{url}?lang=English" lang="en">English</a>' in chinese
    assert f'<a href="{url}" lang="zh-CN" aria-current="page">中文</a>' in chinese
    english = client.get(url + "?lang=English").get_data(as_text=True)
    assert '<html lang="en">' in english and "<h1>Community life survey</h1>" in english
    assert "Hello! About 3 minutes." in english and "<strong>Privacy: </strong>Anonymous" in english
    assert '<input type="hidden" name="_lang" value="English">' in english
    for text in ("Which district do you live in?", "East district", "None of these", "Please specify",
                 "<span>Very satisfied</span>" if "tl-label" not in english else "Very satisfied", ">Submit</button>",
                 "Latitude", "0 not at all, 10 very likely"):
        assert text in english, text
    assert "您住在哪个区" not in english and "社区卫生服务站" not in english
    assert f'<a href="{url}?lang=English" lang="en" aria-current="page">English</a>' in english
    # The blank pages are cached per language; an unknown language is the default one.
    assert client.get(url + "?lang=English").get_data(as_text=True).count("Community life survey") == 2
    assert "<h1>社区生活问卷</h1>" in client.get(url + "?lang=Klingon").get_data(as_text=True)
    # The language stays across a POST that comes back.
    back = client.post(url, data={"submission_key": form_fields(english)["submission_key"], "_lang": "English"})
    html = back.get_data(as_text=True)
    assert back.status_code == 422 and '<html lang="en">' in html and "Which district do you live in?" in html
    # What the server says is in English too: the summary, the platform's messages, the question's own.
    assert "questions need your attention</strong>. Your answers are kept. Go to:" in html and ">Question 2</a>" in html
    assert "Please choose one." in html and "请选择一项" not in html and "还有" not in html
    wrong_age = client.post(url, data=fields(form_fields(english) | full_phone_answers(age="12")) | {"_lang": "English"})
    said = wrong_age.get_data(as_text=True)
    assert wrong_age.status_code == 422 and re.search(r'id="e-age">[A-Za-z]', said), question(said, "age")
    thanks = client.post(url, data=fields(form_fields(english) | full_phone_answers()) | {"_lang": "English"})
    assert thanks.status_code == 200 and "<h1>Thank you</h1>" in thanks.get_data(as_text=True)


def test_the_bundled_citizen_questionnaire_reads_in_english_too(client, city):
    html = client.get(f"/s/{city['A1']}").get_data(as_text=True)
    assert '<nav class="langs" aria-label="语言">' in html and '<html lang="zh-CN">' in html
    english = client.get(f"/s/{city['A1']}?lang=English").get_data(as_text=True)
    assert '<html lang="en">' in english and "Citizen questionnaire on the civilized city campaign" in english
    assert "您的性别" not in english and "Sex" in english


def test_defaults_read_only_and_calculations(app, client, city):
    """A default is on the blank page; a read-only question shows it disabled; a calculation is never shown."""
    from datetime import UTC, datetime

    from forms.xlsform import read_xlsform
    from survey.links import make_community_links
    from survey.models import Wave
    from survey.questionnaires import publish
    from survey.waves import field_version
    from tests.forms.workbooks import workbook

    sheets = {
        "survey": [
            ["type", "name", "label", "required", "default", "read_only", "calculation", "appearance"],
            ["integer", "people", "家里几口人", "yes", "3"],
            ["text", "city", "所在城市", None, "杭州", "yes"],
            ["hidden", "double", None, None, "x1"],
            ["select_one yn", "pet", "家里有宠物吗", "yes", None, None, None, "minimal"],
            ["image", "photo", "拍一张小区门口的照片", "no"],
            ["time", "woke", "您今天几点起床", "no"],
            ["datetime", "seen", "最近一次见到社区工作人员", "no"],
            ["decimal", "km", "到最近公园的距离（公里）", "no"],
            ["select_one sat", "s1", "您对小区环境满意吗", "yes"],
        ],
        "choices": [["list_name", "name", "label", "score"], ["yn", "Y", "有"], ["yn", "N", "没有"],
                    ["sat", "5", "满意", 100], ["sat", "1", "不满意", 0]],
        "settings": [["form_title", "form_id"], ["小表", "renewal"]],
    }
    with app.app_context(), db.write_transaction() as session:
        version = publish(session, read_xlsform(workbook(sheets)).raw).version
        field_version(session, session.scalars(select(Wave)).one(), version, datetime.now(UTC))
        token = next(link.token for link in make_community_links(session, "renewal") if link.area.code == "A1")
    html = client.get(f"/s/{token}").get_data(as_text=True)
    assert 'name="people" type="text" class="typed" value="3" inputmode="numeric"' in html
    assert re.search(r'<textarea id="f-city" name="city"[^>]*disabled data-ro>杭州</textarea>', html)
    assert "double" not in html
    assert '<select id="f-pet" name="pet" class="picker" required>' in html and "<option value=\"Y\">有</option>" in html
    assert 'enctype="multipart/form-data"' in html
    assert 'type="file" accept="image/*" capture="environment"' in html
    assert 'type="time"' in html and 'type="datetime-local"' in html and 'inputmode="decimal"' in html
    reply = client.post(f"/s/{token}", data=form_fields(html) | {"people": "4", "pet": "N", "city": "北京",
                                                                  "woke": "6点30", "seen": "2026-01-02T09:30", "km": "１．５",
                                                                  "s1": "5"})
    assert reply.status_code == 200, reply.get_data(as_text=True)[-3000:]
    assert stored(app) == [{"people": "4", "city": "杭州", "double": "x1", "pet": "N", "woke": "06:30",
                            "seen": "2026-01-02T09:30", "km": "1.5", "s1": "5"}]

"""Skip rules without JavaScript: the phone page marks follow-up questions, the server checks them,
paper entry refuses answers to questions not asked, the printed copy says when to answer."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from forms.definition import Item
from forms.expressions import parse as parse_expression
from forms.xlsform import load_xlsform
from reports.paper import paper_questionnaires_pdf
from survey import db
from survey.models import Area, Response, Wave
from survey.paper import numbered_items, paper_form
from survey.reading.dashboard import heatmap_rows
from tests.conftest import form_fields
from tests.forms.workbooks import workbook
from tests.survey.skip_form import install_skip_form, open_skip_wave, skip_form_sheets, skip_links
from tests.survey.test_paper import grid_client, run

MARKER = "（第2题选“听说过”的请回答）"


@pytest.fixture
def skip_city(app, city):
    with app.app_context(), db.write_transaction() as session:
        return skip_links(session)


def stored(app) -> list[dict[str, str | None]]:
    with app.app_context():
        return [{a.item_code: a.choice_code or a.text for a in r.answers}
                for r in db.session().scalars(select(Response).order_by(Response.id))]


def checked(html: str, code: str) -> str | None:
    found = re.search(rf'name="{code}" value="([^"]+)" checked', html)
    return found.group(1) if found else None


def test_rule_texts_in_plain_chinese():
    definition = load_xlsform(workbook(skip_form_sheets()))
    assert definition.asked_when(definition.item("s1")) == "第2题选“听说过”"
    assert definition.asked_when(definition.item("comment")) == "第4题没有选“不了解”"
    assert definition.asked_when(definition.item("s2")) == ""
    either = Item("x", "text", (("中文", "x"),), relevant=parse_expression(
        "(${heard} = 'Y' or ${s2} = '5' or ${s2} = '3') and ${education} != 'primary'"))
    assert definition.asked_when(either) == "（第2题选“听说过”，或者第4题选“满意”，或者第4题选“一般”），并且第1题没有选“小学及以下”"
    typed = Item("z", "text", (("中文", "z"),), relevant=parse_expression("${comment} = '无' or ${heard} = 'N' and ${s2} = '5'"))
    assert definition.asked_when(typed) == "第5题填“无”，或者（第2题选“没听说过”，并且第4题选“满意”）"
    same = Item("y", "text", (("中文", "y"),), relevant=parse_expression("${s2} = '5' or selected(${s2}, '3')"))
    assert definition.asked_when(same) == "第4题选“满意”或“一般”"


def test_phone_page_shows_sections_notes_hints_and_marks_follow_ups(client, skip_city):
    html = client.get(f"/s/{skip_city['A1']}").get_data(as_text=True)
    assert '<h2 id="sec-about">基本情况</h2>' in html and '<h2 id="sec-rating">满意度</h2>' in html
    assert re.search(r'"question-note" id="q-explain"[^>]*>\s*<p>以下请按您的实际感受打分。</p>', html)  # the note, unnumbered
    assert re.findall(r'<span class="no">(\d+)\.</span>', html) == ["1", "2", "3", "4", "5"]
    s1 = re.search(r'<fieldset[^>]*id="q-s1"[^>]*>.*?</fieldset>', html, re.S).group(0)
    assert MARKER in s1 and '<p class="hint" id="h-s1">只选一项</p>' in s1
    assert 'aria-describedby="w-s1 h-s1"' in s1 and "<legend" in s1
    rule = json.loads(re.search(r"data-relevant='([^']+)'", s1).group(1))
    assert rule == ["=", ["ref", "heard"], ["str", "Y"]]
    comment = re.search(r'<div class="question"[^>]*id="q-comment".*?</div>', html, re.S).group(0)
    assert "（第4题没有选“不了解”的请回答）" in comment and '<label class="legend" for="f-comment">' in comment
    assert html.count("data-relevant=") == 2
    assert '<script src="/static/form.js" defer></script>' in html  # no inline script: the CSP allows 'self' only
    assert "<script>" not in html


def test_server_requires_a_follow_up_whose_rule_holds_and_drops_one_whose_rule_does_not(app, client, skip_city):
    token = skip_city["A1"]
    fields = form_fields(client.get(f"/s/{token}").get_data(as_text=True))
    base = fields | {"education": "college", "s2": "5"}

    missing = client.post(f"/s/{token}", data=base | {"heard": "Y"})
    html = missing.get_data(as_text=True)
    assert missing.status_code == 422
    assert re.findall(r'href="#q-(\w+)"', html) == ["s1"] and '<p class="error" id="e-s1">请选择一项</p>' in html
    assert (checked(html, "education"), checked(html, "heard"), checked(html, "s2")) == ("college", "Y", "5")

    # An answer to a question not asked (yet) stays on the page while something else is wrong.
    kept = client.post(f"/s/{token}", data=fields | {"education": "college", "heard": "N", "s1": "3"})
    assert kept.status_code == 422
    assert checked(kept.get_data(as_text=True), "s1") == "3"
    assert re.findall(r'href="#q-(\w+)"', kept.get_data(as_text=True)) == ["s2"]

    ok = client.post(f"/s/{token}", data=base | {"heard": "Y", "s1": "3", "comment": "好"})
    assert ok.status_code == 200 and "提交成功" in ok.get_data(as_text=True)
    fields = form_fields(client.get(f"/s/{skip_city['A2']}").get_data(as_text=True))
    dropped = client.post(f"/s/{skip_city['A2']}", data=fields | {"education": "middle", "heard": "N", "s1": "1",
                                                                  "s2": "0", "comment": "不算"})
    assert dropped.status_code == 200
    assert stored(app) == [
        {"education": "college", "heard": "Y", "s1": "3", "s2": "5", "comment": "好"},
        {"education": "middle", "heard": "N", "s2": "0"},  # s1 and comment were not asked: dropped
    ]


def test_the_cached_blank_page_keeps_the_follow_up_marks(app, client, skip_city):
    first = client.get(f"/s/{skip_city['A1']}").get_data(as_text=True)
    again = client.get(f"/s/{skip_city['A1']}").get_data(as_text=True)
    key = r'name="submission_key" value="[^"]+"'
    assert re.sub(key, "", first) == re.sub(key, "", again) and MARKER in again
    assert form_fields(first) != form_fields(again)  # a fresh one-time key each time


@pytest.fixture
def paper_skip(app, city):
    """The questionnaire as citizen v2 in a newer open wave: what paper entry keys in for citizen."""
    with app.app_context(), db.write_transaction() as session:
        install_skip_form(session, "citizen", 2)
        open_skip_wave(session, ["citizen"])
    return grid_client(app, "wangge", "A1")


def key_in(client, serial: str, **numbers: str):
    return client.post("/entry/?q=citizen", data={"csrf_token": client.csrf, "serial": serial} | numbers)


def test_paper_entry_refuses_answers_to_questions_not_asked_and_requires_asked_ones(app, paper_skip):
    page = paper_skip.get("/entry/?q=citizen").get_data(as_text=True)
    row = re.search(r'<div class="entry-row"[^>]*id="r-s1".*?</div>', page, re.S).group(0)
    assert "（第2题选“听说过”时填写）" in row
    assert json.loads(re.search(r"data-relevant='([^']+)'", row).group(1)) == ["=", ["ref", "heard"], ["str", "1"]]
    assert '<script src="/static/entry.js" defer></script>' in page

    refused = key_in(paper_skip, "P-1", education="3", heard="2", s1="1", s2="1")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "本题只有第2题选“听说过”时才填写，请清空此格，或核对前面的题" in html
    assert 'value="1"' in re.search(r'id="i-s1"[^>]*>', html).group(0)  # what was typed stays for correcting

    missing = key_in(paper_skip, "P-1", education="3", heard="1", s2="1")
    assert missing.status_code == 422
    assert '<span class="error" id="e-s1">未填写</span>' in missing.get_data(as_text=True)

    # A wrong number in the question a rule depends on: only that one is reported.
    unsure = key_in(paper_skip, "P-1", education="3", heard="7", s1="1", s2="1")
    assert re.findall(r'<span class="error" id="e-(\w+)">', unsure.get_data(as_text=True)) == ["heard"]

    assert key_in(paper_skip, "P-1", education="3", heard="1", s1="2", s2="1", comment="路灯").status_code == 200
    assert key_in(paper_skip, "P-2", education="1", heard="2", s2="4").status_code == 200
    assert stored(app) == [
        {"education": "college", "heard": "Y", "s1": "3", "s2": "5", "comment": "路灯"},
        {"education": "primary", "heard": "N", "s2": "0"},
    ]


def test_printed_copy_and_entry_numbering_say_when_a_follow_up_is_answered(app, city, tmp_path):
    definition = load_xlsform(workbook(skip_form_sheets()))
    numbered = numbered_items(definition)
    assert [(q.number, q.item.code, q.when) for q in numbered] == [
        (1, "education", ""), (2, "heard", ""), (3, "s1", "第2题选“听说过”"), (4, "s2", ""),
        (5, "comment", "第4题没有选“不了解”")]
    assert numbered[4].typed_rule == ["!=", ["ref", "s2"], ["str", "4"]]
    with app.app_context():
        area = db.session().scalar(select(Area).where(Area.code == "A1"))
        form = paper_form(area, db.session().scalar(select(Wave)), definition)
    printed = form.questions
    assert [q.when for q in printed] == [q.when for q in numbered]
    assert printed[4].lines > 0 and printed[2].lines == 0
    pdf = tmp_path / "copy.pdf"
    pdf.write_bytes(paper_questionnaires_pdf(replace(form, questions=printed), ["A1-1-0001"]))
    text = run(["pdftotext"], pdf)
    assert "3. 您对老旧小区改造满意吗？ （第2题选“听说过”的请回答）" in text
    assert "（第4题没有选“不了解”的请回答）" in text


def test_heatmap_columns_are_the_questionnaires_own_topic_names(app, city):
    definition = load_xlsform(workbook(skip_form_sheets()))
    with app.app_context():
        area = db.session().scalar(select(Area).where(Area.code == "A1"))
        columns, rows = heatmap_rows(db.session(), SimpleNamespace(id=-1), area, definition, lambda a: None)
    assert columns == ["城市更新", "背街小巷", "综合"]
    assert [t.name for t in definition.topics] == ["城市更新", "背街小巷"]
    assert len(rows) == 1 and all(cell.estimate is None for cell in rows[0].cells)
    # Two questions of one topic: both columns carry the topic's name, told apart by number.
    renamed = skip_form_sheets()
    renamed["topics"][1][1] = "老旧小区与街巷"
    renamed["survey"][8][9] = "renewal"  # s2 now belongs to the first topic too
    shared = load_xlsform(workbook(renamed))
    with app.app_context():
        columns, _rows = heatmap_rows(db.session(), SimpleNamespace(id=-1), area, shared, lambda a: None)
    assert columns == ["老旧小区与街巷（第3题）", "老旧小区与街巷（第4题）", "综合"]

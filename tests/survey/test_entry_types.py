"""Paper entry of a questionnaire with every item type: each type's grammar, the stored answers,
the constraint and cascade checked at entry, calculations stored, the skip rules' typed numbers.

The tests marked "engine" in their name need the expression engine's full language (the age
constraint, the district -> street cascade, an arithmetic calculation, ``selected()`` on a
multiple choice's several codes).
"""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from forms.definition import parse_definition
from survey import db
from survey.entry.views import parse_paper
from survey.models import Answer, Response
from survey.paper import numbered_items
from tests.survey.every_type import CODE, NUMBERS, every_type_raw, field_every_type
from tests.survey.test_paper import grid_client

# What a paper with every question answered types (rules=False and rules=True alike).
TYPED = {"sex": "2", "age": "45", "district": "1", "street": "2", "years": "10", "transport": "1", "bus_reason": "便宜",
         "income": "1.5", "happy": "7", "moved": "20261208", "wake": "08:30", "visit": "2026-12-08 08:30",
         "consent": "1", "where": "30.27，120.15", "s1": "1", "s2": "2", "s3": "4", "comment": "楼道灯坏了"}


def stored(app, serial: str) -> dict[str, tuple[str | None, str | None, str | None]]:
    """Return {item: (choice_code, value, text)} of the paper's stored answers."""
    with app.app_context():
        rows = db.session().execute(
            select(Answer.item_code, Answer.choice_code, Answer.value, Answer.text)
            .join(Response, Response.id == Answer.response_id)
            .where(Response.submission_key.endswith(f":{serial}"))).all()
    return {code: (choice, value, text) for code, choice, value, text in rows
            if (choice, value, text) != (None, None, None)}


def post(client, serial: str, typed: dict[str, str]):
    return client.post(f"/entry/?q={CODE}", data={"csrf_token": client.csrf, "serial": serial} | typed)


def test_the_entry_page_numbers_like_paper_says_what_to_type_and_skips_photos(app, city):
    field_every_type(app, rules=False)
    client = grid_client(app, "wangge", "A1")
    html = client.get(f"/entry/?q={CODE}").get_data(as_text=True)
    shown = re.findall(r'<span class="no">(\d+)\.</span> ([^<]+)</label>', html)
    assert [int(n) for n, _ in shown] == list(NUMBERS.values())
    assert ("5", "您在（第4题的回答）住了几年？") in shown
    for hint in ("可多选，用逗号隔开，如 1,3", "整数", "年-月-日，如 2026-12-08", "时:分，如 08:30", "如 2026-12-08 08:30",
                 "打勾的填 1", "纬度,经度，如 30.27,120.15", "数字；0到10", "纸质问卷不录入照片"):
        assert hint in html, hint
    assert 'name="photo"' not in html and 'name="adult"' not in html  # no photo box; a calculation is not keyed
    assert re.search(r'name="transport" class="typed" data-kind="multi"', html)
    assert re.search(r'name="moved" class="typed" data-kind="date"', html)
    assert 'id="i-transport_other"' in html  # "其他（请注明）" in its own box
    # The skip rule the script reads has choice numbers: question 6's 公交车 is 1.
    rule = json.loads(re.search(r'id="r-bus_reason"[^>]*data-relevant=\'([^\']+)\'', html).group(1))
    [numbered] = [q for q in numbered_items(parse_definition(every_type_raw(False))) if q.item.code == "bus_reason"]
    assert rule == numbered.typed_rule and "bus" not in json.dumps(rule) and '"1"' in json.dumps(rule)
    assert '<script src="/static/entry.js" defer></script>' in html


def test_a_paper_with_every_type_is_stored_as_the_phone_stores_it(app, city):
    field_every_type(app, rules=False)
    client = grid_client(app, "wangge", "A1")
    assert post(client, "P-1", TYPED).status_code == 200
    assert post(client, "P-2", TYPED | {"transport": "5", "transport_other": "社区班车", "bus_reason": ""}).status_code == 200
    assert stored(app, "P-1") == {
        "sex": ("F", None, None), "age": (None, "45", None), "district": ("dc", None, None), "street": ("jsh", None, None),
        "years": (None, "10", None), "transport": (None, "bus", None), "bus_reason": (None, None, "便宜"),
        "income": (None, "1.5", None), "happy": (None, "7", None), "moved": (None, "2026-12-08", None),
        "wake": (None, "08:30", None), "visit": (None, "2026-12-08T08:30", None), "consent": (None, "OK", None),
        "where": (None, "30.27 120.15", None), "adult": (None, "true", None),
        "s1": ("5", None, None), "s2": ("3", None, None), "s3": ("0", None, None), "comment": (None, None, "楼道灯坏了")}
    other = stored(app, "P-2")
    assert other["transport"] == (None, "other", None) and other["transport_other"] == (None, "社区班车", None)
    assert "bus_reason" not in other


@pytest.mark.parametrize(("code", "typed", "value", "error"), [
    ("transport", "1,3", "bus bike", None),
    ("transport", "3 、1", "bus bike", None),
    ("transport", "１，２", "bus metro", None),
    ("transport", "1,1", None, "同一个选项只能输入一次"),
    ("transport", "1,9", None, "请输入1到6之间的数，用逗号隔开"),
    ("transport", "1,6", None, "选了“很少出门”就不能再选其他选项"),
    ("transport", "", None, "未填写"),
    ("sex", "3", None, "请输入1到2"),
    ("age", "45", "45", None),
    ("age", "４５", "45", None),
    ("age", "4.5", None, "请填写整数"),
    ("income", "1.50", "1.5", None),
    ("income", "1,5", None, "请填写数字"),
    ("happy", "10", "10", None),
    ("happy", "11", None, "请填写0到10之间的数"),
    ("moved", "2026-12-08", "2026-12-08", None),
    ("moved", "20261208", "2026-12-08", None),
    ("moved", "2026年12月8日", "2026-12-08", None),
    ("moved", "2026-13-01", None, "请填写有效日期，如 2026-12-08"),
    ("wake", "08:30", "08:30", None),
    ("wake", "8:30", "08:30", None),
    ("wake", "0830", "08:30", None),
    ("wake", "2400", None, "请填写有效时间，如 08:30"),
    ("visit", "20261208 0830", "2026-12-08T08:30", None),
    ("wake", "25:00", None, "请填写有效时间，如 08:30"),
    ("visit", "2026-12-08 08:30", "2026-12-08T08:30", None),
    ("visit", "20261208 8:30", "2026-12-08T08:30", None),
    ("visit", "2026-12-08", None, "请填写有效的日期和时间，如 2026-12-08 08:30"),
    ("consent", "1", "OK", None),
    ("consent", "2", None, "请勾选此项"),
    ("consent", "", None, "未填写"),
    ("where", "30.27,120.15", "30.27 120.15", None),
    ("where", "95,120", None, "请填写有效的位置：纬度（-90到90）和经度（-180到180）"),
    ("photo", "", None, None),
    ("photo", "1", None, "照片只能在手机上拍摄上传，纸质问卷不录入此项"),
])
def test_each_type_reads_its_typed_grammar(code, typed, value, error):
    definition = parse_definition(every_type_raw(rules=False))
    answers, errors = parse_paper(definition, TYPED | {code: typed})
    assert (answers[code], errors.get(code)) == (value, error)


def test_a_wrong_grammar_is_refused_on_the_page_with_its_message_and_kept_for_correcting(app, city):
    field_every_type(app, rules=False)
    client = grid_client(app, "wangge", "A1")
    refused = post(client, "P-1", TYPED | {"moved": "2026-02-30", "transport": "1,6", "transport_other": "班车"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert re.findall(r'<span class="error" id="e-(\w+)">([^<]+)</span>', html) == [
        ("transport", "选了“很少出门”就不能再选其他选项"), ("moved", "请填写有效日期，如 2026-12-08")]
    assert 'value="2026-02-30"' in html and 'value="1,6"' in html
    # The "other" box is not asked while 6 is not chosen (its rule depends on a wrong answer: not reported).
    wrong = post(client, "P-1", TYPED | {"transport_other": "班车"})
    assert wrong.status_code == 422 and "本题只有第6题选了“其他”时才填写" in wrong.get_data(as_text=True)
    missing = post(client, "P-1", TYPED | {"transport": "5", "bus_reason": ""})
    assert missing.status_code == 422 and '<span class="error" id="e-transport_other">未填写</span>' in missing.get_data(as_text=True)
    with app.app_context():
        assert db.session().scalar(select(Response.id)) is None


def test_engine_constraint_and_cascade_are_checked_at_entry_and_the_calculation_stored(app, city):
    field_every_type(app, rules=True)
    client = grid_client(app, "wangge", "A1")
    for age in ("15", "101"):
        refused = post(client, "P-1", TYPED | {"age": age})
        assert refused.status_code == 422 and '<span class="error" id="e-age">年龄16–100岁</span>' in refused.get_data(as_text=True)
    html = client.get(f"/entry/?q={CODE}").get_data(as_text=True)
    assert "整数；年龄16–100岁" in html  # said beside the box
    assert "东城区：1 东华门街道　2 景山街道；西城区：3 西长安街街道　4 新街口街道" in html
    cross = post(client, "P-1", TYPED | {"district": "1", "street": "3"})  # 西长安街 is in 西城区
    assert cross.status_code == 422 and '<span class="error" id="e-street">这个选项与前面的回答不符，请重新选择</span>' in cross.get_data(as_text=True)
    assert post(client, "P-1", TYPED | {"age": "16", "district": "2", "street": "3"}).status_code == 200
    answers = stored(app, "P-1")
    assert answers["age"] == (None, "16", None) and answers["street"] == ("xcj", None, None)
    assert answers["adult"] == (None, "192", None)  # ${age} * 12, computed at entry


def test_engine_a_multiple_choices_rule_reads_its_several_codes(app, city):
    field_every_type(app, rules=True)
    client = grid_client(app, "wangge", "A1")
    assert post(client, "P-1", TYPED | {"transport": "1,5", "transport_other": "班车"}).status_code == 200
    answers = stored(app, "P-1")
    assert answers["transport"] == (None, "bus other", None)
    assert answers["transport_other"] == (None, "班车", None) and answers["bus_reason"] == (None, None, "便宜")
    refused = post(client, "P-2", TYPED | {"transport": "2,3"})
    assert refused.status_code == 422 and "本题只有第6题选了“公交车”时才填写" in refused.get_data(as_text=True)


@pytest.mark.e2e
def test_entry_script_reads_several_typed_numbers_for_a_skip_rule(app, city, live_server, phone):
    from survey.auth import create_user
    from tests.conftest import PASSWORD, shot

    field_every_type(app, rules=False)
    with app.app_context(), db.write_transaction() as session:
        create_user(session, "luru", PASSWORD, "grid", "A1")
    page = phone
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/office/login")
    page.get_by_label("用户名").fill("luru")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/entry/**")
    page.goto(f"{live_server}/entry/?q={CODE}")
    assert page.locator("#r-bus_reason").is_hidden() and page.locator("#r-transport_other").is_hidden()
    transport = page.locator("#i-transport")
    for typed, bus, other in (("2,3", False, False), ("3，1", True, False), ("1 5", True, True), ("5", False, True), ("", False, False)):
        transport.fill(typed)
        assert (page.locator("#r-bus_reason").is_visible(), page.locator("#r-transport_other").is_visible()) == (bus, other), typed
    transport.fill("1,3")
    assert page.locator("#i-bus_reason").is_enabled()
    shot(page, "40-paper-entry-every-type")
    assert errors == []

"""Item types own their behaviour: a new type, defined and registered here only, is read from the
dict format and from XLSForm, written back to XLSForm, shown and checked on the phone page and on
the paper entry page, printed on paper and typed in the exports, with no other code changed.

What a new type does not get from its class alone: a widget of its own (its ``fragment`` must name
a macro of public/_items.html and entry/_items.html; this one reuses "text"), a select_one type
of its own in XLSForm (the importer tells rating / yesno / choice apart by the list's score and yes
columns), and a place in the analysis other than through its choices (``value``).
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from forms.common import FULLWIDTH_DIGITS, DefinitionError
from forms.definition import Item, parse_definition
from forms.items import ITEM_TYPES, ItemType, register
from forms.xlsform import XLSFormError, definition_to_xlsx, read_xlsform
from survey import db
from survey.links import make_community_links
from survey.models import Answer, Area, Response, Wave
from survey.paper import paper_form
from survey.questionnaires import definition_by_id, publish
from survey.reading.exports import response_columns
from survey.waves import field_version
from tests.conftest import form_fields
from tests.forms.workbooks import city_form, workbook
from tests.survey.test_paper import grid_client


class MobileItem(ItemType):
    """A mobile phone number (11 digits from 1), e.g. for a resident who wants to be called back: typed, kept as value."""

    name = "mobile"
    needs_choices = False
    fragment = "text"  # a text box on the phone and at entry
    written = True  # ruled lines on paper
    paper = "lines"
    export_kind = "text"
    xlsform_type = "mobile"

    def check(self, raw: dict[str, Any], where: str) -> None:
        if raw.get("choices"):
            raise DefinitionError(f"{where}: a mobile item has no choices")

    def answer(self, item: Item, value: str | None) -> tuple[str | None, float | None, str | None]:
        return None, None, None

    def stored_value(self, item: Item, value: str | None) -> str | None:
        return value or None

    def _mobile(self, item: Item, raw: str | None, missing: str) -> tuple[str | None, str | None]:
        text = (raw or "").strip().translate(FULLWIDTH_DIGITS).replace(" ", "").replace("-", "")
        if not text:
            return None, (missing if item.required else None)
        if not (len(text) == 11 and text.isascii() and text.isdigit() and text[0] == "1"):
            return None, "请填写11位手机号码"
        return text, None

    def parse(self, item: Item, raw: str | None) -> tuple[str | None, str | None]:
        return self._mobile(item, raw, "请填写此项")

    def parse_typed(self, item: Item, raw: str) -> tuple[str | None, str | None]:
        return self._mobile(item, raw, "未填写")


@pytest.fixture
def mobile_type():
    """The mobile type, registered for one test only."""
    handler = register(MobileItem)
    yield handler
    del ITEM_TYPES["mobile"]


def with_mobile() -> dict:
    """The city's workbook with a "mobile" question after education (question 2)."""
    sheets = city_form()
    sheets["survey"].insert(3, ["mobile", "phone", "您的手机号码", "Mobile number", None, None, "yes"])
    return sheets


def test_an_unregistered_type_is_refused_by_the_parser_and_the_xlsform_importer():
    raw = read_xlsform(workbook(city_form())).raw
    raw["sections"][0]["items"].append({"code": "phone", "type": "mobile", "label": "您的手机号码"})
    with pytest.raises(DefinitionError, match="unknown type 'mobile'"):
        parse_definition(raw)
    with pytest.raises(XLSFormError) as refused:
        read_xlsform(workbook(with_mobile()))
    [error] = [str(e) for e in refused.value.errors]
    assert error.startswith("survey 第4行 type 列: 不支持的题型 \"mobile\"（支持 select_one、select_multiple、") and "integer" in error


def test_a_new_type_registered_in_one_class_works_from_xlsform_to_phone_entry_paper_and_exports(
        app, city, mobile_type, tmp_path):
    imported = read_xlsform(workbook(with_mobile()))
    definition = imported.definition
    assert definition.item("phone").type == "mobile" and definition.item("phone").required
    assert definition.number_of("phone") == 2
    # Written back as "mobile", read back the same.
    again = read_xlsform(definition_to_xlsx(definition)).definition
    assert again == definition
    # A rule the class refuses (a mobile item with choices) is the parser's error.
    bad = imported.raw | {"sections": [{"items": [{"code": "y", "type": "mobile", "label": "x",
                                                     "choices": [{"code": "1", "label": "1"}]}]}]}
    with pytest.raises(DefinitionError, match="a mobile item has no choices"):
        parse_definition(bad)

    with app.app_context(), db.write_transaction() as session:
        version = publish(session, imported.raw).version
        field_version(session, session.scalars(select(Wave)).one(), version, datetime.now(UTC))
        token = next(link.token for link in make_community_links(session, "renewal") if link.area.code == "A1")
        version_id = version.id

    # The phone page shows it (the text fragment) and the class checks the answer.
    phone = app.test_client()
    page = phone.get(f"/s/{token}").get_data(as_text=True)
    assert 'name="phone"' in page and "您的手机号码" in page
    answers = {"education": "middle", "heard": "N", "s2": "5"}
    refused = phone.post(f"/s/{token}", data=form_fields(page) | answers | {"phone": "12345"})
    assert refused.status_code == 422 and "请填写11位手机号码" in refused.get_data(as_text=True)
    fresh = phone.get(f"/s/{token}").get_data(as_text=True)
    thanks = phone.post(f"/s/{token}", data=form_fields(fresh) | answers | {"phone": "１３８ ０００ ０００００"})
    assert thanks.status_code == 200, thanks.get_data(as_text=True)

    # The entry page keys it in (same fragment name in entry/_items.html), checked by parse_typed.
    grid = grid_client(app, "wangge", "A1")
    entry = grid.get("/entry/?q=renewal").get_data(as_text=True)
    assert 'name="phone"' in entry and "2.</span> 您的手机号码" in entry
    typed = {"csrf_token": grid.csrf, "serial": "P-1", "education": "1", "heard": "2", "s2": "1"}
    wrong = grid.post("/entry/?q=renewal", data=typed | {"phone": "200"})
    assert wrong.status_code == 422 and "请填写11位手机号码" in wrong.get_data(as_text=True)
    assert grid.post("/entry/?q=renewal", data=typed | {"phone": "13900001111"}).status_code == 200
    with app.app_context():
        session = db.session()
        stored = session.execute(select(Response.channel, Answer.value, Answer.text).join(Answer, Answer.response_id == Response.id)
                                 .where(Answer.item_code == "phone").order_by(Response.id)).all()
        assert stored == [("qr", "13800000000", None), ("paper", "13900001111", None)]
        # Paper: ruled lines to write the number on; exports: a text column.
        stored_definition = definition_by_id(session, version_id)
        form = paper_form(session.scalar(select(Area).where(Area.code == "A1")), session.scalars(select(Wave)).one(),
                          stored_definition)
        assert form.questions[1].label == "您的手机号码" and form.questions[1].lines > 0
        columns, codes = response_columns([stored_definition])
        assert next(c for c in columns if c.name == "phone").type == "text"

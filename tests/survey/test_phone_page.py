"""The phone page of a questionnaire using every new item type, without JavaScript (test client POSTs):
each type's field and parsing, 更新选项 (``_refresh``), the language switch, piping, defaults."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from survey import db
from survey.models import Answer, Response
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


def test_dump(client, life):
    html = client.get(f"/s/{life['A1']}").get_data(as_text=True)
    open("/tmp/phone/blank.html", "w").write(html)

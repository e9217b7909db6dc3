"""A questionnaire with a skip rule, installed in the test database (tests of the phone page and paper entry).

It is the city's own questionnaire of tests/forms/workbooks.py (sections, a note, hints, its own
topics): 1 文化程度, 2 听说过“城市更新”吗 (听说过 / 没听说过), 3 老旧小区改造满意吗 (asked when
2 is 听说过; required), 4 背街小巷满意吗, 5 还有什么意见 (text, asked unless 4 is 不了解). Its
education item is not marked as a weighting attribute here: storing new attributes is not this
test's business.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from forms.xlsform import read_xlsform
from survey.links import make_community_links
from survey.models import Questionnaire, QuestionnaireVersion
from survey.waves import create_wave
from tests.forms.workbooks import city_form, workbook


def skip_form_sheets():
    sheets = city_form()
    for row in sheets["survey"][1:]:
        if len(row) > 10 and row[10] == "education":
            row[10] = None
    return sheets


def install_skip_form(session, code: str = "renewal", version: int = 1) -> QuestionnaireVersion:
    """Store the questionnaire as ``code`` version ``version`` (a new version of an existing one too)."""
    raw = read_xlsform(workbook(skip_form_sheets()), code=code, version=version).raw
    questionnaire = session.scalar(select(Questionnaire).where(Questionnaire.code == code))
    if questionnaire is None:
        questionnaire = Questionnaire(code=code, title=raw["title"])
        session.add(questionnaire)
    stored = QuestionnaireVersion(questionnaire=questionnaire, version=version, definition_json=raw)
    session.add(stored)
    session.flush()
    return stored


def open_skip_wave(session, codes: list[str], name: str = "更新轮") -> None:
    now = datetime.now(UTC)
    create_wave(session, name, now - timedelta(days=1), now + timedelta(days=30), codes)


def skip_links(session) -> dict[str, str]:
    """Install the questionnaire as ``renewal``, open a wave fielding it; return {community code: token}."""
    install_skip_form(session)
    open_skip_wave(session, ["renewal"])
    return {link.area.code: link.token for link in make_community_links(session, "renewal")}

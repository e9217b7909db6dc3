"""The realistic city questionnaire (tests/forms/realistic.py) imports cleanly, as its author meant it."""
from __future__ import annotations

from forms.xlsform import read_xlsform
from tests.forms.realistic import REALISTIC_FORM
from tests.forms.workbooks import workbook

RATED = ["env", "traffic", "safety", "services", "facilities", "manners"]


def test_realistic_form_imports_without_a_warning():
    imported = read_xlsform(workbook(REALISTIC_FORM))
    form = imported.definition
    assert [str(w) for w in imported.warnings] == []
    assert (form.code, form.version, form.languages) == ("civility2026", 1, ("中文", "English"))
    assert form.title == "2026年文明城市创建市民满意度调查" and form.title_en.startswith("2026 Civilised City")
    assert form.intro.startswith("您好") and form.privacy.startswith("本调查匿名")
    assert form.attributes == {"sex": "sex", "district": "district"}
    assert [i.code for i in form.scored_items] == RATED
    assert [(form.item(c).kind, form.item(c).topic) for c in RATED] == [
        ("satisfaction", t) for t in ("environment", "traffic", "safety", "services", "facilities", "manners")]
    assert [(c.code, c.score) for c in form.item("env").choices] == [
        ("5", 100), ("4", 80), ("3", 60), ("2", 40), ("1", 0), ("9", None)]
    assert (form.item("heard").kind, form.item("volunteered").kind) == ("awareness", "participation")
    codes = {i.code for i in form.elements}
    assert {"consent", "age", "district", "street", "years", "channels", "env_issues", "env_change",
            "last_volunteer", "overall", "comment"} <= codes

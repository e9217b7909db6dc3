"""The realistic city questionnaire (tests/forms/realistic.py) imports cleanly, as its author meant it."""
from __future__ import annotations

import copy
from datetime import date

from werkzeug.datastructures import MultiDict

from forms.xlsform import read_xlsform
from tests.forms.realistic import REALISTIC_FORM
from tests.forms.workbooks import others, workbook

RATED = ["env", "traffic", "safety", "services", "facilities", "manners"]


def test_realistic_form_imports_without_a_warning():
    imported = read_xlsform(workbook(REALISTIC_FORM))
    form = imported.definition
    assert [str(w) for w in others(imported.warnings)] == []
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


def _answers(**changes: str | list[str]) -> MultiDict:
    base = {"consent": "OK", "sex": "male", "age": "40", "district": "donghu", "street": "hubin", "years": "3.5",
            "heard": "yes", "channels": ["tv", "other"], "channels_other": "街道宣传栏", "volunteered": "yes",
            "last_volunteer": "2026-11-01", "overall": "8", **{code: "1" for code in RATED}}
    form = MultiDict()
    for key, value in (base | changes).items():
        for one in value if isinstance(value, list) else [value]:
            form.add(key, one)
    return form


def test_realistic_form_checks_every_rule_as_its_author_wrote_it():
    form = read_xlsform(workbook(REALISTIC_FORM)).definition
    today = date(2026, 12, 8)
    answers, errors = form.parse_submission(_answers(), today)
    assert errors == {}
    assert (answers["channels"], answers["channels_other"], answers["age_group"]) == ("tv other", "街道宣传栏", "middle")
    assert answers["env_change"] is None and form.asked_when(form.item("env_change")) == \
        "第10题没有选“不了解”，并且第8题没有选“以上都没有”"
    # The constraint (with its message), the cascade, an answer checked against another, the
    # exclusive choice and today() are the server's rules, whatever the page let through.
    _answers_, errors = form.parse_submission(_answers(age="12", street="xiyuan", years="50", last_volunteer="2027-01-01",
                                                       channels=["none", "tv"]), today)
    assert errors == {"age": "年龄应在16到100岁之间", "street": "这个选项与前面的回答不符，请重新选择",
                      "years": "居住年数应在0到您的年龄之间", "channels": "选了“以上都没有”就不能再选其他选项",
                      "last_volunteer": "日期不能晚于今天"}
    _answers_, errors = form.parse_submission(_answers(channels=["tv", "other"], channels_other=""), today)
    assert list(errors) == ["channels_other"]  # "其他" chosen: say what
    assert [c.code for c in form.item("street").choices_for({"district": "xishan"})] == ["xiyuan", "fenghuang"]
    assert form.piped(form.item("years").label, answers) == "您在湖滨街道居住了多少年？"
    assert form.piped(form.item("years").label_in("English"), answers, "English") == "How many years have you lived in Hubin?"
    assert form.piped(form.item("years").label, {}) == "您在（第5题的回答）居住了多少年？"


def test_realistic_form_is_written_back_with_every_column_it_read():
    from forms.xlsform import definition_to_xlsx

    imported = read_xlsform(workbook(REALISTIC_FORM))
    again = read_xlsform(definition_to_xlsx(imported.definition))
    assert others(again.warnings) == [] and again.definition == imported.definition
    form = again.definition
    assert form.item("channels").has_other and form.item("channels_other").other_of == "channels"
    assert form.item("street").choice_filter.to_xlsform() == "district = ${district}"
    assert form.item("overall").range == (0, 10, 1) and form.sections[1].appearance == "field-list"


def test_texts_without_a_translation_are_counted_in_one_warning_per_language():
    sheets = copy.deepcopy(REALISTIC_FORM)
    imported = read_xlsform(workbook(sheets))
    [warning] = [str(w) for w in imported.warnings]
    assert warning.startswith("7 处文字没有 English 译文（survey 第2行 required_message、survey 第5行 required_message、"
                              "survey 第5行 constraint_message等）：选 English 的受访者在这些地方看到的是中文")

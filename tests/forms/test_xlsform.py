"""XLSForm in and out: the bundled files, a city's own form, an ODK-style form, located errors, round trips."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forms import load_definition, parse_definition
from forms.bundled import DEFINITIONS, bundled_definitions, bundled_raw
from forms.expressions import ExpressionError, parse
from forms.xlsform import XLSFormError, definition_to_xlsx, load_xlsform, read_xlsform
from tests.conftest import examples
from tests.forms.workbooks import CITY_FORM, HOUSEHOLD_FORM, city_form, others, workbook

LEGACY = Path(__file__).parent / "legacy"


def legacy(name: str):
    return parse_definition(json.loads((LEGACY / f"{name}.json").read_text(encoding="utf-8")), f"{name}.json")


# The bundled questionnaires -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["citizen-v1", "minor-v1", "minor-v2"])
def test_bundled_xlsform_reads_as_the_json_it_replaces(name):
    imported = read_xlsform(DEFINITIONS / f"{name}.xlsx")
    assert others(imported.warnings) == []
    assert imported.definition == legacy(name)
    assert load_definition(DEFINITIONS / f"{name}.xlsx") == legacy(name)
    # What a new database stores (the dict from the .xlsx) parses to the same definition.
    code, version = imported.definition.code, imported.definition.version
    assert parse_definition(bundled_raw()[(code, version)]) == legacy(name) == bundled_definitions()[(code, version)]
    assert read_xlsform(definition_to_xlsx(imported.definition)).definition == imported.definition


def test_no_json_definitions_are_shipped_any_more():
    assert sorted(p.name for p in DEFINITIONS.iterdir() if p.suffix in (".json", ".xlsx")) == [
        "citizen-v1.xlsx", "minor-v1.xlsx", "minor-v2.xlsx"]


def test_old_stored_json_keeps_its_labels_topics_and_attributes():
    citizen = legacy("citizen-v1")
    assert citizen.languages == ("中文", "English") and citizen.title_en.startswith("Citizen questionnaire")
    assert citizen.item("sex").label == "您的性别" and citizen.item("sex").label_en == "Sex"
    assert citizen.item("age_band").choices[0].label_en == ""  # none in the file: none now
    assert citizen.topic_names["environment"] == "环境卫生"  # the old fixed names, for old files only
    assert citizen.item("k01").short_label == "创文知晓率"
    assert citizen.attributes == {"sex": "sex", "age_band": "age_band", "resident_6m": "resident"}
    assert all(item.relevant is None and item.hint == "" for item in citizen.elements)


# A city's own questionnaire -------------------------------------------------------------------


def test_city_form_keeps_languages_hints_notes_topics_attribute_and_dont_know():
    imported = read_xlsform(workbook(CITY_FORM))
    form = imported.definition
    assert others(imported.warnings) == []
    assert (form.code, form.version, form.title, form.title_en) == ("renewal", 3, "某市城市更新问卷", "Urban renewal survey")
    assert form.languages == ("中文", "English") and form.intro == "您好！" and form.privacy == "匿名填写。"
    assert form.topic_names == {"renewal": "城市更新", "streets": "背街小巷"}
    assert [t.labels for t in form.topics][1] == (("中文", "背街小巷"), ("English", "Back streets"))
    assert form.attributes == {"education": "education"}
    assert [i.code for i in form.items] == ["education", "heard", "s1", "s2", "comment"]  # the note asks nothing
    assert [i.code for i in form.elements][2] == "explain" and form.item("explain").type == "note"
    assert form.number_of("s1") == 3
    note = form.item("explain")
    assert not note.is_question and note.answer("x") == (None, None, None) and note.required is False
    assert "explain" not in form.parse_submission({"explain": "x"})[0]
    assert [len(s.elements) - len(s.items) for s in form.sections] == [0, 1]
    s1 = form.item("s1")
    assert (s1.type, s1.kind, s1.topic, s1.short_label) == ("rating", "satisfaction", "renewal", "城市更新")
    assert s1.hints == (("中文", "只选一项"), ("English", "One answer")) and s1.hint == "只选一项"
    assert [(c.code, c.score) for c in s1.choices] == [("5", 100), ("3", 60), ("1", 0), ("0", None)]
    assert s1.choice("0").labels == (("中文", "不了解"), ("English", "Don't know"))
    assert form.item("heard").type == "yesno" and form.item("education").type == "choice"
    assert form.item("comment").required is False and form.item("comment").max_length == 500
    assert form.respondent_score({"s1": "0", "s2": "3"}) == (60.0, 1)  # 不了解 is left out


def test_skip_rule_drops_the_answer_and_the_requirement():
    form = load_xlsform(workbook(CITY_FORM))
    base = {"education": "college", "s2": "5"}
    answers, errors = form.parse_submission(base | {"heard": "N", "s1": "5", "comment": "好"})
    assert errors == {} and answers["s1"] is None and answers["comment"] == "好"
    answers, errors = form.parse_submission(base | {"heard": "Y"})
    assert errors == {"s1": "请选择一项"}
    answers, errors = form.parse_submission(base | {"heard": "Y", "s1": "3", "comment": "好"})
    assert errors == {} and answers["s1"] == "3"
    # ${s2} != '0': a "don't know" answer to s2 hides the comment.
    answers, errors = form.parse_submission(base | {"heard": "Y", "s1": "3", "s2": "0", "comment": "好"})
    assert errors == {} and answers["comment"] is None
    assert form.item("s1").is_relevant({"heard": "Y"}) and not form.item("s1").is_relevant({})


def test_a_rule_on_a_skipped_question_sees_it_unanswered():
    sheets = city_form()
    survey_cell(9, "relevant", "${s1} = '5'")(sheets)  # s2 follows s1, which follows heard
    form = load_xlsform(workbook(sheets))
    answers, errors = form.parse_submission({"education": "college", "heard": "N", "s1": "5", "s2": "5"})
    assert answers["s1"] is None and answers["s2"] is None and errors == {}


def test_city_form_round_trips_with_three_languages_and_a_group_rule():
    sheets = city_form()
    survey_cell(4, "label::ئۇيغۇرچە", "ئاڭلىغان")(sheets)
    survey_cell(6, "relevant", "${heard} = 'Y' or ${education} != 'primary'")(sheets)
    form = load_xlsform(workbook(sheets))
    assert form.languages == ("中文", "English", "ئۇيغۇرچە")
    assert form.item("heard").labels[2] == ("ئۇيغۇرچە", "ئاڭلىغان") and form.item("s2").labels[2] == ("ئۇيغۇرچە", "")
    # The group's rule applies to each of its items, joined with the item's own rule.
    assert form.item("s1").relevant.to_xlsform() == "(${heard} = 'Y' or ${education} != 'primary') and ${heard} = 'Y'"
    assert form.item("s2").relevant.to_xlsform() == "${heard} = 'Y' or ${education} != 'primary'"
    assert load_xlsform(definition_to_xlsx(form)) == form


def test_default_language_comes_first():
    sheets = city_form()
    settings_cell("default_language", "English")(sheets)
    sheets["settings"][0][:1] = ["form_title::中文"]  # a plain column would be English now
    sheets["settings"][0][5:7] = ["intro::中文", "privacy::中文"]
    form = load_xlsform(workbook(sheets))
    assert form.languages == ("English", "中文") and form.item("s1").label == "Old estates renewal"
    assert form.title == "Urban renewal survey" and form.intro == "" and form.intros[1] == ("中文", "您好！")
    assert load_xlsform(definition_to_xlsx(form)) == form


def test_plain_label_columns_are_the_default_language():
    sheets = {
        "survey": [["type", "name", "label", "required"], ["select_one s", "q", "满意吗？", "yes"]],
        "choices": [["list_name", "name", "label", "score"], ["s", "1", "满意", 100], ["s", "0", "不满意", 0]],
        "settings": [["form_title", "form_id"], ["问卷", "plain"]],
    }
    form = load_xlsform(workbook(sheets))
    assert form.languages == ("中文",) and form.item("q").label == "满意吗？" and form.item("q").label_en == ""
    assert form.version == 1 and form.sections[0].title == "" and form.topics == ()
    assert load_xlsform(definition_to_xlsx(form)) == form


def test_text_that_starts_with_an_equals_sign_is_not_a_formula():
    sheets = city_form()
    survey_cell(9, "label::中文", "=背街小巷满意吗？")(sheets)
    form = load_xlsform(workbook(sheets))
    assert load_xlsform(definition_to_xlsx(form)).item("s2").label == "=背街小巷满意吗？"


# An ODK / KoboToolbox-style form --------------------------------------------------------------


def test_odk_household_form_names_every_unsupported_part():
    with pytest.raises(XLSFormError) as caught:
        read_xlsform(workbook(HOUSEHOLD_FORM))
    errors = [str(e) for e in caught.value.errors]
    assert errors == [
        "survey 第15行 type 列: 不支持重复组（begin repeat）",
        "survey 第18行 type 列: 不支持重复组（end repeat）",
    ]
    assert str(caught.value).splitlines() == errors
    assert "survey 第12行 media::image 列: 此列不影响本平台的问卷，已忽略" in map(str, caught.value.warnings)


def test_odk_household_form_imports_without_its_repeat():
    sheets = {name: [list(row) for row in rows] for name, rows in HOUSEHOLD_FORM.items()}
    sheets["survey"] = [row for number, row in enumerate(sheets["survey"], start=1) if number not in {15, 16, 17, 18}]
    imported = read_xlsform(workbook(sheets))
    form = imported.definition
    assert (form.code, form.version, form.title, form.languages) == ("household_2024", 2024031501, "社区家庭调查", ("中文",))
    assert [s.code for s in form.sections] == ["household", "section2"]
    assert [(i.code, i.type) for i in form.elements] == [
        ("consent", "choice"), ("hh_size", "integer"), ("assets", "multi"), ("location", "geopoint"),
        ("members_x2", "calculate"), ("service", "rating"), ("comment", "text"), ("thanks", "note")]
    assert form.item("service").relevant.to_xlsform() == "${consent} = 'yes'"
    assert form.item("service").appearance == "likert" and form.item("assets").appearance == "minimal"
    assert form.item("hh_size").constraint.to_xlsform() == ". > 0 and . < 30"
    assert form.item("hh_size").required_message == "" and form.item("hh_size").constraint_messages[0][1] == "人数应在1到29之间"
    assert form.item("comment").hint == "选填" and form.item("service").choice("dk").score is None
    answers, errors = form.parse_submission({"consent": "yes", "hh_size": "40", "service": "5"})
    assert errors == {"hh_size": "人数应在1到29之间"}
    answers, errors = form.parse_submission({"consent": "yes", "hh_size": "4", "service": "5", "assets": "fridge tv"})
    assert errors == {} and answers["members_x2"] == "8" and answers["assets"] == "tv fridge"
    warnings = [str(w) for w in imported.warnings]
    assert 'survey 第2行 type 列: 自动记录字段 "start" 本平台不使用，已忽略' in warnings
    assert "settings 第2行 instance_name 列: 此列不影响本平台的问卷，已忽略" in warnings
    assert load_xlsform(definition_to_xlsx(form)) == form


# A real public XLSForm: the XLSForm project's spec test form (pyxform's test suite, BSD licence;
# tests/forms/data/README.md), written for ODK, with English and Chinese labels -------------------

SPEC_FORM = Path(__file__).parent / "data" / "xlsform_spec_test.xlsx"


def spec_form_sheets() -> dict[str, list[list[object]]]:
    import openpyxl

    book = openpyxl.load_workbook(SPEC_FORM, read_only=True, data_only=True)  # as the importer reads it
    try:
        return {ws.title: [list(row) for row in ws.iter_rows(values_only=True)] for ws in book.worksheets}
    finally:
        book.close()


def test_public_odk_spec_form_names_every_unsupported_part():
    with pytest.raises(XLSFormError) as caught:
        read_xlsform(SPEC_FORM, code="spec_test")
    errors = [str(e) for e in caught.value.errors]
    for message in ("survey 第15行 type 列: 不支持重复组（begin repeat）", "survey 第35行 type 列: 不支持扫码题（barcode）",
                    "survey 第37行 type 列: 不支持录音题（audio）", "survey 第38行 type 列: 不支持视频题（video）",
                    'choices 第4行 label 列: 选项 "a" 缺少文字',  # an image-only choice
                    "survey 第43行 label::english 列: 文字中引用了自动记录字段 ${start}，本平台不记录它"):
        assert message in errors
    # The types it shares with us are read: no error on their rows (integer, decimal, select_multiple,
    # acknowledge, date, time, geopoint, image, calculate), nor on not() in a rule.
    assert not [e for e in caught.value.errors if e.row in (3, 13, 14, 18, 30, 31, 32, 34, 36, 40)]
    warnings = [str(w) for w in caught.value.warnings]
    for warning in ("survey 第9行 media::audio::chinese 列: 此列不影响本平台的问卷，已忽略",
                    "settings 第2行 submission_url 列: 此列不影响本平台的问卷，已忽略",
                    'survey 第50行 type 列: 自动记录字段 "uri:deviceid" 本平台不使用，已忽略',
                    "columns 表: 本平台不使用这个工作表，已忽略"):
        assert warning in warnings
    assert not any("第2行 label" in e or "第4行 label::english" in e for e in errors)  # English is the default


def test_public_odk_spec_form_imports_once_its_unsupported_rows_are_gone():
    sheets = spec_form_sheets()
    refused = {3, 5, 7, 10, 13, 14, 15, 18, 27, 28, 29, *range(30, 42), 43, 45, 47, 49, 51, 53, 56, 57}  # Excel rows
    sheets["survey"] = [row for number, row in enumerate(sheets["survey"], start=1) if number not in refused]
    choices = [row for row in sheets["choices"] if row[0] != "a_b"]
    choices[0][5] = "score"  # our scored answers: the yes/no list becomes a rating
    for row in choices[1:3]:
        row[5] = 100 if row[1] == "yes" else 0
    sheets["choices"] = choices
    imported = read_xlsform(workbook(sheets), code="spec_test", name="xlsform_spec_test.xlsx")
    form = imported.definition
    assert (form.code, form.title, form.languages) == ("spec_test", "Spec test", ("english", "chinese"))
    assert [i.code for i in form.items] == [
        "skip_to_end", "my_name", "address", "text_image_audio_video_test", "autocomplete_test",
        "autocomplete_chars_test", "required_text", "label-test", "list-nolabel-test", "table_list_question", "_1", "false"]
    assert form.item("address").labels == (("english", "Enter an address"), ("chinese", "您好"))
    assert form.item("address").hints == (("english", ""), ("chinese", "ni hao"))
    assert [(c.code, c.label, c.score) for c in form.item("skip_to_end").choices] == [("yes", "Yes", 100), ("no", "No", 0)]
    assert dict(form.item("skip_to_end").choices[0].labels)["chinese"] == "是"
    assert [s.code for s in form.sections] == ["section1", "group_test", "labeled_select_group", "name", "section5"]
    assert 'survey 第2行 type 列: 自动记录字段 "start" 本平台不使用，已忽略' not in map(str, imported.warnings)


def test_a_form_without_settings_is_named_after_its_file():
    sheets = {name: rows for name, rows in CITY_FORM.items() if name != "settings"}
    imported = read_xlsform(workbook(sheets), name="shop_owners.xlsx")
    assert (imported.definition.code, imported.definition.title) == ("shop_owners", "shop_owners")
    assert "settings 第2行 form_id 列: 没有填写问卷代码（form_id），已使用文件名 \"shop_owners\"" in map(str, imported.warnings)
    assert "settings 第2行 form_title 列: 没有填写问卷标题（form_title），已使用问卷代码 \"shop_owners\"" in map(str, imported.warnings)
    with pytest.raises(XLSFormError, match="form_id"):
        read_xlsform(workbook(sheets), name="店铺 问卷.xlsx")  # not a usable code: say so


def test_the_old_list_name_spelling_is_read():
    sheets = {name: [list(row) for row in rows] for name, rows in CITY_FORM.items()}
    sheets["choices"][0][0] = "list name"
    assert read_xlsform(workbook(sheets)).definition == read_xlsform(workbook(CITY_FORM)).definition


# Errors, each located -------------------------------------------------------------------------


def survey_cell(row: int, column: str, value):
    def change(sheets):
        header = sheets["survey"][0]
        if column not in header:
            header.append(column)
        line = sheets["survey"][row - 1]
        line += [None] * (len(header) - len(line))
        line[header.index(column)] = value
    return change


def choices_cell(row: int, column: str, value):
    def change(sheets):
        header = sheets["choices"][0]
        line = sheets["choices"][row - 1]
        line += [None] * (len(header) - len(line))
        line[header.index(column)] = value
    return change


def settings_cell(column: str, value):
    def change(sheets):
        sheets["settings"][1][sheets["settings"][0].index(column)] = value
    return change


def drop_survey_row(row: int):
    def change(sheets):
        del sheets["survey"][row - 1]
    return change


def insert_survey_row(row: int, *rows):
    def change(sheets):
        sheets["survey"][row - 1:row - 1] = [list(values) for values in rows]
    return change


def only_yes_choices(sheets):
    sheets["choices"] = [r for r in sheets["choices"] if r[:2] != ["yn", "N"]]


def no_scores(sheets):
    sheets["choices"] = [r[:4] if r[0] == "sat" else r for r in sheets["choices"]]


@pytest.mark.parametrize(("change", "message"), [
    (survey_cell(9, "type", "select_multiple sat"), 'survey 第9行 type 列: 多选题（select_multiple）不计分'),
    (survey_cell(9, "type", "integer"), "survey 第9行 kind 列: kind 只用于单选题"),
    (survey_cell(9, "type", "select_one_from_file streets.csv"), "survey 第9行 type 列: 不支持从文件读取选项（select_one_from_file）"),
    (survey_cell(9, "type", "begin repeat"), "survey 第9行 type 列: 不支持重复组（begin repeat）"),
    (survey_cell(9, "type", "rank sat"), "survey 第9行 type 列: 不支持排序题（rank）"),
    (survey_cell(9, "type", "audio"), "survey 第9行 type 列: 不支持录音题（audio）"),
    (survey_cell(9, "type", "calculate"), "survey 第9行 calculation 列: calculate 题需要填写 calculation"),
    (survey_cell(9, "repeat_count", "3"), "survey 第9行 repeat_count 列: 不支持重复组（repeat_count）"),
    (survey_cell(9, "appearance", "search('streets')"), "survey 第9行 appearance 列: 不支持 search() 外部选项"),
    (survey_cell(9, "type", "select_one nope"), 'survey 第9行 type 列: 选项列表 "nope" 不存在：choices 表中没有这个列表'),
    (survey_cell(9, "type", "select_multiple nope or_other"), 'survey 第9行 type 列: 选项列表 "nope" 不存在：choices 表中没有这个列表'),
    (survey_cell(9, "type", None), "survey 第9行 type 列: 缺少题型"),
    (survey_cell(9, "name", "s1"), 'survey 第9行 name 列: 名称 "s1" 与第8行重复'),
    (survey_cell(9, "name", "第二题"), 'survey 第9行 name 列: 名称 "第二题" 只能用英文字母'),
    (survey_cell(9, "name", None), "survey 第9行 name 列: 缺少题目名称"),
    (survey_cell(9, "label::中文", None), "survey 第9行 label::中文 列: 缺少题目文字"),
    (survey_cell(9, "required", "${s1} = '5'"), "survey 第9行 required 列: required 只支持 yes 或留空"),
    (survey_cell(9, "relevant", "pulldata('a', 'b', 'c', 'd') = 'x'"), "survey 第9行 relevant 列: 不支持函数 pulldata()"),
    (survey_cell(9, "relevant", "${s1} = "), 'survey 第9行 relevant 列: 表达式 "${s1} =" 有误：不完整'),
    (survey_cell(9, "constraint", "sqrt(.) > 1"), "survey 第9行 constraint 列: 不支持函数 sqrt()"),
    (survey_cell(9, "constraint", ". > ${nope}"), "survey 第9行 constraint 列: 表达式引用的题目 ${nope} 不存在或不在本题之前"),
    (survey_cell(9, "relevant", "district = 'x'"), "survey 第9行 relevant 列: relevant 中的名称 district 应写成 ${题目名}"),
    (survey_cell(9, "choice_filter", "district = ${s1}"), "survey 第9行 choice_filter 列: choices 表中没有 district 列"),
    (survey_cell(9, "relevant", "${comment} = 'x'"), "survey 第9行 relevant 列: 表达式引用的题目 ${comment} 不存在或不在本题之前"),
    (survey_cell(9, "relevant", "${explain} = 'x'"), "survey 第9行 relevant 列: 表达式引用的题目 ${explain} 不存在或不在本题之前"),
    (survey_cell(9, "label::中文", "您对${comment}满意吗？"), "survey 第9行 label::中文 列: 文字中引用的题目 ${comment} 不存在或不在本题之前"),
    (survey_cell(9, "default", "9"), 'survey 第9行 default 列: 默认答案 "9" 不是本题的选项'),
    (survey_cell(9, "relevant", "selected(${heard}, 'maybe')"), 'survey 第9行 relevant 列: 题目 heard 没有名为 "maybe" 的选项'),
    (survey_cell(9, "kind", "happiness"), 'survey 第9行 kind 列: kind 应是 awareness、support、participation、satisfaction 之一'),
    (survey_cell(9, "kind", "awareness"), "survey 第9行 kind 列: 计分题（选项带 score）的 kind 只能是 satisfaction"),
    (survey_cell(3, "kind", "support"), "survey 第3行 kind 列: kind 只用于选项带 score 或 yes 的选择题"),
    (survey_cell(9, "topic", "parks"), 'survey 第9行 topic 列: 主题 "parks" 没有列在 topics 表中'),
    (survey_cell(10, "topic", "streets"), "survey 第10行 topic 列: topic 只用于单选题"),
    (survey_cell(3, "attribute", "Education"), 'survey 第3行 attribute 列: 属性名 "Education" 只能用小写英文字母'),
    (survey_cell(4, "attribute", "education"), 'survey 第4行 attribute 列: 属性 "education" 与第3行重复'),
    (survey_cell(10, "attribute", "opinion"), "survey 第10行 attribute 列: 只有单选题（select_one）可以作为受访者属性"),
    (drop_survey_row(11), "survey 第6行 type 列: begin group 没有对应的 end group"),
    (drop_survey_row(6), "survey 第10行 type 列: end group 没有对应的 begin group"),
    (insert_survey_row(6, ["begin group", "empty", "空"], ["end group"]), "survey 第6行 type 列: 分组中没有题目"),
    (choices_cell(8, "name", "5"), 'choices 第8行 name 列: 选项列表 "sat" 中选项 "5" 重复'),
    (choices_cell(8, "label::中文", None), 'choices 第8行 label::中文 列: 选项 "3" 缺少文字'),
    (choices_cell(7, "score", 120), 'choices 第7行 score 列: 分值 "120" 应是 0 到 100 的数'),
    (choices_cell(7, "score", "很好"), 'choices 第7行 score 列: 分值 "很好" 应是 0 到 100 的数'),
    (choices_cell(5, "yes", "maybe"), 'choices 第5行 yes 列: yes 列应填 1、0 或留空'),
    (choices_cell(7, "yes", 1), "choices 第7行 yes 列: 同一选项列表不能既有 score 又有 yes"),
    (only_yes_choices, 'survey 第4行 type 列: 选项列表 "yn" 至少要有一个 yes=1 和一个 yes=0 的选项'),
    (settings_cell("default_language", "zh"), 'settings 第2行 default_language 列: 默认语言 "zh" 没有对应的 label::zh 列（已有：中文、English）'),
    (settings_cell("version", "1.2"), 'settings 第2行 version 列: 版本号 "1.2" 应是从 1 起的整数'),
    (settings_cell("form_id", None), "settings 第2行 form_id 列: 缺少问卷代码（form_id）"),
])
def test_each_rule_gives_a_located_error(change, message):
    sheets = city_form()
    change(sheets)
    with pytest.raises(XLSFormError) as caught:
        read_xlsform(workbook(sheets))
    assert any(str(e).startswith(message) for e in caught.value.errors), [str(e) for e in caught.value.errors]


def test_every_error_is_reported_at_once_and_warnings_are_kept():
    sheets = city_form()
    for change in (survey_cell(9, "type", "audio"), survey_cell(3, "attribute", "Education"),
                   choices_cell(7, "score", 120), survey_cell(8, "guidance_hint", "请读出选项")):
        change(sheets)
    with pytest.raises(XLSFormError) as caught:
        read_xlsform(workbook(sheets))
    assert [(e.sheet, e.row, e.column) for e in caught.value.errors] == [
        ("choices", 7, "score"), ("survey", 3, "attribute"), ("survey", 9, "type"),
        ("survey", 10, "relevant")]  # the comment's rule refers to the refused row's question
    assert [str(w) for w in others(caught.value.warnings)] == ["survey 第8行 guidance_hint 列: 此列不影响本平台的问卷，已忽略"]


def test_cosmetic_columns_are_warnings_and_change_nothing():
    sheets = city_form()
    for change in (survey_cell(8, "media::image", "a.png"), survey_cell(8, "guidance_hint", "请读出选项"),
                   survey_cell(9, "appearance", "autocomplete")):
        change(sheets)
    imported = read_xlsform(workbook(sheets))
    assert [str(w) for w in others(imported.warnings)] == [
        "survey 第8行 media::image 列: 此列不影响本平台的问卷，已忽略",
        "survey 第8行 guidance_hint 列: 此列不影响本平台的问卷，已忽略",
        'survey 第9行 appearance 列: 外观 "autocomplete" 本平台不使用，已忽略',
    ]
    assert imported.definition == load_xlsform(workbook(CITY_FORM))


def test_messages_appearance_and_defaults_are_read_in_every_language_and_written_back():
    sheets = city_form()
    for change in (survey_cell(8, "constraint_message::中文", "请选择"), survey_cell(8, "constraint_message::English", "Pick one"),
                   survey_cell(8, "constraint", ". != '0'"), survey_cell(9, "appearance", "likert"),
                   survey_cell(9, "required_message::中文", "必答"), survey_cell(9, "default", "3")):
        change(sheets)
    imported = read_xlsform(workbook(sheets))
    assert others(imported.warnings) == []
    form = imported.definition
    s1, s2 = form.item("s1"), form.item("s2")
    assert s1.constraint_messages == (("中文", "请选择"), ("English", "Pick one"))
    assert (s2.appearance, s2.required_message, s2.default) == ("likert", "必答", "3")
    assert form.defaults == {"s2": "3"}
    answers, errors = form.parse_submission({"education": "middle", "heard": "Y", "s1": "0"})
    assert errors == {"s1": "请选择", "s2": "必答"}
    assert load_xlsform(definition_to_xlsx(form)) == form


def test_text_length_constraint_and_other_sheets():
    sheets = city_form()
    survey_cell(10, "constraint", "string-length(.) <= 200")(sheets)
    sheets["external_choices"] = [["list_name", "name"], ["x", "y"]]
    imported = read_xlsform(workbook(sheets))
    assert imported.definition.item("comment").max_length == 200
    assert [str(w) for w in others(imported.warnings)] == ["external_choices 表: 本平台不使用这个工作表，已忽略"]
    assert load_xlsform(definition_to_xlsx(imported.definition)).item("comment").max_length == 200


def test_a_file_that_is_not_a_workbook_is_one_plain_error(tmp_path):
    with pytest.raises(XLSFormError) as caught:
        read_xlsform(b"not a zip at all")
    assert len(caught.value.errors) == 1 and str(caught.value).startswith("无法读取这个文件：请上传 Excel 的 .xlsx 文件")
    with pytest.raises(XLSFormError, match="缺少 survey 工作表"):
        read_xlsform(workbook({"choices": [["list_name", "name", "label"]]}))


def test_code_and_version_can_be_given_by_the_caller():
    form = load_xlsform(workbook(CITY_FORM), code="renewal_b", version=7)
    assert (form.code, form.version) == ("renewal_b", 7)


def test_expressions_parse_to_one_canonical_tree():
    a = parse("${a} = 'x' and (${b} = 'y' and ${c} != \"z'\")")
    assert a == parse("(${a}='x' and ${b}='y') and ${c} != \"z'\"")
    assert len(a.to_dict()) == 4 and parse(a.to_xlsform()) == a  # one "and" of three comparisons
    for bad in ("", "${a} = 'x' and", "${a} = 'x' xor ${b} = 'y'", "${} = 'x'", "(${a} = 'x'", "${a} = 'x')"):
        with pytest.raises(ExpressionError, match="表达式"):
            parse(bad)


# Round trip over generated definitions --------------------------------------------------------

TEXT = st.text(alphabet="文明城市满意度你好abcXYZ=?'\"（）12 ", min_size=1, max_size=8).map(str.strip).filter(bool)
MAYBE_TEXT = st.one_of(st.just(""), TEXT)
CODE = st.from_regex(r"[A-Za-z0-9_+-]{1,4}", fullmatch=True)


@st.composite
def definitions(draw):
    languages = draw(st.lists(st.sampled_from(["中文", "English", "Français", "ئۇيغۇرچە"]), min_size=1, max_size=3, unique=True))

    def texts(key, required=True):
        out = {key: draw(TEXT if required else MAYBE_TEXT)}
        translations = {lang: {key: text} for lang in languages[1:] if (text := draw(MAYBE_TEXT))}
        return out | ({"translations": translations} if translations else {})

    def merge(*parts):
        out = {}
        for part in parts:
            translations = part.pop("translations", {})
            out.update(part)
            for lang, texts_ in translations.items():
                out.setdefault("translations", {}).setdefault(lang, {}).update(texts_)
        return out

    topics = [{"code": f"t{n}"} | texts("label") for n in range(draw(st.integers(0, 2)))]
    asked: list[dict] = []
    attributes = 0
    sections = []
    counter = 0
    for s in range(draw(st.integers(1, 3))):
        items = []
        for _ in range(draw(st.integers(1, 3))):
            counter += 1
            kind = "rating" if counter == 1 else draw(st.sampled_from(["rating", "yesno", "choice", "text", "note"]))
            item = merge({"code": f"i{counter}", "type": kind}, texts("label"), texts("hint", required=False))
            if kind in ("rating", "yesno", "choice"):
                codes = draw(st.lists(CODE, min_size=2, max_size=4, unique=True))
                choices = [merge({"code": c}, texts("label")) for c in codes]
                if kind == "rating":
                    scores = draw(st.lists(st.one_of(st.none(), st.integers(0, 100), st.just(62.5)),
                                           min_size=len(codes), max_size=len(codes)).filter(lambda x: any(v is not None for v in x)))
                    for choice, score in zip(choices, scores, strict=True):
                        choice["score"] = score
                    item["kind"] = draw(st.sampled_from([None, "satisfaction"]))
                elif kind == "yesno":
                    flags = [True, False] + draw(st.lists(st.sampled_from([True, False, None]), min_size=len(codes) - 2, max_size=len(codes) - 2))
                    for choice, flag in zip(choices, draw(st.permutations(flags)), strict=True):
                        choice["yes"] = flag
                    item["kind"] = draw(st.sampled_from([None, "awareness", "support", "participation"]))
                item["choices"] = choices
                if topics and draw(st.booleans()):
                    item["topic"] = draw(st.sampled_from(topics))["code"]
                if draw(st.integers(0, 3)) == 0:
                    attributes += 1
                    item["attribute"] = f"attr_{attributes}"
                if draw(st.booleans()):
                    item["short"] = draw(TEXT)
            if kind == "text":
                item["max_length"] = draw(st.sampled_from([500, 1, 80, 5000]))
            item["required"] = kind != "note" and draw(st.booleans())
            if asked and draw(st.booleans()):
                item["relevant"] = draw(conditions(asked))
            items.append({k: v for k, v in item.items() if v is not None})
            if kind != "note":
                asked.append(item)
        sections.append(merge({"code": f"s{s}", "items": items}, texts("title", required=False)))
    return merge({"code": draw(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)), "version": draw(st.integers(1, 10**9)),
                  "minors": draw(st.booleans()), "languages": languages, "topics": topics, "sections": sections},
                 texts("title"), texts("intro", required=False), texts("privacy", required=False))


def conditions(asked):
    def leaf(item):
        values = [c["code"] for c in item.get("choices", ())]
        ops = ["=", "!=", "selected"] if values else ["=", "!="]
        return st.builds(lambda op, value: {"op": op, "item": item["code"], "value": value},
                         st.sampled_from(ops), st.sampled_from(values) if values else CODE)

    leaves = st.sampled_from(asked).flatmap(leaf)
    return st.recursive(leaves, lambda inner: st.builds(
        lambda op, args: {"op": op, "args": args}, st.sampled_from(["and", "or"]), st.lists(inner, min_size=2, max_size=3)),
        max_leaves=4)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=definitions())
def test_export_then_import_gives_an_equal_definition(raw):
    definition = parse_definition(raw)
    imported = read_xlsform(definition_to_xlsx(definition))
    assert others(imported.warnings) == []
    assert imported.definition == definition
    assert parse_definition(imported.raw) == definition

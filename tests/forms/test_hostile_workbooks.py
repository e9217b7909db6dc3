"""Hostile input to the XLSForm importer: each is refused (or read) with bounded work and a plain message.

Before the importer bounded its work these files took minutes, gigabytes or a crash, or were
accepted whatever they held; no test measures time (benchmarks/hostile_workbooks.py prints the
figures, and the builders are its own).
"""
from __future__ import annotations

import openpyxl
import pytest

from benchmarks.hostile_workbooks import (
    attribute_bomb,
    declared_dimension,
    entity_bomb,
    far_right_cells,
    formatted_empty_rows,
    in_sheet,
    long_relevant,
    many_choices,
    many_rows,
    many_sheets,
    small_form,
    ucl_biomass,
    wide_sheet,
    workbook,
)
from forms import xlsform, xlsx_reader
from forms.common import DefinitionError
from forms.definition import parse_definition
from forms.expressions import MAX_DEPTH, ExpressionError, parse
from forms.xlsform import MAX_CHOICES, MAX_COLUMNS, MAX_EXPRESSION, MAX_ROWS, XLSFormError, read_xlsform


def refused(data: bytes) -> list[str]:
    """Return the errors that reading the workbook gives (it must be refused)."""
    with pytest.raises(XLSFormError) as caught:
        read_xlsform(data)
    return [str(e) for e in caught.value.errors]


# Reading ---------------------------------------------------------------------------------------


def test_the_declared_dimension_is_not_read():
    # A 6 KB form declaring A1:XFD1048576: every row was read 16,384 cells wide (46 minutes).
    imported = read_xlsform(declared_dimension())
    assert [i.code for i in imported.definition.items] == ["q1", "q2"] and imported.warnings == []


def test_a_real_form_declaring_a_million_rows_is_refused_for_what_it_holds():
    # LibreOffice wrote it: 1,048,576 rows x 1,024 columns declared, formatted empty rows down to the
    # last. Before: 85 s of CPU. Now only its 91 rows with a value are kept, and every error is
    # located in them.
    with pytest.raises(XLSFormError) as caught:
        read_xlsform(ucl_biomass(), name="UCL_Biomass_Plot_Form.xlsx")
    errors = [str(e) for e in caught.value.errors]
    assert "survey 第16行 type 列: 不支持从文件读取选项（select_one_from_file）：请把选项写进 choices 表" in errors
    assert max(e.row or 0 for e in caught.value.errors + caught.value.warnings) == 91


def test_a_value_far_right_of_the_named_columns_is_ignored():
    # Each row was read up to column XFD, the stray value's.
    imported = read_xlsform(far_right_cells(rows=50))
    assert len(imported.definition.items) == 50 and imported.warnings == []


@pytest.mark.parametrize("data", [
    entity_bomb(),  # 10**9 "lol"s: expat's own limit stopped it with a message that said nothing
    entity_bomb(levels=6, copies=100, padding=12 * 1024 * 1024),  # 300 MB, under that limit: was accepted
    in_sheet(workbook(small_form()), "survey", lambda xml: b"<!DOCTYPE worksheet>" + xml),  # no entity at all
])
def test_xml_entities_and_any_dtd_are_refused_with_a_plain_message(data):
    assert refused(data) == [xlsform.ENTITIES]
    assert openpyxl.DEFUSEDXML  # installed, defusedxml guards openpyxl's own reading too


def test_a_workbook_listing_thousands_of_sheets_is_refused():
    # Each entry was a sheet to read again, every row of it.
    assert refused(many_sheets(5_000)) == [xlsx_reader.TOO_MANY_SHEETS]


def test_formatted_empty_rows_past_the_budget_are_refused(monkeypatch):
    monkeypatch.setattr(xlsx_reader, "MAX_ELEMENTS", 20_000)  # the same as 700,000 rows against 200,000
    assert refused(formatted_empty_rows(30_000)) == [f"survey 表: {xlsx_reader.TOO_MANY_ELEMENTS}"]
    assert [i.code for i in read_xlsform(formatted_empty_rows(15_000)).definition.items] == ["q1", "q2"]


def test_a_cell_with_a_quarter_million_attributes_is_refused():
    # expat's time on one tag's attributes grows faster than their number: 600,000 took 1.5 s.
    assert refused(attribute_bomb(250_000)) == [f"survey 表: {xlsx_reader.TOO_LONG_TOKEN}"]


def test_a_text_longer_than_excel_allows_is_refused():
    longer = in_sheet(workbook(small_form()), "survey",
                      lambda xml: xml.replace("您对第1项满意吗？".encode(), ("很长" * 20_000).encode()))
    assert refused(longer) == [f"survey 第3行: {xlsx_reader.TOO_LONG_TEXT}"]


def test_xml_that_unpacks_past_the_limit_is_refused():
    padded = in_sheet(workbook(small_form()), "survey",
                      lambda xml: xml.replace(b"</worksheet>", b" " * xlsx_reader.MAX_BYTES + b"</worksheet>"))
    assert len(padded) < 100_000 and refused(padded) == [f"survey 表: {xlsx_reader.TOO_MANY_BYTES}"]


# Limits of a questionnaire ---------------------------------------------------------------------


def test_twenty_thousand_choices_are_refused_where_the_limit_is_passed():
    # 59 s to upload before, and 16 s for each view of the preview.
    assert refused(many_choices(20_000)) == [
        f"choices 第{MAX_CHOICES + 2}行: choices 表最多 {MAX_CHOICES} 个选项（空行不算），从这一行起超出上限：请删除多余的行"]


def test_thousands_of_questions_are_refused_where_the_limit_is_passed():
    assert refused(many_rows(3_000)) == [
        f"survey 第{MAX_ROWS + 2}行: survey 表最多 {MAX_ROWS} 行（空行不算），从这一行起超出上限：请删除多余的行"]


@pytest.mark.parametrize(("sheet", "limit", "questions", "more", "what"), [
    ("survey", "MAX_ROWS", 2, ["note", "thanks", "谢谢！"], "survey 表最多 4 行"),  # begin group, 2 questions, end group
    ("choices", "MAX_CHOICES", 1, ["spare", "x", "备用"], "choices 表最多 4 个选项"),  # 4 choices, asked once
])
def test_rows_up_to_the_limit_are_read_and_empty_rows_do_not_count(monkeypatch, sheet, limit, questions, more, what):
    monkeypatch.setattr(xlsform, limit, 4)
    sheets = small_form(questions)
    sheets[sheet][1:1] = [[], [None, None]]
    assert len(read_xlsform(workbook(sheets)).definition.items) == questions
    sheets[sheet].append(more)
    assert refused(workbook(sheets)) == [f"{sheet} 第8行: {what}（空行不算），从这一行起超出上限：请删除多余的行"]


def test_a_list_used_by_many_questions_counts_once_for_each():
    sheets = small_form(2)
    sheets["choices"] += [["sat", f"c{n}", f"选项{n}", 50] for n in range(MAX_CHOICES // 2)]
    assert refused(workbook(sheets)) == [
        f"survey 第4行 type 列: 各题的选项合计超过 {MAX_CHOICES} 个（一个选项列表每被一道题使用就计算一次）：请减少题目或选项"]


def test_a_sheet_wider_than_the_limit_is_refused():
    # 16,384 named columns: each of the 200 rows was read that wide.
    assert refused(wide_sheet(16_384, rows=200)) == [
        f"survey 第1行: 列名（第一行）最多 {MAX_COLUMNS} 个，这个工作表有 16384 个：请删除多余的列"]
    assert read_xlsform(wide_sheet(MAX_COLUMNS, rows=2)).warnings == []


def test_long_relevant_expressions_are_refused_before_they_are_parsed():
    # Four cells of Excel's longest text of "${": 25.6 s in the tokenizer.
    assert refused(long_relevant(4, 32_767)) == [
        f"survey 第{row}行 relevant 列: 表达式太长（32767 个字符）：最多 {MAX_EXPRESSION} 个字符，请简化" for row in (4, 5, 6, 7)]
    sheets = small_form(2)
    rule = " or ".join(f"${{q1}} = '{code}'" for code in ("5", "3", "1", "0") * 30)
    sheets["survey"][3][4] = rule[:MAX_EXPRESSION].rsplit(" or ", 1)[0]
    assert read_xlsform(workbook(sheets)).definition.item("q2").relevant is not None


def test_labels_of_repeated_references_are_searched_in_linear_time():
    sheets = small_form(2)
    sheets["survey"][2][2] = "${" * 16_383  # quoted answers were searched from every "${" to the end
    assert read_xlsform(workbook(sheets)).definition.item("q1").label == "${" * 16_383


def test_only_the_first_messages_are_listed(monkeypatch):
    monkeypatch.setattr(xlsform, "MAX_MESSAGES", 3)
    sheets = small_form(5)
    sheets["survey"][0].append("appearance")
    for row in sheets["survey"][2:-1]:
        row += [None] * (6 - len(row)) + ["autocomplete"]
    imported = read_xlsform(workbook(sheets))
    assert [str(w) for w in imported.warnings][2:] == ['survey 第5行 appearance 列: 外观 "autocomplete" 本平台不使用，已忽略',
                                                        "……另有 2 条提示没有列出"]
    for row in sheets["survey"][2:-1]:
        row[0] = "audio"
    errors = refused(workbook(sheets))
    assert len(errors) == 4 and errors[-1] == "……另有 3 处错误没有列出：请先改正上面的错误，再上传一次"

# Skip rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "${" * 50_000,  # each unclosed "${" was scanned to the end of the text: 17 s
    "${a " * 25_000,
    "selected(" + "${" * 50_000,
    "'" + "${" * 50_000,
])
def test_repeated_references_are_tokenized_in_linear_time(text):
    with pytest.raises(ExpressionError, match="表达式太长"):
        parse(text)


def test_parentheses_nest_a_bounded_depth():
    deepest = "(" * MAX_DEPTH + "${a} = 'x'" + ")" * MAX_DEPTH
    assert parse(deepest) == parse("${a} = 'x'")
    for depth in (MAX_DEPTH + 1, 400):  # 5,000 levels overflowed Python's stack (RecursionError)
        with pytest.raises(ExpressionError, match=f"最多套 {MAX_DEPTH} 层"):
            parse("(" * depth + "${a} = 'x'" + ")" * depth)


# Definitions (what an upload becomes, parsed again for every preview) -------------------------


def rating(code: str, choices: int, **extra) -> dict:
    return {"code": code, "type": "rating", "label": f"题目 {code}",
            "choices": [{"code": f"c{n}", "label": f"选项 {n}", "score": n % 101} for n in range(choices)]} | extra


def one_section(*items) -> dict:
    return {"code": "big", "version": 1, "title": "大问卷", "languages": ["中文"],
            "sections": [{"code": "s", "title": "", "items": list(items)}]}


def test_twenty_thousand_choices_are_checked_for_duplicates_in_linear_time():
    raw = one_section(rating("q", 20_000))  # codes.count(code) per choice: 4 s for each parse
    assert len(parse_definition(raw).item("q").choices) == 20_000
    raw["sections"][0]["items"][0]["choices"].append({"code": "c7", "label": "又一个", "score": 0})
    with pytest.raises(DefinitionError, match="duplicate choice code 'c7'"):
        parse_definition(raw)


def test_every_skip_rule_of_a_long_form_is_described_by_looking_items_up_by_code():
    def rule(code: str) -> dict:
        return {"op": "or", "args": [{"op": "=", "item": code, "value": f"c{n}"} for n in range(20)]}

    items = [rating("q0", 20)] + [rating(f"q{n}", 20, short="同名", relevant=rule(f"q{n - 1}")) for n in range(1, 2_000)]
    definition = parse_definition(one_section(*items))
    # Each leaf's question was found by walking the items from the first: 2.2 s for the preview's rules.
    said = [definition.asked_when(item) for item in definition.items[1:]]
    assert said[-1] == "第1999题选" + "或".join(f"“选项 {n}”" for n in range(20))
    assert list(definition.column_names.values())[-1] == "同名（第2000题）"
    with pytest.raises(KeyError):
        definition.item("nothing")

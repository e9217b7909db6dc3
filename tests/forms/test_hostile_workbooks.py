"""Hostile input to the XLSForm importer: each is refused (or read) with bounded work and a plain message.

Each test here took minutes, gigabytes or a crash before the importer bounded its work; none of
them measures time (benchmarks/hostile_workbooks.py prints the figures).
"""
from __future__ import annotations

import pytest

from forms.conditions import MAX_NESTING, ExpressionError, parse_expression
from forms.definition import DefinitionError, parse_definition

# Skip rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "${" * 50_000,  # each unclosed "${" was scanned to the end of the text: 17 s
    "${a " * 25_000,
    "selected(" + "${" * 50_000,
    "'" + "${" * 50_000,
])
def test_repeated_references_are_tokenized_in_linear_time(text):
    with pytest.raises(ExpressionError, match="不支持的条件"):
        parse_expression(text)


def test_parentheses_nest_a_bounded_depth():
    deepest = "(" * MAX_NESTING + "${a} = 'x'" + ")" * MAX_NESTING
    assert parse_expression(deepest) == parse_expression("${a} = 'x'")
    for depth in (MAX_NESTING + 1, 5_000):  # 5,000 levels overflowed Python's stack (RecursionError)
        with pytest.raises(ExpressionError, match=f"括号最多嵌套 {MAX_NESTING} 层"):
            parse_expression("(" * depth + "${a} = 'x'" + ")" * depth)


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

"""Hostile input to the XLSForm importer: each is refused (or read) with bounded work and a plain message.

Each test here took minutes, gigabytes or a crash before the importer bounded its work; none of
them measures time (benchmarks/hostile_workbooks.py prints the figures).
"""
from __future__ import annotations

import pytest

from forms.conditions import MAX_NESTING, ExpressionError, parse_expression

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

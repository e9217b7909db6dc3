"""What every export table is made of: columns, the response columns every export starts with, safe cells.

Below ``exports`` (the tables and their writers) and ``exports_pg`` (PostgreSQL writing the
responses table itself), which both use these.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from forms.definition import Choice

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
Progress = Callable[[int], None]


def safe_cell(value):
    """Return a value a spreadsheet shows as text, never runs as a formula.

    >>> safe_cell("=HYPERLINK(1)"), safe_cell("-3"), safe_cell(-3), safe_cell("好")
    ("'=HYPERLINK(1)", "'-3", -3, '好')
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


@dataclass(frozen=True)
class Column:
    """A variable: its name (ASCII), its Chinese label, its type, and the choices of an item."""

    name: str
    label: str
    type: str = "text"  # text, int, float, time, choice
    choices: tuple[Choice, ...] = ()
    # Codes of the choices that are no answer to count ("don't know", "not applicable": a scored or
    # yes-type item's choice without a score or yes/no): user-missing in .sav, extended missing in .dta.
    missing: tuple[str, ...] = ()

    @property
    def numeric_codes(self) -> bool:
        """Return True when every choice code is a whole number, so .sav/.dta keep the codes as values."""
        return all(re.fullmatch(r"-?\d{1,9}", c.code) for c in self.choices)

    def value_numbers(self) -> dict[str, int]:
        """Return the number written for each choice code in .sav/.dta: the code itself, or 1..k."""
        if self.numeric_codes:
            return {c.code: int(c.code) for c in self.choices}
        return {c.code: n for n, c in enumerate(self.choices, start=1)}


RESPONSE_META = [
    Column("id", "编号", "int"),
    Column("community_code", "社区编码"),
    Column("community", "社区"),
    Column("street", "街道"),
    Column("channel", "渠道"),
    Column("submitted_at", "提交时间", "time"),
    Column("duration_s", "用时(秒)", "int"),
    Column("score", "满意度得分", "float"),
    Column("quality_flags", "数据质量标记"),
    Column("paper_serial", "纸质问卷编号"),  # the paper's serial, for a paper keyed in
    Column("entered_by", "录入人"),  # the account that keyed the paper in
]

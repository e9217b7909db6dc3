"""What definitions and item types share: the definition error, the checks of typed text and numbers.

The lowest module of forms/ (beside expressions.py): definition.py and items.py import it.
"""
from __future__ import annotations

import re

REQUIRED_MESSAGE = "请选择一项"
INVALID_CHOICE_MESSAGE = "请从列出的选项中选择一项"
# Control characters other than tab and line breaks: refused in every text a person types, since
# no keyboard makes them and PostgreSQL cannot store NUL.
# Bidirectional embeddings, overrides and isolates (U+202A-E, U+2066-9) are refused too: typed
# into a comment they make it read backwards in staff lists and exports ("Trojan source").
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
CONTROL_MESSAGE = "内容中含有无法识别的特殊字符，请删除后重试"
# The one XLSForm constraint a text item takes: its greatest length.
MAX_LENGTH = re.compile(r"string-length\(\s*\.\s*\)\s*<=\s*(\d+)\Z")
FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


class DefinitionError(ValueError):
    """A questionnaire definition that cannot be used; the message names the file and item."""


def has_control_characters(text: str) -> bool:
    r"""Return True when ``text`` holds a control character other than tab, CR or LF, or a bidi control.

    >>> has_control_characters("楼道灯坏了\r\n两周"), has_control_characters("a\x00b")
    (False, True)
    >>> has_control_characters("路灯\u202e坏了"), has_control_characters("👨\u200d👩\u200d👧")  # bidi override; emoji joiner
    (True, False)
    """
    return CONTROL_CHARACTERS.search(text) is not None


def choice_number(raw: str) -> int | None:
    """Return the choice number a person typed (ASCII or full-width digits), else None.

    >>> choice_number("３"), choice_number("12"), choice_number("²"), choice_number("٣")
    (3, 12, None, None)
    """
    digits = raw.strip().translate(FULLWIDTH_DIGITS)
    return int(digits) if 0 < len(digits) <= 3 and digits.isascii() and digits.isdigit() else None

"""Reading the CSV files staff import (areas, units, schools, margins): one reader for all of them."""
from __future__ import annotations

import csv
import io

from forms.common import CONTROL_CHARACTERS


def csv_reader(text: str, error: type[Exception]) -> csv.DictReader:
    """Return a DictReader over ``text`` (a leading byte-order mark dropped); raise ``error`` for a control character.

    No keyboard types a NUL or another control character: one in a file means it is not a plain
    CSV (a spreadsheet saved in another format, a damaged copy). Python's csv module stops at a
    NUL with an error of its own, and PostgreSQL cannot store one; the message names the line.

    >>> csv_reader("code\\nA\\x00\\n", ValueError)
    Traceback (most recent call last):
    ...
    ValueError: line 2: a control character (U+0000) no keyboard types; save the file again as UTF-8 CSV
    """
    text = text.lstrip("\ufeff")
    found = CONTROL_CHARACTERS.search(text)
    if found is not None:
        line = text.count("\n", 0, found.start()) + 1
        raise error(f"line {line}: a control character (U+{ord(found.group()):04X}) no keyboard types; "
                    "save the file again as UTF-8 CSV")
    return csv.DictReader(io.StringIO(text))

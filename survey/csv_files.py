"""Reading the CSV files staff import (areas, units, schools, margins): one reader for all of them."""
from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import click
from sqlalchemy.orm import Session

from forms.common import CONTROL_CHARACTERS
from survey import db


def csv_reader(text: str, error: type[Exception]) -> csv.DictReader:
    """Return a DictReader over ``text`` (a leading byte-order mark dropped); raise ``error`` for a control character.

    No keyboard types a NUL or another control character: one in a file means it is not a plain
    CSV (a spreadsheet saved in another format, a damaged copy). Python's csv module stops at a
    NUL with an error of its own, and PostgreSQL cannot store one; the message names the line.

    >>> list(csv_reader("code\\n" + "a" * 200_000 + "\\n", ValueError))
    Traceback (most recent call last):
    ...
    ValueError: line 2: not a well-formed CSV row (field larger than field limit (131072)); save the file again as UTF-8 CSV
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
    return _Reader(io.StringIO(text), error)


class _Reader(csv.DictReader):
    """A DictReader whose malformed rows (an unclosed quote, a field past csv's size limit, a bare
    carriage return) raise the importer's own error naming the line, not csv.Error."""

    def __init__(self, source: io.StringIO, error: type[Exception]) -> None:
        super().__init__(source)
        self._error = error

    def __next__(self):
        try:
            return super().__next__()
        except csv.Error as exc:
            raise self._error(f"line {self.line_num + 1}: not a well-formed CSV row ({exc}); "
                              "save the file again as UTF-8 CSV") from None

    @property
    def fieldnames(self):  # the header is read by the first access: the same care
        try:
            return super().fieldnames
        except csv.Error as exc:
            raise self._error(f"line 1: not a well-formed CSV header ({exc}); save the file again as UTF-8 CSV") from None

    @fieldnames.setter
    def fieldnames(self, value) -> None:
        csv.DictReader.fieldnames.fset(self, value)  # type: ignore[misc, union-attr]


def import_csv_file(path: Path, importer: Callable[[Session, str], int], error: type[Exception],
                    max_bytes: int | None = None) -> int:
    """Import a staff CSV for a flask command: read as UTF-8 (with or without BOM, at most ``max_bytes``),
    ``importer(session, text)`` in one write transaction; return its count.

    Raises click.ClickException naming the file for a file too large, not UTF-8, or refused by the
    importer (``error``): nothing is imported then.
    """
    if max_bytes is not None and path.stat().st_size > max_bytes:  # refused before it is read
        raise click.ClickException(f"{path}: larger than {max_bytes:,} bytes; nothing was imported")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise click.ClickException(f"{path} is not UTF-8 text; save it as UTF-8 CSV") from None
    try:
        with db.write_transaction() as session:
            return importer(session, text)
    except error as exc:
        raise click.ClickException(f"{path}: {exc}; nothing was imported") from None

"""The cell values of an .xlsx workbook, read with bounded work whatever the file declares or holds.

An uploaded XLSForm is untrusted, and an .xlsx is a zip of XML parts: a few KB of zip can declare a
sheet of 1,048,576 x 16,384 cells, hold a million XML elements or define XML entities that expand
to gigabytes. openpyxl (which writes our workbooks) parses every part it knows when it opens a
file -- styles, defined names, chart sheets, a sheet's part once more for every sheet entry naming
it -- at 2 to 17 µs an element (measured here), and its read-only sheets pad every row out to the
declared dimension. This reader parses only the parts that hold cell values: the workbook and its
relationships, the shared strings, the number formats (to tell dates) and each sheet when its rows
are asked for, through defusedxml with no DTD allowed (so no entity can be declared), and it
counts what it parses. Past ``MAX_ELEMENTS`` elements or ``MAX_BYTES`` unpacked bytes in all,
``MAX_SHEETS`` sheets, a tag (or comment) running on for ``MAX_TOKEN`` bytes or a text of more
than ``MAX_TEXT`` characters it stops with :class:`TooLarge`, whose message is for office staff.
Rows come as the sheet lists them: the declared dimension is never read, and a gap between rows
costs nothing.

Values are those of openpyxl's ``data_only`` reading: text, int, float, bool, a datetime for a
number in a date format, the cached value of a formula; empty cells are left out. An ISO 8601
date cell (``t="d"``, which Excel writes only when asked to) stays text.
"""
from __future__ import annotations

import functools
import io
import posixpath
import zipfile
from collections.abc import Iterator
from typing import Any

from defusedxml.ElementTree import DefusedXMLParser
from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format
from openpyxl.utils.datetime import CALENDAR_MAC_1904, WINDOWS_EPOCH, from_excel

# 2 to 3 µs an element here: the whole budget takes well under a second. The sheets of the ODK spec
# test form (a Google Sheets export: 1,000 formatted rows of 26 cells) hold 28,000 each.
MAX_ELEMENTS = 200_000
MAX_BYTES = 16 * 1024 * 1024  # of XML parsed, unpacked; the spec test form has 2.2 MB
MAX_SHEETS = 50
MAX_TEXT = 32_767  # characters in a cell: Excel's own limit
# A tag or comment that a chunk leaves unfinished may run on for at most this many bytes: expat
# takes superlinear time and ~300 bytes a piece on the attributes of one tag (a million: 3 s).
MAX_TOKEN = 1024 * 1024
# Fed to expat a MiB at a time: expat 2.5 parses a token (a tag, a comment) that a chunk cuts off
# again from its start with each further chunk, so small chunks make a long token quadratic.
CHUNK = 1024 * 1024
REFUSED = "不像是正常的问卷文件，已拒绝。请把问卷内容复制到新建的 Excel 文件中，保存为 .xlsx 后再上传。"
TOO_MANY_ELEMENTS = f"文件中的内容过多（超过 {MAX_ELEMENTS // 10_000} 万个 XML 元素，例如大量带格式的空行或空单元格），{REFUSED}"
TOO_MANY_BYTES = f"文件解压后的表格数据超过 {MAX_BYTES // 1024 // 1024} MB，{REFUSED}"
TOO_MANY_SHEETS = f"工作表超过 {MAX_SHEETS} 个，{REFUSED}"
TOO_LONG_TEXT = f"有单元格的文字超过 {MAX_TEXT} 个字符（Excel 的上限），{REFUSED}"
TOO_LONG_TOKEN = f"文件中有一处异常的内容超过 {MAX_TOKEN // 1024 // 1024} MB（例如一个单元格带有上百万个属性），{REFUSED}"
DIGITS = "0123456789"
RELATIONSHIP = "}id"  # the r:id attribute, whatever the namespace (transitional or strict)


class TooLarge(ValueError):
    """A workbook past one of the limits; ``sheet`` is the sheet being read (None: another part), ``row`` its row."""

    def __init__(self, message: str, sheet: str | None = None, row: int | None = None) -> None:
        super().__init__(message)
        self.sheet, self.row = sheet, row


class XlsxReader:
    """An .xlsx opened for its cell values: ``sheet_names`` (worksheets, in order) and :meth:`rows`.

    Opening reads the workbook, its relationships, the number formats and the shared strings;
    each sheet is read when its rows are asked for.

    >>> from forms.bundled import DEFINITIONS
    >>> with XlsxReader((DEFINITIONS / "citizen-v1.xlsx").read_bytes()) as book:
    ...     book.sheet_names, next(book.rows("survey"))[1][1]
    (['survey', 'choices', 'settings', 'topics'], 'type')
    """

    def __init__(self, data: bytes) -> None:
        self._zip = zipfile.ZipFile(io.BytesIO(data))
        self._names = set(self._zip.namelist())
        self.elements = self._bytes = 0
        self._sheet: str | None = None  # the sheet being read, for messages
        try:
            self._open()
        except BaseException:
            self._zip.close()
            raise

    def _open(self) -> None:
        root = self._relationships("")
        workbook = next((target for kind, target in root.values() if kind.endswith("/officeDocument")), "xl/workbook.xml")
        related = self._relationships(workbook)
        book = _WorkbookPart(self)
        self._parse(workbook, book)
        self._epoch = CALENDAR_MAC_1904 if book.date1904 else WINDOWS_EPOCH
        self._sheets = {name: related[rid][1] for name, rid in book.sheets  # as openpyxl: a missing part, no sheet
                        if rid in related and related[rid][0].endswith("/worksheet") and related[rid][1] in self._names}
        self.sheet_names = list(self._sheets)
        parts = {kind.rpartition("/")[2]: target for kind, target in related.values()}
        self._dates: dict[int, bool] = {}  # cell style -> whether a timedelta (else a date)
        if "styles" in parts:
            styles = _StylesPart(self)
            self._parse(parts["styles"], styles)
            self._dates = styles.dates()
        self._strings: list[str] = []
        if "sharedStrings" in parts:
            strings = _StringsPart(self)
            self._parse(parts["sharedStrings"], strings)
            self._strings = strings.strings

    def __enter__(self) -> XlsxReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def rows(self, name: str) -> Iterator[tuple[int, dict[int, Any]]]:
        """Yield (Excel row number, {column number from 1: value}) for each row of sheet ``name`` with a value."""
        sheet = _SheetPart(self, name)
        for _ in self._feed(self._sheets[name], sheet, name):
            yield from sheet.done
            sheet.done.clear()

    # parsing ----------------------------------------------------------------------------------
    def _feed(self, part: str, target: _Part, sheet: str | None = None) -> Iterator[None]:
        """Parse ``part`` into ``target`` a chunk at a time, yielding after each chunk."""
        self._sheet = sheet
        parser = DefusedXMLParser(target=target, forbid_dtd=True)
        # defusedxml's expat parser refuses a DTD (and with it any entity); its element events go
        # straight to the target, not through ElementTree's layer, which doubled their cost.
        expat = parser.parser
        expat.ordered_attributes = False
        expat.StartElementHandler, expat.EndElementHandler = target.start, target.end
        fed = 0
        with self._zip.open(part) as stream:
            while chunk := stream.read(CHUNK):
                self._bytes += len(chunk)
                if self._bytes > MAX_BYTES:
                    raise TooLarge(TOO_MANY_BYTES, sheet)
                parser.feed(chunk)
                fed += len(chunk)
                if fed - expat.CurrentByteIndex > MAX_TOKEN:  # where expat stopped: the unfinished token's start
                    raise TooLarge(TOO_LONG_TOKEN, sheet)
                yield
        parser.close()
        yield

    def _parse(self, part: str, target: _Part) -> None:
        for _ in self._feed(part, target):
            pass

    def _relationships(self, part: str) -> dict[str, tuple[str, str]]:
        """Return {relationship id: (type, part name)} of ``part`` ("" for the package's own)."""
        folder, name = posixpath.split(part)
        rels = posixpath.join(folder, "_rels", f"{name}.rels") if part else "_rels/.rels"
        if rels not in self._names:
            return {}
        target = _RelationshipsPart(self)
        self._parse(rels, target)
        out = {}
        for rid, kind, where in target.relationships:
            out[rid] = (kind, where[1:] if where.startswith("/") else posixpath.normpath(posixpath.join(folder, where)))
        return out

    def count(self) -> None:
        """Count one element parsed; past the budget, stop."""
        self.elements += 1
        if self.elements > MAX_ELEMENTS:
            raise TooLarge(TOO_MANY_ELEMENTS, self._sheet)

    def value(self, kind: str, style: str | None, text: str | None, inline: list[str] | None) -> Any:
        """Return a cell's value from its type (``t``), style (``s``), ``<v>`` text and inline string pieces."""
        if kind == "inlineStr":
            return "".join(inline) if inline is not None else None
        if not text:  # no <v>, or an empty one (a formula never calculated)
            return None
        if kind == "s":
            index = int(text)
            if index < 0:
                raise IndexError(f"shared string {index}")
            return self._strings[index]
        if kind in ("str", "e"):
            return text
        if kind == "b":
            return bool(int(text))
        if kind == "d":  # an ISO 8601 date as text: what the importer makes of a datetime anyway
            return text
        number = float(text) if any(c in text for c in ".eE") else int(text)
        timedelta = self._dates.get(int(style)) if style else None
        if timedelta is None:
            return number
        try:
            return from_excel(number, self._epoch, timedelta=timedelta)
        except (OverflowError, ValueError):  # outside the dates Excel knows: the number as it is
            return number


class _Part:
    """A parser target: ``start`` and ``end`` get expat's names ("namespace}local") and attributes.

    Every element is counted against the reader's budget; ``opened`` and ``closed`` get local names.
    """

    def __init__(self, reader: XlsxReader) -> None:
        self.reader = reader

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.reader.count()
        self.opened(tag.rpartition("}")[2], attrib)

    def opened(self, name: str, attrib: dict[str, str]) -> None:
        pass

    def end(self, tag: str) -> None:
        self.closed(tag.rpartition("}")[2])

    def closed(self, name: str) -> None:
        pass

    def data(self, text: str) -> None:
        pass


class _RelationshipsPart(_Part):
    def __init__(self, reader: XlsxReader) -> None:
        super().__init__(reader)
        self.relationships: list[tuple[str, str, str]] = []

    def opened(self, name: str, attrib: dict[str, str]) -> None:
        if name == "Relationship" and attrib.get("TargetMode") != "External":
            self.relationships.append((attrib.get("Id", ""), attrib.get("Type", ""), attrib.get("Target", "")))


class _WorkbookPart(_Part):
    def __init__(self, reader: XlsxReader) -> None:
        super().__init__(reader)
        self.sheets: list[tuple[str, str]] = []  # (name, relationship id)
        self.date1904 = False

    def opened(self, name: str, attrib: dict[str, str]) -> None:
        if name == "sheet":
            if len(self.sheets) == MAX_SHEETS:
                raise TooLarge(TOO_MANY_SHEETS)
            rid = next((value for key, value in attrib.items() if key.endswith(RELATIONSHIP)), "")
            self.sheets.append((attrib.get("name", ""), rid))
        elif name == "workbookPr":
            self.date1904 = attrib.get("date1904", "").lower() in ("1", "true")


class _StylesPart(_Part):
    """The number format of each cell style (``cellXfs``), to tell dates from numbers."""

    def __init__(self, reader: XlsxReader) -> None:
        super().__init__(reader)
        self.formats: dict[int, str] = {}
        self.styles: list[int] = []
        self.in_cell_styles = False

    def opened(self, name: str, attrib: dict[str, str]) -> None:
        if name == "numFmt":
            self.formats[int(attrib.get("numFmtId", "0"))] = attrib.get("formatCode", "")
        elif name == "cellXfs":
            self.in_cell_styles = True
        elif name == "xf" and self.in_cell_styles:
            self.styles.append(int(attrib.get("numFmtId", "0")))

    def closed(self, name: str) -> None:
        if name == "cellXfs":
            self.in_cell_styles = False

    def dates(self) -> dict[int, bool]:
        """Return {cell style: True for a duration format, False for a date} for the styles that show dates."""
        kinds: dict[int, bool | None] = {}  # per format: each format code looked at once
        for number in set(self.styles):
            code = self.formats.get(number) or BUILTIN_FORMATS.get(number)
            kinds[number] = is_timedelta_format(code) if code and is_date_format(code) else None
        return {style: kind for style, number in enumerate(self.styles) if (kind := kinds[number]) is not None}


class _TextPart(_Part):
    """Collects the text of ``<t>`` (or ``<v>``) elements, not those of phonetic runs (``<rPh>``).

    The pieces of one value (a shared string, a cell) together hold at most ``MAX_TEXT`` characters.
    """

    def __init__(self, reader: XlsxReader) -> None:
        super().__init__(reader)
        self.text: list[str] | None = None  # the pieces of the element being read
        self.length = 0  # characters of the value being read
        self.phonetic = 0

    def data(self, text: str) -> None:
        if self.text is not None:
            self.length += len(text)
            if self.length > MAX_TEXT:
                raise self.too_long()
            self.text.append(text)

    def too_long(self) -> TooLarge:
        return TooLarge(TOO_LONG_TEXT)

    def captured(self) -> str:
        text = "".join(self.text or ())
        self.text = None
        return text


class _StringsPart(_TextPart):
    def __init__(self, reader: XlsxReader) -> None:
        super().__init__(reader)
        self.strings: list[str] = []
        self.pieces: list[str] | None = None  # of the string item (``<si>``) being read

    def opened(self, name: str, attrib: dict[str, str]) -> None:
        if name == "si":
            self.pieces, self.length = [], 0
        elif name == "rPh":
            self.phonetic += 1
        elif name == "t" and self.pieces is not None and not self.phonetic:
            self.text = []

    def closed(self, name: str) -> None:
        if name == "t" and self.text is not None and self.pieces is not None:
            self.pieces.append(self.captured())
        elif name == "rPh":
            self.phonetic -= 1
        elif name == "si" and self.pieces is not None:
            self.strings.append("".join(self.pieces))
            self.pieces = None


class _SheetPart(_TextPart):
    """Rows of a worksheet, collected in ``done`` as they end; cells placed by their ``r`` (else one on).

    The most elements are here: ``start`` and ``end`` do their work themselves.
    """

    def __init__(self, reader: XlsxReader, name: str) -> None:
        super().__init__(reader)
        self.name = name
        self.done: list[tuple[int, dict[int, Any]]] = []
        # The row's number: the last row number given (``r``) plus the rows since, worked out only
        # for a row with a value (most rows listed without one are formatted empty rows).
        self.reference: str | None = None
        self.after = 0
        self.in_row = False
        self.cells: dict[int, Any] | None = None  # of the row being read, once it has a value
        self.column = 0
        self.kind: str | None = None  # of the cell being read, None outside a cell
        self.style: str | None = None
        self.value: str | None = None
        self.inline: list[str] | None = None

    @property
    def row(self) -> int:
        return (_row_number(self.reference) if self.reference else 0) + self.after

    def too_long(self) -> TooLarge:
        return TooLarge(TOO_LONG_TEXT, self.name, self.row)

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        reader = self.reader
        reader.elements += 1
        if reader.elements > MAX_ELEMENTS:
            raise TooLarge(TOO_MANY_ELEMENTS, self.name)
        name = tag.rpartition("}")[2]
        if name == "c":
            if self.in_row:
                reference = attrib.get("r")
                self.column = _column(reference.rstrip(DIGITS)) if reference else self.column + 1
                self.kind, self.style, self.value, self.inline = attrib.get("t", "n"), attrib.get("s"), None, None
                self.length = 0
        elif name == "row":
            reference = attrib.get("r")
            if reference is None:
                self.after += 1
            else:
                self.reference, self.after = reference, 0
            self.in_row, self.column = True, 0
        elif self.kind is None:
            return
        elif name == "v":
            self.text = []
        elif name == "is":
            self.inline = []
        elif name == "rPh":
            self.phonetic += 1
        elif name == "t" and self.inline is not None and not self.phonetic:
            self.text = []

    def end(self, tag: str) -> None:
        if self.kind is None:
            if self.in_row and (tag.endswith("}row") or tag == "row"):
                if self.cells:
                    self.done.append((self.row, self.cells))
                self.in_row, self.cells = False, None
            return
        name = tag.rpartition("}")[2]
        if self.text is not None and name in ("v", "t"):
            text = self.captured()
            if name == "v":
                self.value = text
            elif self.inline is not None:
                self.inline.append(text)
        elif name == "rPh":
            self.phonetic -= 1
        elif name == "c":
            value = self.reader.value(self.kind, self.style, self.value, self.inline)
            if value is not None and self.in_row:
                if self.cells is None:
                    self.cells = {}
                self.cells[self.column] = value
            self.kind = None


def _row_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    number = float(text)  # "12.0" is read as 12 too
    if not number.is_integer():
        raise ValueError(f"row number {text[:20]!r}")
    return int(number)


@functools.cache
def _column(letters: str) -> int:
    """Return the number of a column from its letters ("B" -> 2, "AA" -> 27), up to Excel's last (XFD)."""
    number = 0
    if not 0 < len(letters) <= 3 or not letters.isascii() or not letters.isalpha():
        raise ValueError(f"column {letters[:20]!r}")
    for letter in letters.upper():
        number = number * 26 + ord(letter) - 64
    return number

"""The bounded .xlsx reader gives the values openpyxl gives, for real files and for each kind of cell."""
from __future__ import annotations

import io
import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from benchmarks.hostile_workbooks import MAIN, workbook
from forms.bundled import DEFINITIONS
from forms.xlsx_reader import XlsxReader

DATA = Path(__file__).parent / "data"


def openpyxl_values(data: bytes) -> dict[str, dict[tuple[int, int], object]]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        out = {}
        for sheet in book.worksheets:
            sheet.reset_dimensions()
            out[sheet.title] = {(r, c): v for r, row in enumerate(sheet.iter_rows(values_only=True), start=1)
                                for c, v in enumerate(row, start=1) if v is not None}
        return out
    finally:
        book.close()


def our_values(data: bytes) -> dict[str, dict[tuple[int, int], object]]:
    with XlsxReader(data) as book:
        return {name: {(r, c): v for r, cells in book.rows(name) for c, v in cells.items()} for name in book.sheet_names}


@pytest.mark.parametrize("path", sorted(DEFINITIONS.glob("*.xlsx")) + sorted(DATA.glob("*.xlsx")), ids=lambda p: p.name)
def test_real_files_read_as_openpyxl_reads_them(path):
    data = path.read_bytes()
    assert our_values(data) == openpyxl_values(data)


def test_each_kind_of_cell_reads_as_openpyxl_reads_it():
    data = workbook({"survey": [
        ["text", 12, 2.5, 3.0, True, False, datetime(2024, 3, 15, 9, 30), "=1+1", "  spaced  ", "第二行\n文字"],
        [None, None, "after a gap"],
        [],
        ["after an empty row"],
    ], "choices": [["only"]]})
    ours = our_values(data)
    assert ours == openpyxl_values(data)
    assert ours["survey"][(1, 7)] == datetime(2024, 3, 15, 9, 30) and (1, 8) not in ours["survey"]  # no cached value


def test_shared_strings_rich_text_phonetic_runs_and_cells_without_references():
    rows = (
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c t="s"><v>1</v></c><c><v>7</v></c>'
        '<c r="E1" t="inlineStr"><is><r><t>in</t></r><r><rPr><b/></rPr><t>line</t></r></is></c></row>'
        '<row><c t="b"><v>1</v></c><c t="e"><v>#N/A</v></c><c t="str"><v>formula text</v></c></row>'
        '<row r="9"><c r="B9" s="1"><v>45366</v></c><c r="C9" t="d"><v>2024-03-15T00:00:00</v></c></row>'
    )
    strings = (f'<sst xmlns="{MAIN}"><si><t>plain</t></si>'
               '<si><r><t xml:space="preserve">rich </t></r><r><t>text</t></r><rPh sb="0" eb="1"><t>ふりがな</t></rPh></si></sst>')
    styles = (f'<styleSheet xmlns="{MAIN}"><numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy&quot;年&quot;m&quot;月&quot;d&quot;日&quot;"/>'
              '</numFmts><cellStyleXfs count="1"><xf numFmtId="164"/></cellStyleXfs>'
              '<cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="164"/></cellXfs></styleSheet>')

    def parts(name: str, content: bytes) -> bytes | None:
        if name == "xl/worksheets/sheet1.xml":
            return f'<x:worksheet xmlns:x="{MAIN}"><x:sheetData>{rows.replace("<", "<x:").replace("<x:/", "</x:")}</x:sheetData></x:worksheet>'.encode()
        return {"xl/styles.xml": styles.encode()}.get(name)

    data = with_parts(workbook({"survey": [["x"]]}), parts, strings.encode())
    assert our_values(data)["survey"] == {
        (1, 1): "plain", (1, 2): "rich text", (1, 3): 7, (1, 5): "inline",
        (2, 1): True, (2, 2): "#N/A", (2, 3): "formula text",
        (9, 2): datetime(2024, 3, 15), (9, 3): "2024-03-15T00:00:00",  # an ISO date cell stays text
    }


def with_parts(data: bytes, change, shared_strings: bytes) -> bytes:
    """Return the workbook with parts changed and a shared strings part added (with its relationship)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for part in source.infolist():
            content = change(part.filename, source.read(part.filename)) or source.read(part.filename)
            if part.filename == "xl/_rels/workbook.xml.rels":
                content = content.replace(b"</Relationships>", b'<Relationship Id="rIdS" Target="sharedStrings.xml" Type='
                                          b'"http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"/>'
                                          b"</Relationships>")
            target.writestr(part.filename, content)
        target.writestr("xl/sharedStrings.xml", shared_strings)
    return out.getvalue()

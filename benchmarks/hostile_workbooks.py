"""Time and peak memory of checking hostile XLSForm uploads, against the 2 s and 256 MB target.

    python -m benchmarks.hostile_workbooks [--code DIR] [--timeout 30] [--only NAME,...]

Builds each hostile workbook below (none over the 2 MB upload limit: they are made of a few cells
and much repetition), then runs the check an upload gets (``survey.questionnaires.check_xlsform``:
the zip checks, reading, the questionnaire's rules) on it in a child process and prints, per file,
its size, the seconds the check took, the child's peak memory (VmHWM: since its exec, the imports
included) and what came of it: accepted, refused (with the first message) or killed at the
timeout. The bundled citizen questionnaire is the baseline. ``--code DIR`` runs the check with the
code of another checkout (e.g. main, to compare); openpyxl used defusedxml there only when it was
installed: ``OPENPYXL_DEFUSEDXML=False`` in the environment reproduces an installation without it
(the padded entity bomb then grew past 5 GB in the 30 s before it was killed).

The builders are used by tests/forms/test_hostile_workbooks.py too, at smaller sizes where that
is enough to show the old behaviour.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS, TARGET_MB = 2.0, 256.0
UPLOAD_LIMIT = 2 * 1024 * 1024
CITIZEN = ROOT / "forms" / "definitions" / "citizen-v1.xlsx"
UCL = ROOT / "tests" / "forms" / "data" / "UCL_Biomass_Plot_Form.xlsx"
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"

Sheets = dict[str, list[list[object]]]


def small_form(questions: int = 2) -> Sheets:
    """Return the sheets of a small valid questionnaire: ``questions`` rated questions in one group."""
    return {
        "survey": [["type", "name", "label::中文", "required", "relevant", "kind"], ["begin group", "g", "满意度"],
                   *(["select_one sat", f"q{n}", f"您对第{n}项满意吗？", "yes", None, "satisfaction"] for n in range(1, questions + 1)),
                   ["end group", "g"]],
        "choices": [["list_name", "name", "label::中文", "score"],
                    ["sat", "5", "满意", 100], ["sat", "3", "一般", 60], ["sat", "1", "不满意", 0], ["sat", "0", "不了解"]],
        "settings": [["form_title", "form_id", "version"], ["某市满意度问卷", "hostile", 1]],
    }


def workbook(sheets: Sheets) -> bytes:
    """Return an .xlsx (written by openpyxl) with one sheet per entry; None is an empty cell."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for number, row in enumerate(rows, start=1):
            for column, value in enumerate(row, start=1):
                if value is not None:
                    sheet.cell(number, column, value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def sheet_xml(rows: list[list[object]]) -> bytes:
    """Return the XML of a worksheet holding ``rows`` (text as inline strings): quicker than openpyxl for many rows."""
    def cell(reference: str, value: object) -> str:
        if isinstance(value, int | float):
            return f'<c r="{reference}"><v>{value}</v></c>'
        text = str(value).replace("&", "&amp;").replace("<", "&lt;")
        return f'<c r="{reference}" t="inlineStr"><is><t>{text}</t></is></c>'

    lines = (f'<row r="{number}">' + "".join(cell(f"{letters(column)}{number}", value)
                                            for column, value in enumerate(row, start=1) if value is not None) + "</row>"
             for number, row in enumerate(rows, start=1))
    return (f'<worksheet xmlns="{MAIN}"><sheetData>' + "".join(lines) + "</sheetData></worksheet>").encode()


def letters(column: int) -> str:
    """Return a column's letters (1 -> A, 27 -> AA)."""
    out = ""
    while column:
        column, rest = divmod(column - 1, 26)
        out = chr(65 + rest) + out
    return out


def patched(data: bytes, change: Callable[[str, bytes], bytes | None]) -> bytes:
    """Return the workbook with each part replaced by ``change(name, content)`` (None: left as it is)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for part in source.infolist():
            content = source.read(part.filename)
            target.writestr(part.filename, change(part.filename, content) or content)
    return out.getvalue()


def sheet_part(data: bytes, sheet: str) -> str:
    """Return the name of the part holding ``sheet`` (openpyxl writes them in order: sheet1.xml, ...)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        workbook_xml = archive.read("xl/workbook.xml").decode()
    names = re.findall(r'<sheet [^>]*name="([^"]+)"', workbook_xml)
    return f"xl/worksheets/sheet{names.index(sheet) + 1}.xml"


def in_sheet(data: bytes, sheet: str, change: Callable[[bytes], bytes]) -> bytes:
    """Return the workbook with the XML of ``sheet`` changed."""
    part = sheet_part(data, sheet)
    return patched(data, lambda name, content: change(content) if name == part else None)


# The hostile workbooks ---------------------------------------------------------------------------


def dimension(xml: bytes, reference: str) -> bytes:
    """Return sheet XML declaring the dimension ``reference`` (as the program that wrote the cells would)."""
    return re.sub(rb'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{reference}"/>'.encode(), xml, count=1)


def declared_dimension() -> bytes:
    """A valid form whose survey sheet declares the largest dimension, A1:XFD1048576, its last cell formatted.

    Every row down to the last was read 16,384 cells wide: 46 minutes.
    """
    def last_cell(xml: bytes) -> bytes:
        xml = xml.replace(b"</sheetData>", b'<row r="1048576"><c r="XFD1048576" s="0"/></row></sheetData>')
        return dimension(xml, "A1:XFD1048576")

    return in_sheet(workbook(small_form()), "survey", last_cell)


def entity_bomb(levels: int = 9, copies: int = 1, padding: int = 0) -> bytes:
    """A form whose first question's label is ``copies`` references to a nested XML entity of 10**levels "lol"s.

    With 9 levels, the "billion laughs". expat (2.4 and later) stops an expansion over 100 times the
    input read so far past its first 8 MB: ``padding`` bytes of blank space before the sheet's cells
    raise that allowance, as an attacker would.
    """
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, levels + 1))

    def bomb(xml: bytes) -> bytes:
        xml = xml.replace(b"<worksheet ", f"<!DOCTYPE worksheet [{entities}]>".encode() + b" " * padding + b"<worksheet ", 1)
        return xml.replace("<t>您对第1项满意吗？</t>".encode(), f"<t>{f'&lol{levels};' * copies}</t>".encode(), 1)

    return in_sheet(workbook(small_form()), "survey", bomb)


def many_choices(count: int = 20_000) -> bytes:
    """A rated question whose choice list has ``count`` choices (20,000 took 59 s to upload, 16 s a preview)."""
    sheets = small_form(1)
    rows = [sheets["choices"][0], *(["sat", f"c{n}", f"选项{n}", n % 101] for n in range(count))]
    return in_sheet(workbook(sheets), "choices", lambda xml: sheet_xml(rows))


def many_rows(count: int = 3_000) -> bytes:
    """``count`` rated questions, each asked only when the one before was answered 满意."""
    sheets = small_form(count)
    for n, row in enumerate(sheets["survey"][3:-1], start=2):
        row[4] = f"${{q{n - 1}}} = '5'"
    rows = sheets.pop("survey")
    sheets = {"survey": [rows[0]], **sheets}
    return in_sheet(workbook(sheets), "survey", lambda xml: sheet_xml(rows))


def long_relevant(cells: int = 4, length: int = 32_767) -> bytes:
    """``cells`` skip rules of Excel's longest text, all "${": tokenized in 25.6 s before."""
    sheets = small_form(cells + 1)
    for row in sheets["survey"][3:3 + cells]:
        row[4] = ("${" * length)[:length]
    return workbook(sheets)


def wide_sheet(columns: int = 16_384, rows: int = 200) -> bytes:
    """A survey sheet with a named column in each of Excel's 16,384 columns: every row was read that wide."""
    sheets = small_form(rows)
    sheets["survey"][0] += [f"x{n}" for n in range(len(sheets["survey"][0]) + 1, columns + 1)]
    return workbook(sheets)


def far_right_cells(rows: int = 200) -> bytes:
    """A valid form with a stray value in the last column (XFD) of every survey row: each row was read 16,384 wide."""
    sheets = small_form(rows)
    for row in sheets["survey"][1:]:
        row += [None] * (16_383 - len(row)) + ["x"]
    return in_sheet(workbook(sheets), "survey", lambda xml: dimension(xml, f"A1:XFD{rows + 3}"))


def formatted_empty_rows(count: int = 700_000) -> bytes:
    """A valid form whose survey sheet lists ``count`` formatted empty rows below its questions."""
    def rows(xml: bytes) -> bytes:
        last = int(re.findall(rb'<row r="(\d+)"', xml)[-1])
        empty = b"".join(b'<row r="%d" ht="15" customHeight="1"/>' % n for n in range(last + 1, last + 1 + count))
        return dimension(xml.replace(b"</sheetData>", empty + b"</sheetData>"), f"A1:F{last + count}")

    return in_sheet(workbook(small_form()), "survey", rows)


def attribute_bomb(count: int = 600_000) -> bytes:
    """A valid form with one survey cell carrying ``count`` attributes: expat's time on them grows faster than their number."""
    attributes = b" ".join(b'a%d="1"' % n for n in range(count))
    return in_sheet(workbook(small_form()), "survey", lambda xml: xml.replace(b'<c r="A1" ', b'<c r="A1" ' + attributes + b" ", 1))


def many_sheets(count: int = 5_000) -> bytes:
    """A form whose workbook lists the survey sheet ``count`` more times (each entry was read again, every row)."""
    def entries(name: str, content: bytes) -> bytes | None:
        if name != "xl/workbook.xml":
            return None
        first = re.search(rb'<sheet [^>]*/>', content).group(0)
        copies = b"".join(re.sub(rb'name="[^"]*"', b'name="copy%d"' % n, re.sub(rb'sheetId="\d+"', b'sheetId="%d"' % (n + 10), first))
                          for n in range(count))
        return content.replace(b"</sheets>", copies + b"</sheets>")

    return patched(many_rows(300), entries)


def zip_bomb(megabytes: int = 100) -> bytes:
    """A valid form with a picture part that unpacks to ``megabytes`` MB of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(workbook(small_form()))) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for part in source.infolist():
            target.writestr(part, source.read(part.filename))
        target.writestr("xl/media/image1.png", bytes(megabytes * 1024 * 1024))
    return out.getvalue()


def largest_accepted() -> bytes:
    """A form at the limits that passes: 1,997 questions in two languages with a skip rule each, 100 columns,
    5,000 choice rows and 5,000 choices asked (1,250 rated questions of 4 choices, 747 text questions)."""
    sheets = small_form(1_997)
    header = sheets["survey"][0]
    header += ["label::English", "hint::中文", *(f"note{n}" for n in range(100 - len(header) - 2))]
    for n, row in enumerate(sheets["survey"][2:-1], start=1):
        if n > 1:
            row[4] = " or ".join(f"${{q{n - 1}}} = '{code}'" for code in ("5", "3", "1")) if n <= 1_251 else f"${{q{n - 1}}} != ''"
        if n > 1_250:
            row[0], row[5] = "text", None
        row += [f"Question {n}", "请如实回答"]
    sheets["choices"] += [["spare", f"c{n}", f"备用{n}", None] for n in range(5_000 - 4)]
    return workbook(sheets)


def ucl_biomass() -> bytes:
    """The XLSForm project's UCL_Biomass_Plot_Form.xlsx (LibreOffice; declares 1,048,576 rows x 1,024 columns): 85 s of CPU."""
    return UCL.read_bytes()


HOSTILE: dict[str, Callable[[], bytes]] = {
    "citizen-v1.xlsx (bundled, baseline)": CITIZEN.read_bytes,
    "declared dimension A1:XFD1048576": declared_dimension,
    "entity bomb (10^9 x lol)": entity_bomb,
    "entity bomb, 300 MB under expat's limit": lambda: entity_bomb(levels=6, copies=100, padding=12 * 1024 * 1024),
    "20,000 choices": many_choices,
    "3,000 questions": many_rows,
    "4 relevant cells of 32,767 x ${": long_relevant,
    "16,384 named columns x 200 rows": wide_sheet,
    "a value in column XFD of each row": far_right_cells,
    "700,000 formatted empty rows": formatted_empty_rows,
    "600,000 attributes on one cell": attribute_bomb,
    "5,000 more sheet entries": many_sheets,
    "zip bomb (a 100 MB picture)": zip_bomb,
    "largest accepted (1,997 questions)": largest_accepted,
    "UCL_Biomass_Plot_Form.xlsx (pyxform)": ucl_biomass,
}

CHILD = """
import json, sys, time
from survey.questionnaires import check_xlsform
path, name = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
start = time.perf_counter()
checked = check_xlsform(data, name)
seconds = time.perf_counter() - start
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
first = (checked.errors or checked.warnings or [""])[0]
print(json.dumps({"seconds": seconds, "peak": peak / 1024, "ok": checked.ok, "errors": len(checked.errors),
                  "first": str(first)}))
"""


def check_in_child(path: Path, name: str, code: Path, timeout: float) -> dict:
    """Run the upload check on the file in a child process with ``code`` first on its path; return its figures."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), name], cwd=code, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        peak = next(int(line.split()[1]) for line in open(f"/proc/{child.pid}/status") if line.startswith("VmHWM:"))
        child.kill()
        child.communicate()
        return {"seconds": timeout, "peak": peak / 1024, "ok": None, "errors": 0, "first": f"killed after {timeout:.0f} s"}
    if child.returncode != 0:
        return {"seconds": float("nan"), "peak": float("nan"), "ok": None, "errors": 0, "first": err.strip().splitlines()[-1]}
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose code runs the check (default: this one)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a check is killed")
    parser.add_argument("--only", default="", help="comma-separated words: run the files whose name holds one")
    args = parser.parse_args()
    words = [w.strip().lower() for w in args.only.split(",") if w.strip()]
    print(f"the upload check (survey.questionnaires.check_xlsform) in a child process, code from {args.code} "
          f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")
    print(f"  {'workbook':<40} {'size':>8} {'seconds':>8} {'peak MB':>8}  result")
    missed = []
    with tempfile.TemporaryDirectory() as folder:
        for name, build in HOSTILE.items():
            if words and not any(w in name.lower() for w in words):
                continue
            data = build()
            path = Path(folder) / "upload.xlsx"
            path.write_bytes(data)
            figures = check_in_child(path, "upload.xlsx", args.code, args.timeout)
            result = {True: "accepted", False: f"refused ({figures['errors']})", None: "—"}[figures["ok"]]
            first = figures["first"].replace("\n", " ")
            print(f"  {name:<40} {len(data) / 1024:6.0f} KB {figures['seconds']:8.2f} {figures['peak']:8.0f}  "
                  f"{result}: {first[:70]}", flush=True)
            if len(data) > UPLOAD_LIMIT:
                missed.append(f"{name}: {len(data) / 2**20:.1f} MB is over the upload limit (the benchmark's own mistake)")
            if not figures["seconds"] <= TARGET_SECONDS or not figures["peak"] <= TARGET_MB:
                missed.append(f"{name}: {figures['seconds']:.2f} s, {figures['peak']:.0f} MB")
    print(f"target: each check in <= {TARGET_SECONDS:.0f} s and <= {TARGET_MB:.0f} MB peak "
          f"(load average now {os.getloadavg()[0]:.1f}): {'met' if not missed else 'MISSED'}")
    for line in missed:
        print(f"  {line}")


if __name__ == "__main__":
    main()

"""Exports that stream: responses, estimates and the problem list as CSV, XLSX, SPSS .sav and Stata .dta.

A :class:`Table` is a list of :class:`Column` and a generator of plain row tuples read from a
server-side cursor (``yield_per``), never ORM objects per answer, so CSV and XLSX are written in
constant memory whatever the number of rows. The responses table is one row per response and one
column per item: the database packs each response's answers into one text (a correlated
subquery), so a million responses are a million rows to Python, not seventeen million.

Headers: CSV and XLSX carry the variable names (item codes) in the first row and the Chinese labels
in the second (the small tables of estimates and problems carry one Chinese row); .sav and .dta
carry the names as variables and the labels as variable labels. Values are choice codes, or with
``labels`` the choice labels. In .sav and .dta, value labels need numbers: an item whose choice
codes are all whole numbers (ratings 5..0) keeps them, the others (sex M/F, age bands) are
numbered 1..k in the order of the questionnaire, and the file's note says so. A scored or yes-type
item's choices that count for nothing ("不清楚", "不知道": no score, no yes/no) are declared missing:
user-missing values in .sav (SPSS leaves them out of means, as the platform does), extended missing
values .a, .b... in .dta, with their labels. Every response carries its paper serial (for a paper
keyed in: the last part of its submission key) and the account that keyed it; file names carry the
questionnaire's code.

Text that a spreadsheet would run as a formula is neutralised in CSV and XLSX (not in .sav/.dta,
which statistics programs read as data).
"""
from __future__ import annotations

import csv
import io
import keyword
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import IO, Any

from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from analysis.rules import PASS_LINE
from forms import Definition
from survey.localtime import zone
from survey.models import AnalysisRun, Answer, AreaResult, ItemResult, Response, User, Wave
from survey.models.areas import LEVEL_NAMES, Area
from survey.quality import FLAG_NAMES
from survey.questionnaires import definition_of
from survey.reading.dashboard import STATUS_NAMES
from survey.reading.exports_pg import ResponseCopy
from survey.reading.tables import RESPONSE_META, Column, Progress, safe_cell
from survey.reading.wave_changes import comparison
from survey.scope import within

CHANNEL_NAMES = {"qr": "扫码", "school": "学校", "paper": "纸质"}
FORMATS = {
    "csv": "text/csv",  # Werkzeug adds "; charset=utf-8" to text types
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "sav": "application/x-spss-sav",
    "dta": "application/x-stata-dta",
}
WHATS = {"responses": "答卷", "estimates": "社区估计", "problems": "问题清单"}
CHUNK = 5000  # rows fetched from the server-side cursor per round trip
XLSX_MAX_ROWS = 1_048_576
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
UNIT, RECORD = "\x1f", "\x1e"  # separators of a response's packed answers
# Words SPSS or Stata reserve; a variable cannot be called this.
RESERVED = {"all", "and", "by", "eq", "ge", "gt", "le", "lt", "ne", "not", "or", "to", "with", "_all", "_b", "byte",
            "_coef", "_cons", "double", "float", "if", "in", "int", "long", "_n", "_N", "_pi", "_pred", "_rc",
            "_skip", "strl", "using"}
POSITION_NOTE = "取值为选项编码；编码不是数字的题目（{items}）按问卷中的选项顺序编为1..k，见值标签。"


def round_score(value: float) -> float:
    """Return a score to 2 decimals as PostgreSQL rounds ``score::numeric`` (15 digits, halves away from zero).

    >>> round_score(73.125), round_score(0.285), round_score(80.0), round_score(200 / 3)
    (73.13, 0.29, 80.0, 66.67)
    """
    return float(Decimal(f"{value:.15g}").quantize(Decimal("0.01"), ROUND_HALF_UP))


def paper_serial(channel: str, submission_key: str | None) -> str | None:
    """Return the serial of a paper keyed in (its submission key is ``paper:<wave>:<area>:<SERIAL>``), else None.

    >>> paper_serial("paper", "paper:3:17:D01S1C1-3-0007"), paper_serial("qr", "v2.x.y")
    ('D01S1C1-3-0007', None)
    """
    if channel != "paper" or not submission_key or not submission_key.startswith("paper:"):
        return None
    parts = submission_key.split(":")
    return (parts[3] or None) if len(parts) > 3 else None


def variable_name(code: str, taken: set[str] | None = None) -> str:
    """Return ``code`` as a name SPSS and Stata accept (letter first, letters/digits/_, <= 32), unique in ``taken``.

    >>> variable_name("q01"), variable_name("1st item"), variable_name("in"), variable_name("x", {"x"})
    ('q01', 'v1st_item', 'in_', 'x_2')
    """
    name = re.sub(r"[^A-Za-z0-9_]", "_", code)[:30] or "v"
    if not name[0].isalpha():
        name = "v" + name
    if name.lower() in RESERVED or keyword.iskeyword(name):
        name += "_"
    base, n = name, 1
    while taken is not None and name in taken:
        n += 1
        name = f"{base}_{n}"
    if taken is not None:
        taken.add(name)
    return name


@dataclass
class Table:
    """What an export writes: columns, how many rows (known up front, for progress), and the rows."""

    what: str
    title: str
    columns: list[Column]
    total: int
    rows: Callable[[], Iterator[tuple]]
    code_row: bool = True  # CSV/XLSX: a row of variable names above the Chinese labels
    notes: list[str] = field(default_factory=list)
    # PostgreSQL: the same rows written by the database (exports_pg), for CSV, .sav and .dta.
    copy: ResponseCopy | None = None

    @property
    def position_coded(self) -> list[str]:
        return [c.name for c in self.columns if c.type == "choice" and not c.numeric_codes]


# --- Tables -------------------------------------------------------------------------------------




def response_columns(definitions: Sequence[Definition]) -> tuple[list[Column], list[str]]:
    """Return the columns of the responses table and the item codes in column order.

    ``definitions`` are the versions a wave fields, newest first: the newest gives the order, an
    item only an older version asked is appended, and a choice only an older version offered is kept.
    """
    taken = {c.name for c in RESPONSE_META}
    codes: list[str] = []
    merged: dict[str, tuple] = {}
    for definition in definitions:
        for item in definition.stored_items:
            if item.code not in merged:
                codes.append(item.code)
                merged[item.code] = (item, list(item.choices))
            else:
                known = {c.code for c in merged[item.code][1]}
                merged[item.code][1].extend(c for c in item.choices if c.code not in known)
    columns = list(RESPONSE_META)
    for code in codes:
        item, choices = merged[code]
        # Several choices, numbers, dates...: written as answered ("a c", "25"), in a text column.
        kind = "choice" if item.handler.export_kind == "choice" else "text"
        missing = tuple(c.code for c in choices if (item.handler.scored or item.handler.rate) and item.handler.value(c) is None)
        columns.append(Column(variable_name(code, taken), item.label or code, kind, tuple(choices) if kind == "choice" else (),
                              missing if kind == "choice" else ()))
    return columns, codes


def response_table(
    session: Session, area: Area, wave_id: int, definitions: Sequence[Definition], version_ids: list[int],
    chunk: int = CHUNK, tz: tzinfo | None = None, copy: bool = True,
) -> Table:
    """Return the responses of a wave to one questionnaire in the area's subtree: a row each, a column per item.

    The rows are those stored when this is called (up to the highest response id then), so the
    count shown as progress stays right while new answers arrive. On PostgreSQL (unless ``copy`` is
    False) CSV, .sav and .dta read them with COPY (:mod:`survey.reading.exports_pg`), XLSX from ``rows``.
    """
    columns, codes = response_columns(definitions)
    scope = (Response.wave_id == wave_id, Response.questionnaire_version_id.in_(version_ids), within(area))
    total, last_id = session.execute(
        select(func.count(Response.id), func.max(Response.id)).join(Area, Area.id == Response.area_id).where(*scope)
    ).one()
    tz = tz or zone()
    street = aliased(Area)
    keyed_by = aliased(User)
    flags = list(FLAG_NAMES.items())
    # Each response's answers packed into one text (item, unit separator, value; record separator
    # between answers) by the database, so a response is one row and answers never become objects.
    # Neither separator can be stored: control characters are refused at input.
    packed = (
        select(func.aggregate_strings(Answer.item_code + UNIT + func.coalesce(Answer.text, Answer.value, Answer.choice_code, ""), RECORD))
        .where(Answer.response_id == Response.id)
        .scalar_subquery()
    )
    query = (
        select(Response.id, Area.code, Area.name, street.name, Response.channel, Response.submitted_at,
               Response.duration_s, Response.score, *(getattr(Response, f) for f, _ in flags), Response.submission_key,
               keyed_by.username, packed)
        .join(Area, Area.id == Response.area_id)
        .outerjoin(street, street.id == Area.parent_id)
        .outerjoin(keyed_by, keyed_by.id == Response.entered_by_id)
        .where(*scope, Response.id <= (last_id or 0))
        .order_by(Response.id)
        .execution_options(yield_per=chunk)
    )
    position = {code: n for n, code in enumerate(codes, start=len(RESPONSE_META))}
    width = len(RESPONSE_META) + len(codes)
    first_flag = 8
    key_at = first_flag + len(flags)
    answers_at = key_at + 2

    def rows() -> Iterator[tuple]:
        interned: dict[str, str] = {}
        intern = interned.setdefault
        channels = dict(CHANNEL_NAMES)
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL jit = off")  # JIT compiling costs more than it saves here
        with connection.execute(query) as result:
            for r in result:
                row: list[Any] = [None] * width
                row[0] = r[0]
                row[1] = intern(r[1], r[1])
                row[2] = intern(r[2], r[2])
                row[3] = intern(r[3], r[3]) if r[3] is not None else None
                row[4] = channels.get(r[4], r[4])
                row[5] = r[5].astimezone(tz).replace(tzinfo=None) if r[5] is not None else None
                row[6] = round(r[6]) if r[6] is not None else None
                row[7] = round_score(r[7]) if r[7] is not None else None
                if any(r[first_flag:key_at]):
                    row[8] = "、".join(name for (_, name), on in zip(flags, r[first_flag:key_at], strict=True) if on)
                row[9] = paper_serial(r[4], r[key_at])
                row[10] = r[key_at + 1] or None
                if r[answers_at]:
                    for answer in r[answers_at].split(RECORD):
                        code, _, value = answer.partition(UNIT)
                        column = position.get(code)
                        # An item answered twice (never by a submission): its greatest answer, as exports_pg.
                        if column is not None and value and (row[column] is None or value > row[column]):
                            row[column] = value
                yield tuple(row)

    notes: list[str] = []
    fast = None
    zone_key = getattr(tz, "key", None)  # a ZoneInfo's name, which PostgreSQL takes too
    if copy and session.get_bind().dialect.name == "postgresql" and zone_key:
        first_id = session.scalar(select(func.min(Response.id)).join(Area, Area.id == Response.area_id).where(*scope))
        # Every response (of any wave or questionnaire) in the id range: what grouping all answers there reads.
        span = session.execute(select(func.count()).select_from(Response)
                               .where(Response.id.between(first_id or 0, last_id or 0))).scalar_one()
        fast = ResponseCopy(session, columns, codes, wave_id, list(version_ids), area.path, first_id or 0, last_id or 0,
                            zone_key, dict(CHANNEL_NAMES), grouped=3 * total >= span)
    table = Table("responses", "答卷", columns, total, rows, code_row=True, notes=notes, copy=fast)
    if table.position_coded:
        notes.append(POSITION_NOTE.format(items="、".join(table.position_coded)))
    return table


ESTIMATE_COLUMNS = [
    Column("area_code", "区域编码"), Column("area", "区域"), Column("level", "层级"), Column("n", "样本量", "int"),
    Column("estimate", "满意度", "float"), Column("se", "标准误", "float"), Column("ci_low", "95%下限", "float"),
    Column("ci_high", "95%上限", "float"), Column("eb_estimate", "修正估计", "float"),
    Column("prob_below_80", "低于80分概率", "float"), Column("status", "状态"), Column("points_at_stake", "失分", "float"),
    Column("df", "设计自由度", "float"), Column("variance_warning", "方差提示"),
    Column("answers_to_decide", "判定状态还需答卷（80%把握）", "int"),
]
# variance_warning as the export writes it (analysis.estimates: why a variance is unusable)
VARIANCE_WARNING_NAMES = {"single_psu": "仅一个抽样单元", "zero_variance": "答卷完全相同"}


# The change since an earlier wave (survey.reading.wave_changes); empty when there is no earlier run.
CHANGE_COLUMNS = [
    Column("compare_wave", "对比轮次"), Column("change_basis", "变化比较依据"),
    Column("estimate_before", "对比轮估计", "float"), Column("estimate_after", "本轮估计（比较用）", "float"),
    Column("change", "变化（本轮减对比轮）", "float"), Column("change_ci_low", "变化95%下限", "float"),
    Column("change_ci_high", "变化95%上限", "float"), Column("change_p", "变化p值", "float"),
    Column("change_q", "变化q值（BH校正）", "float"), Column("change_significant", "变化显著（FDR 5%）"),
]


def _round(value, digits: int):
    return None if value is None else round(value, digits)


def change_values(changes, area_id: int) -> tuple:
    """Return the CHANGE_COLUMNS values of one area (all empty without a comparison or a result)."""
    found = changes.areas.get(area_id) if changes is not None else None
    if found is None:
        return (changes.previous.wave.name if changes is not None else None,) + (None,) * (len(CHANGE_COLUMNS) - 1)
    return (changes.previous.wave.name, found.basis_name, round(found.before, 3), round(found.after, 3),
            round(found.change, 3), _round(_finite(found.ci_low), 3), _round(_finite(found.ci_high), 3),
            _round(found.p_value, 6), _round(found.q_value, 6), "是" if found.significant else "否")


def _finite(value: float) -> float | None:
    return value if value == value else None


def estimate_table(session: Session, run_id: int, area: Area, chunk: int = CHUNK, changes=None) -> Table:
    """Return every community of the area with its estimate and its change, most points at stake first.

    ``changes`` is the :class:`survey.reading.wave_changes.Comparison` whose community changes fill the
    change columns (empty when None).
    """
    scope = (AreaResult.run_id == run_id, AreaResult.level == "community", within(area))
    total = session.scalar(select(func.count()).select_from(AreaResult).join(Area, Area.id == AreaResult.area_id).where(*scope))
    query = (
        select(Area.code, Area.name, Area.level, AreaResult.n, AreaResult.estimate, AreaResult.se, AreaResult.ci_low,
               AreaResult.ci_high, AreaResult.eb_estimate, AreaResult.prob_below_80, AreaResult.status,
               AreaResult.points_at_stake, AreaResult.df, AreaResult.variance_warning, AreaResult.answers_to_decide,
               AreaResult.area_id)
        .join(Area, Area.id == AreaResult.area_id)
        .where(*scope)
        .order_by(AreaResult.points_at_stake.desc(), Area.code)
    )

    def rows() -> Iterator[tuple]:
        result = session.connection().execute(query.execution_options(yield_per=chunk))
        for code, name, level, n, est, se, low, high, eb, prob, status, stake, df, warning, decide, area_id in result:
            yield (code, name, LEVEL_NAMES.get(level, level), n, round(est, 3), round(se, 4), _round(low, 2),
                   _round(high, 2), _round(eb, 2), _round(prob, 4), STATUS_NAMES.get(status or "", ""), _round(stake, 4),
                   _round(df, 1), VARIANCE_WARNING_NAMES.get(warning or "", warning or ""), decide,
                   *change_values(changes, area_id))

    return Table("estimates", "社区估计", ESTIMATE_COLUMNS + CHANGE_COLUMNS, total or 0, rows, code_row=False)


PROBLEM_COLUMNS = [
    Column("seq", "序号", "int"), Column("community_code", "社区编码"), Column("community", "社区"), Column("street", "街道"),
    Column("topic", "分项"), Column("item", "题目编码"), Column("estimate", "得分", "float"),
    Column("ci_low", "95%区间下限", "float"), Column("ci_high", "95%区间上限", "float"), Column("n", "样本量", "int"),
]


def problem_table(session: Session, run_id: int, area: Area, definition: Definition, chunk: int = CHUNK) -> Table:
    """Return the community x topic pairs under 80 in the area, lowest first (the page's order)."""
    labels = {i.code: i.short_label for i in definition.scored_items}
    street = aliased(Area)
    scope = (ItemResult.run_id == run_id, Area.level == "community", within(area),
             ItemResult.item_code.in_(list(labels)), ItemResult.estimate < PASS_LINE)
    total = session.scalar(select(func.count()).select_from(ItemResult).join(Area, Area.id == ItemResult.area_id).where(*scope))
    query = (
        select(Area.code, Area.name, street.name, ItemResult.item_code, ItemResult.estimate, ItemResult.ci_low,
               ItemResult.ci_high, ItemResult.n)
        .join(Area, Area.id == ItemResult.area_id)
        .outerjoin(street, street.id == Area.parent_id)
        .where(*scope)
        .order_by(ItemResult.estimate, Area.code)
    )

    def rows() -> Iterator[tuple]:
        result = session.connection().execute(query.execution_options(yield_per=chunk))
        for seq, (code, name, street_name, item, est, low, high, n) in enumerate(result, start=1):
            yield (seq, code, name, street_name or "", labels[item], item, round(est, 2), _round(low, 2), _round(high, 2), n)

    return Table("problems", "问题清单", PROBLEM_COLUMNS, total or 0, rows, code_row=False)


# --- Writers ------------------------------------------------------------------------------------

def _cell_maps(table: Table, labels: bool, spreadsheet: bool) -> list[dict | None]:
    """Return, per column, how a stored choice code is written (None: as it is)."""
    maps: list[dict | None] = []
    for column in table.columns:
        if column.type != "choice":
            maps.append(None)
        elif labels:
            maps.append({c.code: c.label for c in column.choices})
        elif spreadsheet:
            maps.append({c.code: int(c.code) for c in column.choices} if column.numeric_codes else None)
        else:
            maps.append(column.value_numbers())
    return maps


def _spreadsheet_rows(table: Table, labels: bool, progress: Progress | None) -> Iterator[list]:
    maps = _cell_maps(table, labels, spreadsheet=True)
    done = 0
    for row in table.rows():
        yield [safe_cell(m.get(v, v) if m is not None and v is not None else v) for m, v in zip(maps, row, strict=True)]
        done += 1
        if progress is not None and done % 1000 == 0:
            progress(done)
    if progress is not None:
        progress(done)


def _header_rows(table: Table) -> list[list[str]]:
    """Return the CSV/XLSX header rows, neutralised as every other cell (a question's label is the city's text)."""
    labels = [safe_cell(c.label) for c in table.columns]
    return [[safe_cell(c.name) for c in table.columns], labels] if table.code_row else [labels]


def csv_chunks(table: Table, labels: bool = False, progress: Progress | None = None, rows_per_chunk: int = 2000) -> Iterator[bytes]:
    """Yield UTF-8 CSV with a byte-order mark (so Excel and WPS read the Chinese), a few thousand rows at a time."""
    out = io.StringIO()
    writer = csv.writer(out)
    out.write("\ufeff")
    writer.writerows(_header_rows(table))
    if table.copy is not None:
        yield out.getvalue().encode("utf-8")
        yield from table.copy.csv(labels, progress)
        return
    n = 0
    for row in _spreadsheet_rows(table, labels, progress):
        writer.writerow(["" if v is None else v.strftime(TIME_FORMAT) if isinstance(v, datetime) else v for v in row])
        n += 1
        if n % rows_per_chunk == 0:
            yield out.getvalue().encode("utf-8")
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode("utf-8")


def write_csv(table: Table, out: IO[bytes], labels: bool = False, progress: Progress | None = None) -> None:
    for chunk in csv_chunks(table, labels, progress):
        out.write(chunk)


def write_xlsx(table: Table, out: str | Path | IO[bytes], labels: bool = False, progress: Progress | None = None) -> None:
    """Write an XLSX in openpyxl's write-only mode; past a sheet's million rows a new sheet begins."""
    workbook = Workbook(write_only=True)
    headers = _header_rows(table)
    sheets = 0
    used = XLSX_MAX_ROWS
    sheet = None
    for row in _spreadsheet_rows(table, labels, progress):
        if used >= XLSX_MAX_ROWS or sheet is None:  # (None only before the first row, and used starts full)
            sheets += 1
            sheet = workbook.create_sheet(table.title[:28] + (f"{sheets}" if sheets > 1 else ""))
            for header in headers:
                sheet.append(header)
            used = len(headers)
        sheet.append(row)
        used += 1
    if sheet is None:
        sheet = workbook.create_sheet(table.title[:31])
        for header in headers:
            sheet.append(header)
    workbook.save(out)


def to_frame(table: Table, labels: bool = False, progress: Progress | None = None):
    """Return the table as a pandas DataFrame for pyreadstat, and the value labels by variable.

    Columns are filled in preallocated arrays (numbers as float64, repeated text shared), so the
    frame costs about 8 bytes a cell plus the distinct texts.
    """
    import numpy as np
    import pandas as pd

    if table.copy is not None:
        return table.copy.frame(labels, progress), value_labels(table, labels)
    maps = _cell_maps(table, labels, spreadsheet=False)
    n = table.total
    arrays = []
    for column in table.columns:
        if column.type in ("int", "float") or (column.type == "choice" and not labels):
            arrays.append(np.full(n, np.nan))
        elif column.type == "time":
            arrays.append(np.full(n, np.datetime64("NaT"), dtype="datetime64[s]"))
        else:
            arrays.append(np.full(n, None, dtype=object))
    shared: dict[str, str] = {}
    filled = 0
    for i, row in enumerate(table.rows()):
        if i >= n:
            break
        for array, mapping, value in zip(arrays, maps, row, strict=True):
            if value is None:
                continue
            if mapping is not None:
                value = mapping.get(value, value)
            if array.dtype == object:
                array[i] = shared.setdefault(value, value) if isinstance(value, str) and len(value) < 40 else value
            elif isinstance(value, str):
                continue  # a code the questionnaire does not list: missing in a numeric variable
            else:
                array[i] = value
        filled = i + 1
        if progress is not None and filled % 1000 == 0:
            progress(filled)
    if progress is not None:
        progress(filled)
    frame = pd.DataFrame({c.name: a[:filled].astype("datetime64[ns]") if c.type == "time" else a[:filled]
                          for c, a in zip(table.columns, arrays, strict=True)}, copy=False)
    return frame, value_labels(table, labels)


def value_labels(table: Table, labels: bool) -> dict[str, dict[float, str]]:
    """Return the value labels of the choice columns in .sav/.dta (none when the labels are written)."""
    found = {}
    if not labels:
        for column in table.columns:
            if column.type == "choice":
                numbers = column.value_numbers()
                found[column.name] = {float(numbers[c.code]): c.label for c in column.choices}
    return found


def note_lines(text: str, width: int = 80) -> list[str]:
    """Return ``text`` cut into lines of at most ``width`` UTF-8 bytes (an SPSS document line).

    >>> [len(line.encode()) for line in note_lines("编码" * 20)]
    [78, 42]
    """
    lines, line = [], ""
    for char in text:
        if len((line + char).encode("utf-8")) > width:
            lines.append(line)
            line = ""
        line += char
    return lines + ([line] if line else [])


MISSING_NOTE = "“不清楚/不知道”等不计分的选项（{items}）在 .sav 中声明为用户缺失值、在 .dta 中为扩展缺失值（.a、.b…），不参与均值。"
SPSS_MISSING_VALUES = 3  # discrete user-missing values SPSS keeps per variable


def sav_missing(table: Table) -> dict[str, list]:
    """Return the user-missing values of each choice column of a .sav: its don't-know codes' numbers.

    SPSS keeps up to three discrete values, or one range: more codes become the range from the
    least to the greatest when no counted code lies within it (else the first three).

    >>> from forms.definition import Choice
    >>> column = Column("q01", "满意度", "choice", (Choice("5", "满意", 100), Choice("0", "不清楚", None)), ("0",))
    >>> sav_missing(Table("responses", "答卷", [column], 0, lambda: iter(())))
    {'q01': [0.0]}
    """
    found: dict[str, list] = {}
    for column in table.columns:
        if column.type != "choice" or not column.missing:
            continue
        numbers = column.value_numbers()
        values = sorted(float(numbers[code]) for code in column.missing)
        if len(values) > SPSS_MISSING_VALUES:
            low, high = values[0], values[-1]
            counted = [v for code, v in numbers.items() if code not in column.missing]
            if not any(low <= v <= high for v in counted):
                found[column.name] = [{"lo": low, "hi": high}]
                continue
            values = values[:SPSS_MISSING_VALUES]
        found[column.name] = values
    return found


def dta_missing(table: Table, frame, value_labels: dict[str, dict]) -> dict[str, list[str]]:
    """Turn don't-know codes into Stata's extended missing values (.a, .b, ...) in ``frame``, in place.

    Returns the letters of each column, and moves the codes' value labels onto their letters.
    """
    import numpy as np

    found: dict[str, list[str]] = {}
    for column in table.columns:
        if column.type != "choice" or not column.missing or column.name not in value_labels:
            continue
        numbers = column.value_numbers()
        values = frame[column.name].to_numpy(dtype=object, copy=True)
        letters = []
        for letter, code in zip("abcdefghijklmnopqrstuvwxyz", column.missing):
            number = float(numbers[code])
            values[np.array([v == number for v in values], dtype=bool)] = letter
            label = value_labels[column.name].pop(number, None)
            if label is not None:
                value_labels[column.name][letter] = label
            letters.append(letter)
        frame[column.name] = values
        found[column.name] = letters
    return found


def write_sav(table: Table, path: str | Path, labels: bool = False, progress: Progress | None = None) -> None:
    """Write an SPSS .sav with variable labels (the questions) and value labels (the choices).

    Don't-know choices are user-missing (:func:`sav_missing`), so SPSS leaves them out of means.
    pyreadstat writes a whole DataFrame (it has no append), so this holds the table in memory:
    about 8 bytes a cell, see :func:`to_frame`.
    """
    import pyreadstat

    frame, value_labels = to_frame(table, labels, progress)
    missing = {} if labels else sav_missing(table)
    notes = [] if labels else list(table.notes)
    if missing:
        notes.append(MISSING_NOTE.format(items="、".join(missing)))
    pyreadstat.write_sav(
        frame, str(path), file_label=table.title, column_labels={c.name: c.label for c in table.columns},
        variable_value_labels=value_labels or None, note=[line for n in notes for line in note_lines(n)] or None,
        variable_measure={c.name: "nominal" for c in table.columns if c.type == "choice" and not c.numeric_codes} or None,
        missing_ranges=missing or None,
    )


def write_dta(table: Table, path: str | Path, labels: bool = False, progress: Progress | None = None) -> None:
    """Write a Stata .dta (version 15, UTF-8) with variable and value labels; labels longer than Stata's 80 are cut.

    Don't-know choices are extended missing values (.a, .b, ...: :func:`dta_missing`), labelled.
    """
    import pyreadstat

    frame, value_labels = to_frame(table, labels, progress)
    missing = {} if labels else dta_missing(table, frame, value_labels)
    pyreadstat.write_dta(
        frame, str(path), file_label=table.title[:80], column_labels={c.name: c.label[:80] for c in table.columns},
        variable_value_labels=value_labels or None, version=15, missing_user_values=missing or None,
    )


def write(table: Table, fmt: str, path: str | Path, labels: bool = False, progress: Progress | None = None) -> None:
    """Write ``table`` to the file ``path`` in ``fmt`` (csv, xlsx, sav, dta)."""
    if fmt == "csv":
        with open(path, "wb") as out:
            write_csv(table, out, labels, progress)
    elif fmt == "xlsx":
        write_xlsx(table, path, labels, progress)
    elif fmt == "sav":
        write_sav(table, path, labels, progress)
    elif fmt == "dta":
        write_dta(table, path, labels, progress)
    else:
        raise ValueError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")


def export_filename(what: str, area: Area, wave_name: str, fmt: str, labels: bool = False, questionnaire: str = "") -> str:
    """Return e.g. 答卷-citizen-东城区-2026年第一轮.csv: the questionnaire's code, 选项文字 when the choice labels are written."""
    return f"{WHATS[what]}-{questionnaire + '-' if questionnaire else ''}{area.name}-{wave_name}{'-选项文字' if labels else ''}.{fmt}"



def table_for(session: Session, what: str, area: Area, wave_id: int, questionnaire_code: str = "citizen",
              run_id: int | None = None, chunk: int = CHUNK, compare_wave_id: int | None = None,
              copy: bool = True) -> Table:
    """Return the table ``what`` (responses, estimates, problems) of a wave in the area's subtree.

    Estimates and problems read the stored analysis ``run_id``; responses read the answers.
    Estimates carry the change since the previous wave, or since ``compare_wave_id``. ``copy=False``
    keeps the responses off PostgreSQL's COPY path (the generic path, for comparing the two).
    """
    wave = session.get(Wave, wave_id)
    if wave is None:
        raise LookupError(f"no wave with id {wave_id}")
    versions = sorted((v for v in wave.versions if v.questionnaire.code == questionnaire_code),
                      key=lambda v: v.version, reverse=True)
    if not versions:
        raise LookupError(f"wave {wave.name!r} fields no questionnaire {questionnaire_code!r}")
    definitions = [definition_of(v) for v in versions]
    if what == "responses":
        return response_table(session, area, wave_id, definitions, [v.id for v in versions], chunk, copy=copy)
    if run_id is None:
        raise LookupError(f"no analysis of wave {wave.name!r} yet")
    if what == "estimates":
        run = session.get(AnalysisRun, run_id)
        if run is None:
            raise LookupError(f"no analysis run with id {run_id}")
        changes = comparison(session, run, compare_wave_id)
        return estimate_table(session, run_id, area, chunk, changes)
    if what == "problems":
        return problem_table(session, run_id, area, definitions[0], chunk)
    raise LookupError(f"unknown export {what!r} (known: {', '.join(WHATS)})")

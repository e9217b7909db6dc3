"""The responses export on PostgreSQL, written by the database: ``COPY (SELECT ...) TO STDOUT WITH CSV``.

The generic path (:func:`survey.reading.exports.response_table`) turns every response into a Python
tuple and every cell into a CSV field or an array element; at a million responses that is most of
the time. Here PostgreSQL does it: one aggregate with a ``FILTER`` per item over each response's
answers pivots them into columns, ``CASE`` maps choice codes to numbers or labels, times and
numbers are formatted as the generic path formats them and formulas are neutralised, and ``COPY``
writes the CSV lines. Python adds the byte-order mark and the header rows, turns each line's end into
the CRLF :mod:`csv` writes, and counts the lines (a line is a row: ``COPY`` sends one message a row)
for progress. For .sav and .dta the same query writes numbers, and ``pandas.read_csv`` reads the
stream into the DataFrame pyreadstat needs, text that repeats (communities, channels) as
categories so each distinct text is held once.

Cells are the generic path's (``tests/survey/test_exports_copy.py`` compares the two on the same
data). Two rules make that exact: a response's score is rounded as PostgreSQL rounds
``score::numeric`` (15 significant digits, halves away from zero; the generic path does the same),
and an item answered twice in one response (which submissions never store, but a repair by hand
could) shows the greatest of its non-empty answers in code point order on both paths.
"""
from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from survey.db import driver_connection
from survey.quality import FLAG_NAMES
from survey.reading.tables import RESPONSE_META, Column, Progress, safe_cell

ROWS_PER_CHUNK = 2000  # lines joined into one write / one progress report
FORMULA_FIRST = "(61, 43, 45, 64, 9, 13)"  # tables.FORMULA_STARTS: = + - @ tab CR


def _like_prefix(text: str) -> str:
    r"""Return a LIKE pattern for the texts that start with ``text``.

    >>> _like_prefix("/1/"), _like_prefix("a_b%\\")
    ('/1/%', 'a\\_b\\%\\\\%')
    """
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class _Params:
    """Collects the values of a query's placeholders (bound by psycopg on the client, as COPY needs)."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def __call__(self, value) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"%({name})s"


@dataclass
class ResponseCopy:
    """The responses of a wave to one questionnaire in an area's subtree, up to ``last_id``, read by COPY."""

    session: Session
    columns: Sequence[Column]  # exports.RESPONSE_META then one column per item
    codes: Sequence[str]  # the item of each item column
    wave_id: int
    version_ids: list[int]
    path: str  # the area's materialized path: its subtree is every area whose path starts with it
    first_id: int
    last_id: int
    tz_name: str
    channels: dict[str, str]
    # True: group all answers in the id range (a third or more of them are in scope); False: look up
    # each response's answers (a district, a community).
    grouped: bool = True

    # --- The query ---------------------------------------------------------------------------

    def query(self, spreadsheet: bool, labels: bool) -> tuple[str, dict]:
        """Return the SELECT and its parameters.

        ``spreadsheet``: cells as CSV and XLSX write them (numeric choice codes as whole numbers,
        formulas neutralised, times as text); otherwise as :func:`exports.to_frame` holds them
        (choice codes as their numbers, times as seconds since 1970 in local time).
        """
        p = _Params()

        def safe(e: str) -> str:
            return f"CASE WHEN ascii({e}) IN {FORMULA_FIRST} THEN '''' || {e} ELSE {e} END" if spreadsheet else e

        def text(e: str) -> str:
            return f"nullif({safe(e)}, '')"  # COPY quotes an empty text ("") but writes NULL as nothing

        # What a response has, computed below the sort (in the parallel workers) once per row.
        channel = "CASE r.channel " + " ".join(f"WHEN {p(k)} THEN {p(v)}" for k, v in self.channels.items()) + " ELSE r.channel END"
        flags = "concat_ws('、', " + ", ".join(f"CASE WHEN r.{f} THEN {p(name)} END" for f, name in FLAG_NAMES.items()) + ")"
        local = f"r.submitted_at AT TIME ZONE {p(self.tz_name)}"
        if spreadsheet:
            time = f"to_char({local}, 'YYYY-MM-DD HH24:MI:SS')"
        else:
            time = f"floor(extract(epoch FROM {local}))::bigint"
        # A paper's serial is the fourth part of its submission key, paper:<wave>:<area>:<SERIAL> (exports.paper_serial).
        serial = (f"CASE WHEN r.channel = 'paper' AND r.submission_key LIKE {p('paper:%')} "
                  "THEN split_part(r.submission_key, ':', 4) END")
        inner = (f"{channel} AS c_channel, {time} AS c_time, round(r.duration_s)::bigint AS c_duration, "
                 f"round(r.score::numeric, 2) AS c_score, {flags} AS c_flags, {serial} AS c_serial, u.username AS c_entered")
        score = "r.c_score"
        if spreadsheet:  # Python writes a float: 80.0, 73.3, 73.33
            score = f"CASE WHEN {score} = trunc({score}) THEN trunc({score})::text || '.0' ELSE trim_scale({score})::text END"
        cells = ["r.id", text("r.area_code"), text("r.area_name"), text("r.street_name"), text("r.c_channel"), "r.c_time",
                 "r.c_duration", score, text("r.c_flags"), text("r.c_serial"), text("r.c_entered")]
        assert len(cells) == len(RESPONSE_META)
        pivot = []
        for n, (column, code) in enumerate(zip(self.columns[len(RESPONSE_META):], self.codes, strict=True)):
            # An item answered twice: its greatest answer in code point order, as the generic path keeps it
            # (an empty answer is the least, and is written as none).
            pivot.append(f'max(coalesce(x.text, x.value, x.choice_code) COLLATE "C") FILTER (WHERE x.item_code = {p(code)}) AS v{n}')
            value = f"p.v{n}"  # '' as NULL: text() and the CASEs below end in nullif or NULL
            if column.type != "choice":
                cells.append(text(value))
                continue
            if labels:
                mapping = {c.code: c.label for c in column.choices}
            elif spreadsheet:
                mapping = {c.code: str(int(c.code)) for c in column.choices} if column.numeric_codes else {}
            else:
                numbers = column.value_numbers()
                cells.append("CASE " + value + " " + " ".join(f"WHEN {p(k)} THEN {int(v)}" for k, v in numbers.items())
                             + " ELSE NULL END" if numbers else "NULL")
                continue
            # A code written as it is needs no WHEN: the ELSE writes it.
            if spreadsheet:
                mapping = {k: str(safe_cell(v)) for k, v in mapping.items() if str(safe_cell(v)) != safe_cell(k)}
            else:
                mapping = {k: v for k, v in mapping.items() if v != k}
            if mapping:
                cells.append(f"nullif(CASE {value} " + " ".join(f"WHEN {p(k)} THEN {p(v)}" for k, v in mapping.items())
                             + f" ELSE {safe(value)} END, '')")
            else:
                cells.append(text(value))
        # The responses in scope, sorted by id (narrow rows), then their answers: for most of the
        # responses in the id range, merged with all answers there grouped in the answers' index
        # order (no sort of the wide rows, no index lookup per response); for a few, looked up.
        if self.grouped:
            answers = f"""LEFT JOIN (SELECT x.response_id, {', '.join(pivot) or 'NULL'} FROM answer x
                       WHERE x.response_id BETWEEN {p(self.first_id)} AND {p(self.last_id)}
                       GROUP BY x.response_id) p ON p.response_id = r.id"""
        else:
            answers = f"""LEFT JOIN LATERAL (SELECT {', '.join(pivot) or 'NULL'} FROM answer x
                       WHERE x.response_id = r.id) p ON true"""
        sql = f"""
            SELECT {', '.join(cells)}
            FROM (SELECT r.id, {inner}, a.code AS area_code, a.name AS area_name, s.name AS street_name
                  FROM response r
                  JOIN area a ON a.id = r.area_id
                  LEFT JOIN area s ON s.id = a.parent_id
                  LEFT JOIN staff_user u ON u.id = r.entered_by_id
                  WHERE r.wave_id = {p(self.wave_id)} AND r.questionnaire_version_id = ANY({p(self.version_ids)})
                    AND a.path LIKE {p(_like_prefix(self.path))} AND r.id <= {p(self.last_id)}
                  ORDER BY r.id) r
            {answers}
            ORDER BY r.id"""
        return sql, p.values

    def _lines(self, spreadsheet: bool, labels: bool, progress: Progress | None) -> Iterator[bytes]:
        """Yield the CSV lines (CRLF ends), a few thousand joined at a time, and report the rows done."""
        sql, params = self.query(spreadsheet, labels)
        self.session.connection().exec_driver_sql("SET LOCAL jit = off")  # JIT compiling costs more than it saves here
        driver = driver_connection(self.session)  # the same connection, in the same transaction
        done = 0
        batch: list = []
        fix = _unquote_end_marker if spreadsheet else (lambda chunk: chunk)
        with driver.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy:
            for line in copy:
                batch.append(line[:-1])  # one message a row, ending in \n
                if len(batch) == ROWS_PER_CHUNK:
                    done += len(batch)
                    yield fix(b"\r\n".join(batch) + b"\r\n")
                    batch.clear()
                    if progress is not None:
                        progress(done)
        done += len(batch)
        if batch:
            yield fix(b"\r\n".join(batch) + b"\r\n")
        if progress is not None:
            progress(done)

    # --- Writers -----------------------------------------------------------------------------

    def csv(self, labels: bool, progress: Progress | None = None) -> Iterator[bytes]:
        """Yield the rows as UTF-8 CSV (no header), as :func:`exports.csv_chunks` writes them."""
        return self._lines(True, labels, progress)

    def frame(self, labels: bool, progress: Progress | None = None):
        """Return the rows as the DataFrame :func:`exports.to_frame` builds (its columns, dtypes and values)."""
        import numpy as np
        import pandas as pd

        names = [c.name for c in self.columns]
        numeric = {c.name for c in self.columns if c.type in ("int", "float") or (c.type == "choice" and not labels)}
        times = {c.name for c in self.columns if c.type == "time"}
        # Answers in words are mostly distinct; communities, channels, flags and choice labels repeat.
        words = {c.name for c in self.columns[len(RESPONSE_META):] if c.type != "choice"}
        dtype = {name: "float64" if name in numeric or name in times else str if name in words else "category"
                 for name in names}
        stream = _Reader(self._lines(False, labels, progress))
        frame = pd.read_csv(stream, header=None, names=names, dtype=dtype, keep_default_na=False, na_values=[""],
                            encoding="utf-8", engine="c")
        columns = {}
        for name in names:
            series = frame.pop(name)
            if name in times:
                seconds = series.to_numpy()
                value = np.full(len(seconds), np.datetime64("NaT"), dtype="datetime64[s]")
                known = ~np.isnan(seconds)
                value[known] = seconds[known].astype("int64").astype("datetime64[s]")
                columns[name] = value.astype("datetime64[ns]")
            elif name in numeric:
                columns[name] = series.to_numpy()
            else:
                # Text: None where missing; a category's rows share its one string.
                value = series.to_numpy(dtype=object, copy=True)
                value[pd.isna(value)] = None
                columns[name] = value
        return pd.DataFrame(columns, copy=False)


END_MARKER = re.compile(rb'(^|,)"\\\."(?=,|\r\n)', re.MULTILINE)


def _unquote_end_marker(chunk: bytes) -> bytes:
    r"""Return CSV lines with a field ``\.`` unquoted, as Python's csv writes it (COPY quotes it: its end marker).

    Only a field's own quotes can stand between a separator and ``\``: a quote inside a field is doubled.

    >>> _unquote_end_marker(b'1,"\\.",x\r\n"\\."\r\n2,"a""\\.""b","\\."\r\n')
    b'1,\\.,x\r\n\\.\r\n2,"a""\\.""b",\\.\r\n'
    """
    return END_MARKER.sub(rb"\1\\.", chunk) if b'"\\."' in chunk else chunk


class _Reader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (what pandas.read_csv reads from)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.rest:
            chunk = next(self.chunks, None)
            if chunk is None:
                return 0
            self.rest = chunk
        n = min(len(buffer), len(self.rest))
        buffer[:n] = self.rest[:n]
        self.rest = self.rest[n:]
        return n

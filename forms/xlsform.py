"""XLSForm (the spreadsheet format of KoboToolbox and ODK) in and out: ``.xlsx`` <-> definition dict.

Why our own mapping rather than pyxform's workbook reader: we need every message located by
sheet, Excel row and column, in plain Chinese for office staff, all of them at once (pyxform
stops at the first error and speaks English); we support a deliberately small subset and must
refuse the rest rather than convert it to XForm XML; and our own columns (``score``, ``yes``,
``kind``, ``topic``, ``attribute``, the ``topics`` sheet) map straight to the definition dict.
Workbooks are read by :mod:`forms.xlsx_reader` (only the cells of our four sheets, with bounded
work: an upload is untrusted) and written by openpyxl.

Whatever a file declares, the work is bounded: at most ``MAX_ROWS`` rows with a value in a sheet
(``MAX_CHOICES`` in ``choices``, which is also the most choices all questions together may offer,
a list counting once for each question using it), ``MAX_COLUMNS`` named columns and skip rules
of ``MAX_EXPRESSION`` characters; past a reading limit nothing else is checked, and at most
``MAX_MESSAGES`` errors and warnings are listed.

Supported (anything else in a meaningful column is an error naming sheet, row and column):

- ``survey``: ``type`` = ``select_one LIST`` / ``select_multiple LIST`` (each with ``or_other``: an
  ``other`` choice and a text box ``NAME_other`` asked when it is chosen; also pyxform's older
  ``select one from LIST``, ``select all that apply from LIST``, ``or specify other``) | ``text`` |
  ``integer`` | ``decimal`` | ``range`` (``parameters`` start/end/step) | ``date`` | ``time`` |
  ``datetime`` | ``acknowledge`` | ``geopoint`` | ``image`` | ``calculate`` (``calculation``) |
  ``hidden`` (a calculate of its ``default``) | ``note`` | ``begin group`` / ``end group`` (also
  with ``_``; nested groups are flattened into sections, their rules joined; questions outside a
  group form a section of their own) and the ``xlsform_type`` of any type registered in
  ``forms.items.ITEM_TYPES``; ``name`` (at most ``MAX_NAME`` characters); ``label`` /
  ``label::<language>`` (also the old ``label:<language>``), ``hint``, ``required_message`` and
  ``constraint_message``, each in any number of languages; ``${name}`` in a label or hint shows an
  earlier answer; ``required``; ``relevant``, ``constraint``, ``choice_filter`` (a choice list's
  other columns by name: ``district=${district}``) and ``calculation`` (see
  :mod:`forms.expressions`; a group's rule applies to each of its items); ``default`` (checked as
  an answer); ``read_only``; ``appearance`` (``minimal``, ``horizontal``, ``likert``, ``field-list``
  and ``table-list`` on groups...; ``search()``, ``signature``, ``draw`` refused, others warned);
  our columns ``kind`` (awareness/support/participation/satisfaction), ``topic`` (named in the
  ``topics`` sheet), ``attribute`` (a respondent attribute for weighting, [a-z][a-z0-9_]*) and
  ``short`` (a short name for table headers).
- ``choices``: ``list_name`` (also the old spelling ``list name``), ``name``, ``label`` /
  ``label::<language>``, ``exclusive`` (yes: chosen alone in a select_multiple, "以上都没有"),
  any other named column (what a choice_filter reads), our ``score`` (0-100; blank = "don't know",
  left out of means) and ``yes`` (1/0/blank). A ``select_one`` whose list has scores is a
  ``rating`` item, one whose list has yes flags a ``yesno`` item, else ``choice``; a
  ``select_multiple`` is a ``multi`` item and has neither.
- ``settings``: ``form_title`` (and ``form_title::<language>``; the code when blank, as in XLSForm),
  ``form_id`` (the code; the file's name when blank and the name is a usable code),
  ``version`` (a whole number; 1 when blank), ``default_language``, our ``intro``, ``privacy``
  (each also ``::<language>``) and ``minors`` (yes/no).
- ``topics`` (ours): ``name``, ``label`` / ``label::<language>``.

Refused, each naming the feature: repeats, ``rank``, ``audio``/``video``/``file``/``barcode``,
``geotrace``/``geoshape``/``osm``, ``select_one_from_file``, external data, an ``entities`` sheet,
``begin loop``, ``repeat_count``, ``trigger``, and in expressions any function the engine does not
have (``pulldata()``, ``jr:choice-name()``...). A questionnaire needs no scored item.

The default language is settings' ``default_language``, else the first language of the survey
sheet; a plain ``label`` column is in the default language (中文 when none is named). Columns
that change nothing for us (``media::image``, ``guidance_hint``, unknown columns, ...) give a
located warning and are ignored, as do ODK's metadata rows (``start``, ``end``, ``today``,
``deviceid``, ``uri:deviceid``...), which ask nothing. Tested on the XLSForm project's own 25
example forms (tests/forms/xlsform_examples.py) and a realistic city questionnaire.
"""
from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
from defusedxml import DefusedXmlException

from forms.common import DefinitionError
from forms.definition import ATTRIBUTE_NAME, KINDS, OTHER, Definition, Item, parse_definition
from forms.expressions import Expr, ExpressionError, parse
from forms.items import ITEM_TYPES, number_text
from forms.xlsx_reader import TooLarge, XlsxReader

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
SHEETS = ("survey", "choices", "settings", "topics")
# Far above any questionnaire fielded on a phone, and what keeps the checks of an upload (and the
# page listing its messages) short whatever the file holds. Rows are those with a value.
MAX_ROWS = 2_000  # in each sheet but choices
MAX_CHOICES = 5_000  # rows of the choices sheet; also the choices of all questions together
MAX_COLUMNS = 100  # named columns of a sheet
MAX_EXPRESSION = 1_000  # characters of an expression (relevant, constraint, choice_filter, calculation)
MAX_NAME = 32  # characters of a question's name (what the answers' item_code column holds)
MAX_GROUP_DEPTH = 5  # groups within groups (flattened into sections)
MAX_MESSAGES = 200  # errors (and warnings) listed; the others are counted in one last line
ENTITIES = ("文件中含有 XML 实体或文档类型声明（DTD），Excel 和 WPS 保存的文件不会有这些内容，已拒绝。"
            "请用 Excel 或 WPS 重新保存为 .xlsx 后再上传。")
SELECT = re.compile(r"(select_one|select_multiple)\s+(\S+)(\s+or_other)?\Z", re.IGNORECASE)
# pyxform's older spellings of the select types, read as today's.
OLD_SELECTS = ((re.compile(r"select one from\s+", re.IGNORECASE), "select_one "),
               (re.compile(r"select all that apply from\s+", re.IGNORECASE), "select_multiple "),
               (re.compile(r"\s+or specify other\Z", re.IGNORECASE), " or_other"))
YES = {"yes", "true", "1", "true()"}
NO = {"no", "false", "0", "false()", ""}
# Columns whose value changes what is asked or stored and that we do not support: refused when filled in.
SURVEY_REFUSED = {
    "repeat_count": "不支持重复组（repeat_count）",
    "trigger": "不支持触发计算（trigger）",
    "save_to": "不支持实体（entities / save_to）",
    "body::accuracythreshold": "不支持定位精度设置（body::accuracyThreshold）",
}
SURVEY_COLUMNS = {"type", "name", "label", "hint", "required", "required_message", "relevant", "constraint",
                  "constraint_message", "choice_filter", "default", "read_only", "appearance", "calculation",
                  "parameters", "kind", "topic", "attribute", "short"}
EXPRESSION_COLUMNS = ("relevant", "constraint", "choice_filter", "calculation")
CHOICES_COLUMNS = {"list_name", "name", "label", "score", "yes", "exclusive"}
SETTINGS_COLUMNS = {"form_title", "form_id", "version", "default_language", "intro", "privacy", "minors"}
TOPICS_COLUMNS = {"name", "label"}
TRANSLATED = {"label", "hint", "form_title", "intro", "privacy", "required_message", "constraint_message"}
# Appearances that change how a question or a group shows; others are warned about and ignored.
APPEARANCES = {"minimal", "horizontal", "horizontal-compact", "likert", "compact", "quick", "field-list",
               "table-list", "label", "list-nolabel", "list", "multiline", "numbers", "no-calendar", "month-year",
               "year", "signature", "draw", "annotate", "new", "placement-map", "maps", "hidden-answer"}
REFUSED_APPEARANCES = {"search": "不支持 search() 外部选项", "signature": "不支持手写签名（signature）",
                       "draw": "不支持手绘（draw）", "annotate": "不支持图片标注（annotate）",
                       "placement-map": "不支持在地图上选点（placement-map）"}
# ODK metadata that the phone records by itself: asks nothing, so ignoring it changes nothing.
METADATA = {"start", "end", "today", "deviceid", "username", "phonenumber", "simserial", "subscriberid", "email",
            "audit", "instanceid", "start-geopoint"}
# XLSForm types we do not support, each refused with a message naming it.
UNSUPPORTED_TYPES = {
    "begin repeat": "不支持重复组（begin repeat）", "begin_repeat": "不支持重复组（begin repeat）",
    "end repeat": "不支持重复组（end repeat）", "end_repeat": "不支持重复组（end repeat）",
    "rank": "不支持排序题（rank）：请改用几道 select_one，或一道 select_multiple",
    "audio": "不支持录音题（audio）", "video": "不支持视频题（video）", "file": "不支持文件上传题（file）",
    "barcode": "不支持扫码题（barcode）", "geotrace": "不支持轨迹题（geotrace）", "geoshape": "不支持区域题（geoshape）",
    "osm": "不支持 OpenStreetMap 题（osm）", "background-audio": "不支持后台录音（background-audio）",
    "xml-external": "不支持外部数据（xml-external）", "csv-external": "不支持外部数据（csv-external）",
    "select_one_from_file": "不支持从文件读取选项（select_one_from_file）：请把选项写进 choices 表",
    "select_multiple_from_file": "不支持从文件读取选项（select_multiple_from_file）：请把选项写进 choices 表",
    "start-geopoint": "不支持自动定位字段（start-geopoint）", "trigger": "不支持触发题（trigger）",
    "begin_table": "不支持 begin table", "end_table": "不支持 end table",
}
# Other labels than the default language's for the choice or_other adds.
OTHER_LABELS = {"english": ("Other", "Please specify"), "en": ("Other", "Please specify")}
OTHER_LABEL = ("其他", "请注明其他")
PIPED = re.compile(r"\$\{([^${}]*)\}")  # a label's reference to an answer; linear on a text of repeated "${"


@dataclass(frozen=True)
class Located:
    """A message about one place in the workbook: sheet, Excel row (1 = header) and column."""

    sheet: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        if self.row is None:
            return f"{self.sheet} 表: {self.message}" if self.sheet else self.message
        column = f" {self.column} 列" if self.column else ""
        return f"{self.sheet} 第{self.row}行{column}: {self.message}"


class XLSFormError(DefinitionError):
    """A workbook that cannot be used; ``errors`` lists every problem found, each located."""

    def __init__(self, errors: list[Located], warnings: list[Located] | None = None) -> None:
        self.errors = list(errors)
        self.warnings = list(warnings or ())
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclass
class Imported:
    """An imported XLSForm: its definition, the dict to store, and the warnings (ignored columns)."""

    definition: Definition
    raw: dict[str, Any]
    warnings: list[Located] = field(default_factory=list)


@dataclass
class _Sheet:
    name: str
    columns: list[str]  # header names, stripped; the part before "::" in lower case
    rows: list[tuple[int, dict[str, str]]]  # (Excel row number, {column: text}) for non-empty rows


def _text(value: Any) -> str:
    """Return a cell's value as the text a person sees (numbers without a trailing .0)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime) and value.time() == datetime.min.time():
        return value.date().isoformat()  # a date typed into a cell Excel formats as a date
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


# Older spellings that XLSForm tools still accept, read as their current names.
COLUMN_ALIASES = {"list name": "list_name"}


def _column_key(header: str) -> str:
    if "::" not in header and ":" in header:  # the old spelling label:English
        head, _, tail = header.partition(":")
        if head.strip().lower() in TRANSLATED:
            header = f"{head}::{tail}"
    base, sep, language = header.partition("::")
    base = COLUMN_ALIASES.get(base.strip().lower(), base.strip().lower())
    return f"{base}::{language.strip()}" if sep else base


def _read_workbook(source: bytes | str | Path, errors: list[Located]) -> dict[str, _Sheet]:
    """Return the workbook's sheets by name (lower case); only ours are read, the others are left empty.

    Raises XLSFormError when the file is past a limit (what was read so far is not checked).
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        with XlsxReader(data) as book:
            sheets: dict[str, _Sheet] = {}
            for title in book.sheet_names:
                name = title.strip().lower()
                sheets[name] = _read_sheet(book, title, name, errors) if name in SHEETS else _Sheet(name, [], [])
            return sheets
    except XLSFormError:
        raise
    except TooLarge as exc:
        raise XLSFormError([Located((exc.sheet or "").strip().lower(), exc.row, None, str(exc))]) from None
    except DefusedXmlException:
        raise XLSFormError([Located("", None, None, ENTITIES)]) from None
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file can fail in zipfile, expat or a cell's value
        errors.append(Located("", None, None, f"无法读取这个文件：请上传 Excel 的 .xlsx 文件（{type(exc).__name__}）"))
        return {}


def _read_sheet(book: XlsxReader, title: str, name: str, errors: list[Located]) -> _Sheet:
    """Read one of our sheets: its header (row 1) and the rows below with a value under a named column."""
    header: dict[int, str] = {}  # column number -> column name
    columns: list[str] = []
    rows: list[tuple[int, dict[str, str]]] = []
    limit = MAX_CHOICES if name == "choices" else MAX_ROWS
    for number, values in book.rows(title):
        if number <= 1:  # the header (a row listed again as row 1, or as row 0, is not read)
            if header or columns:
                continue
            seen: set[str] = set()
            for column, value in sorted(values.items()):
                if key := _column_key(_text(value)):
                    if key in seen:
                        errors.append(Located(name, 1, key, "列名重复"))
                    seen.add(key)
                    header[column] = key
                    columns.append(key)
            if len(columns) > MAX_COLUMNS:
                raise XLSFormError([Located(name, 1, None, f"列名（第一行）最多 {MAX_COLUMNS} 个，这个工作表有 {len(columns)} 个：请删除多余的列")])
            continue
        cells = {header[column]: text for column, value in sorted(values.items()) if column in header and (text := _text(value))}
        if not cells:
            continue
        if len(rows) == limit:
            what = f"choices 表最多 {MAX_CHOICES} 个选项" if name == "choices" else f"{name} 表最多 {MAX_ROWS} 行"
            raise XLSFormError([Located(name, number, None, f"{what}（空行不算），从这一行起超出上限：请删除多余的行")])
        rows.append((number, cells))
    return _Sheet(name, columns, rows)


class _Importer:
    def __init__(self, sheets: dict[str, _Sheet], errors: list[Located]) -> None:
        self.sheets = sheets
        self.errors = errors
        self.warnings: list[Located] = []
        self.unlisted = {"errors": 0, "warnings": 0}  # past MAX_MESSAGES of each
        self.languages: list[str] = []
        self.default_language = "中文"
        self.choices_used = 0  # by the questions so far, each counting its whole list
        self.codes: dict[str, set[str]] = {}  # choice codes of the questions that skip rules name
        self.asked: dict[str, dict[str, Any]] = {}  # the questions (and calculations) so far, by name
        self.untranslated: dict[str, list[str]] = {}  # language -> the texts without it ("survey 第5行 label")
        self.metadata: set[str] = set()  # the names of ignored metadata rows (start, deviceid...)
        self.piped_choices: list[tuple[int, str, str]] = []  # (row, column, name) of ${name} in choice labels

    def error(self, sheet: str, row: int | None, column: str | None, message: str) -> None:
        if len(self.errors) < MAX_MESSAGES:
            self.errors.append(Located(sheet, row, column, message))
        else:
            self.unlisted["errors"] += 1

    def warn(self, sheet: str, row: int | None, column: str | None, message: str) -> None:
        if len(self.warnings) < MAX_MESSAGES:
            self.warnings.append(Located(sheet, row, column, message))
        else:
            self.unlisted["warnings"] += 1

    def failed(self) -> XLSFormError:
        """Return the error listing what was found (at most ``MAX_MESSAGES`` of each kind, then how many more)."""
        return XLSFormError(self.listed("errors", "处错误没有列出：请先改正上面的错误，再上传一次"), self.listed_warnings())

    def listed_warnings(self) -> list[Located]:
        return self.listed("warnings", "条提示没有列出")

    def listed(self, kind: str, what: str) -> list[Located]:
        messages = getattr(self, kind)
        more = self.unlisted[kind]
        return messages + [Located("", None, None, f"……另有 {more} {what}")] if more else list(messages)

    # languages -------------------------------------------------------------------------------
    def find_languages(self, settings: dict[str, str]) -> None:
        named = settings.get("default_language", "").strip()
        found: list[str] = []
        plain = False
        for sheet in ("survey", "choices", "topics", "settings"):
            for column in self.sheets[sheet].columns if sheet in self.sheets else ():
                base, sep, language = column.partition("::")
                if base in TRANSLATED:
                    if not sep:
                        # Only the questions' own plain label names an unnamed default
                        # language; a plain label elsewhere is in whatever the default is.
                        plain = plain or (sheet == "survey" and base == "label")
                    elif language and language not in found:
                        found.append(language)
        default = named or (found[0] if found and not plain else "中文")
        self.default_language = default
        self.languages = [default] + [lang for lang in found if lang != default]
        if named and not plain and named not in found:
            row = self.sheets["settings"].rows[0][0]
            self.error("settings", row, "default_language",
                       f"默认语言 \"{named}\" 没有对应的 label::{named} 列（已有：{'、'.join(found) or '无'}）")

    def texts(self, sheet: str, number: int, cells: dict[str, str], base: str) -> tuple[str, dict[str, str]]:
        """Return (default-language text, {other language: text}) of a translated column."""
        plain, tagged = cells.get(base, ""), cells.get(f"{base}::{self.default_language}", "")
        if plain and tagged and plain != tagged:
            self.error(sheet, number, base, f"{base} 列与 {base}::{self.default_language} 列的内容不同")
        others = {lang: cells[f"{base}::{lang}"] for lang in self.languages[1:] if cells.get(f"{base}::{lang}")}
        if (plain or tagged) and sheet != "topics":  # topics name heatmap columns: staff read them, not respondents
            for lang in self.languages[1:]:
                if lang not in others:
                    self.untranslated.setdefault(lang, []).append(f"{sheet} 第{number}行 {base}")
        for column, text in ((base, plain), (f"{base}::{self.default_language}", tagged),
                             *((f"{base}::{lang}", text) for lang, text in others.items())):
            for piped in PIPED.finditer(text):
                # ODK shows the earlier answer here, and so do we: it must be an earlier question.
                name = piped.group(1).strip()
                if sheet == "choices":  # a list may serve several questions: checked once the survey is read
                    self.piped_choices.append((number, column, name))
                elif sheet != "survey":
                    self.error(sheet, number, column, f"只有题目和选项的文字可以引用答案（{piped.group(0)}）")
                elif name in self.metadata:
                    self.error(sheet, number, column, f"文字中引用了自动记录字段 ${{{name}}}，本平台不记录它")
                elif name not in self.asked:
                    self.error(sheet, number, column, f"文字中引用的题目 ${{{name}}} 不存在或不在本题之前")
        return plain or tagged, others

    def column_of(self, sheet: str, base: str) -> str:
        """Return the name of the column holding the default-language ``base`` text (for messages)."""
        tagged = f"{base}::{self.default_language}"
        return tagged if tagged in (self.sheets[sheet].columns if sheet in self.sheets else ()) else base

    # sheets ----------------------------------------------------------------------------------
    def check_columns(self, sheet: _Sheet, known: set[str], refused: dict[str, str], number: int, cells: dict[str, str]) -> None:
        for column in cells:
            base = column.partition("::")[0]
            if base in known:
                continue
            if base in refused:
                self.error(sheet.name, number, column, refused[base])
            else:
                self.warn(sheet.name, number, column, "此列不影响本平台的问卷，已忽略")

    def settings(self) -> dict[str, str]:
        sheet = self.sheets.get("settings")
        if sheet is None or not sheet.rows:
            return {}
        number, cells = sheet.rows[0]
        self.check_columns(sheet, SETTINGS_COLUMNS, {}, number, cells)
        for extra, _ in sheet.rows[1:]:
            self.warn("settings", extra, None, "settings 表只读第2行，此行已忽略")
        return cells

    def topics(self) -> dict[str, dict[str, Any]]:
        sheet = self.sheets.get("topics")
        out: dict[str, dict[str, Any]] = {}
        if sheet is None:
            return out
        for number, cells in sheet.rows:
            self.check_columns(sheet, TOPICS_COLUMNS, {}, number, cells)
            name = cells.get("name", "")
            if not name:
                self.error("topics", number, "name", "缺少主题名称（name）")
                continue
            if name in out:
                self.error("topics", number, "name", f"主题 \"{name}\" 重复")
                continue
            label, others = self.texts("topics", number, cells, "label")
            if not label:
                self.error("topics", number, self.column_of("topics", "label"), f"主题 \"{name}\" 缺少名称文字")
            out[name] = {"code": name, "label": label} | _translations(others, "label")
        return out

    def choices(self) -> dict[str, dict[str, Any]]:
        """Return {list name: {"choices": [...], "rows": [...], "scores": bool, "yes": bool}}."""
        sheet = self.sheets.get("choices")
        lists: dict[str, dict[str, Any]] = {}
        if sheet is None:
            return lists
        extra = [c for c in sheet.columns if c not in CHOICES_COLUMNS and c.partition("::")[0] not in CHOICES_COLUMNS
                 and NAME.match(c) and c not in ("image", "audio", "video", "big-image")]
        for number, cells in sheet.rows:
            self.check_columns(sheet, CHOICES_COLUMNS | set(extra), {}, number, cells)
            list_name, name = cells.get("list_name", ""), cells.get("name", "")
            if not list_name:
                self.error("choices", number, "list_name", "缺少选项列表名（list_name）")
                continue
            entry = lists.setdefault(list_name, {"choices": [], "rows": [], "scores": False, "yes": False, "codes": set()})
            if not name:
                self.error("choices", number, "name", "缺少选项名称（name）")
                continue
            if name in entry["codes"]:
                self.error("choices", number, "name", f"选项列表 \"{list_name}\" 中选项 \"{name}\" 重复")
                continue
            if re.search(r"\s", name):
                self.error("choices", number, "name", f"选项名称 \"{name}\" 不能含空格")
            label, others = self.texts("choices", number, cells, "label")
            if not label:
                self.error("choices", number, self.column_of("choices", "label"), f"选项 \"{name}\" 缺少文字")
            choice: dict[str, Any] = {"code": name, "label": label} | _translations(others, "label")
            if columns := {c: cells[c] for c in extra if cells.get(c)}:
                choice["columns"] = columns  # what a choice_filter reads (district=${district})
            exclusive = _yes(cells.get("exclusive", ""))
            if exclusive is None:
                self.error("choices", number, "exclusive", "exclusive 只能填 yes 或留空")
            elif exclusive:
                choice["exclusive"] = True
            score_text, yes_text = cells.get("score", ""), cells.get("yes", "").lower()
            if score_text:
                try:
                    score = float(score_text)
                except ValueError:
                    score = None
                if score is None or not 0 <= score <= 100:
                    self.error("choices", number, "score", f"分值 \"{score_text}\" 应是 0 到 100 的数（“不了解”等不计分的选项请留空）")
                else:
                    choice["score"] = int(score) if score.is_integer() else score
                    entry["scores"] = True
            if yes_text:
                if yes_text in YES - {""}:
                    choice["yes"] = True
                elif yes_text in NO:
                    choice["yes"] = False
                else:
                    self.error("choices", number, "yes", f"yes 列应填 1、0 或留空，而不是 \"{cells['yes']}\"")
                entry["yes"] = True
            if score_text and yes_text:
                self.error("choices", number, "yes", "同一选项列表不能既有 score 又有 yes")
            entry["choices"].append(choice)
            entry["codes"].add(name)
            entry["rows"].append(number)
        for list_name, entry in lists.items():
            if entry["scores"] and entry["yes"]:
                self.error("choices", entry["rows"][0], "list_name", f"选项列表 \"{list_name}\" 既有 score 又有 yes：计分题用 score，知晓/支持/参与题用 yes")
        return lists

    # the survey sheet ------------------------------------------------------------------------
    def survey(self, lists: dict[str, dict[str, Any]], topics: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        sheet = self.sheets.get("survey")
        if sheet is None:
            self.error("survey", None, None, "缺少 survey 工作表")
            return []
        sections: list[dict[str, Any]] = []
        groups: list[dict[str, Any]] = []  # the open groups, outermost first (nested ones are flattened)
        section: dict[str, Any] | None = None  # the section items go to
        names: dict[str, int] = {}
        attributes: dict[str, int] = {}
        used_lists: set[str] = set()
        # The types besides select_one / select_multiple, by their XLSForm name (and any type registered).
        plain = {t.xlsform_type: t.name for t in ITEM_TYPES.values() if t.xlsform_type not in ("select_one", "select_multiple")}
        plain["hidden"] = "calculate"

        def name_of(number: int, cells: dict[str, str], what: str) -> str | None:
            name = cells.get("name", "")
            if not name:
                self.error("survey", number, "name", f"缺少{what}名称（name）")
                return None
            if not NAME.match(name) or len(name) > MAX_NAME:
                self.error("survey", number, "name", f"名称 \"{name}\" 只能用英文字母、数字、_、-、.，以字母或 _ 开头，"
                                                     f"最长 {MAX_NAME} 个字符")
                return None
            if name in names:
                self.error("survey", number, "name", f"名称 \"{name}\" 与第{names[name]}行重复")
                return None
            names[name] = number
            return name

        def open_section(number: int, group: dict[str, Any] | None) -> dict[str, Any]:
            """Start a section: for a group that begins, or for the items after a group ends."""
            entry: dict[str, Any] = {"code": _free_code(names, len(sections) + 1), "title": "", "items": [], "row": number}
            if group is not None:
                entry.update(title=group["title"], row=group["row"], **group["texts"])
                if not group["sections"]:  # a group cut by a group inside it goes on under a new code
                    del names[entry["code"]]
                    entry["code"] = group["code"]
                group["sections"] += 1
                if group["appearance"]:
                    entry["appearance"] = group["appearance"]
            sections.append(entry)
            return entry

        def group_rule() -> dict[str, Any] | None:
            rules = [g["rule"] for g in groups if g["rule"] is not None]
            if not rules:
                return None
            return rules[0] if len(rules) == 1 else _all([Expr.from_dict(r) for r in rules]).to_dict()

        for number, cells in sheet.rows:
            self.check_columns(sheet, SURVEY_COLUMNS, SURVEY_REFUSED, number, cells)
            kind = re.sub(r"\s+", " ", cells.get("type", "")).strip()
            lowered = kind.lower()
            if lowered in ("begin group", "begin_group"):
                if len(groups) == MAX_GROUP_DEPTH:
                    self.error("survey", number, "type", f"分组最多嵌套 {MAX_GROUP_DEPTH} 层")
                name = name_of(number, cells, "分组")
                title, others = self.texts("survey", number, cells, "label")
                appearance = self.appearance(number, cells, group=True)
                rule = self.expression(number, cells, "relevant")
                group = {"code": name or f"group{number}", "title": title, "texts": _translations(others, "title"),
                         "appearance": appearance, "rule": rule.to_dict() if rule is not None else None,
                         "row": number, "items": 0, "sections": 0}
                groups.append(group)
                for column in ("required", "kind", "topic", "attribute", "constraint", "calculation", "choice_filter"):
                    if cells.get(column):
                        self.error("survey", number, column, f"分组不能设置 {column}")
                section = None  # the group's first item opens its section
                continue
            if lowered in ("end group", "end_group"):
                if not groups:
                    self.error("survey", number, "type", "end group 没有对应的 begin group")
                else:
                    ended = groups.pop()
                    if not ended["items"]:
                        self.error("survey", ended["row"], "type", "分组中没有题目")
                    section = None  # what follows goes on in a section of its own
                continue
            if not kind:
                self.error("survey", number, "type", "缺少题型（type）")
                continue
            spelled = kind
            for old_spelling, today in OLD_SELECTS:
                spelled = old_spelling.sub(today, spelled)
            select = SELECT.match(spelled)
            first = lowered.split(" ")[0]
            if lowered.startswith(("begin loop", "end loop")):
                self.error("survey", number, "type", f"不支持循环（{' '.join(lowered.split()[:2])}）：请把各题分别列出")
                continue
            if lowered.removeprefix("uri:") in METADATA or lowered.startswith("uri:"):
                self.warn("survey", number, "type", f"自动记录字段 \"{kind}\" 本平台不使用，已忽略")
                if cells.get("name"):
                    self.metadata.add(cells["name"])
                continue
            if (lowered in UNSUPPORTED_TYPES or first in UNSUPPORTED_TYPES) and lowered not in plain:
                self.error("survey", number, "type", UNSUPPORTED_TYPES.get(lowered) or UNSUPPORTED_TYPES[first])
                continue
            if not (select or lowered in plain):
                known = ["select_one", "select_multiple", *sorted(plain), "begin group/end group"]
                self.error("survey", number, "type", f"不支持的题型 \"{kind}\"（支持 {'、'.join(known)}）")
                continue
            name = name_of(number, cells, "题目")
            label, others = self.texts("survey", number, cells, "label")
            hint, hint_others = self.texts("survey", number, cells, "hint")
            item: dict[str, Any] = {"code": name or f"row{number}", "label": label}
            if hint:
                item["hint"] = hint
            translations: dict[str, dict[str, str]] = {}
            for key, texts in (("label", others), ("hint", hint_others)):
                for lang, text in texts.items():
                    translations.setdefault(lang, {})[key] = text
            for key in ("required_message", "constraint_message"):
                text, texts = self.texts("survey", number, cells, key)
                if text:
                    item[key] = text
                for lang, other in texts.items():
                    translations.setdefault(lang, {})[key] = other
            if translations:
                item["translations"] = translations
            if select:
                multiple = select.group(1).lower() == "select_multiple"
                self.select(number, cells, item, select.group(2), lists, used_lists, multiple)
            else:
                item["type"] = plain[lowered]
                if lowered == "hidden":
                    item["default"] = cells.get("default", "")
            handler = ITEM_TYPES[item["type"]]
            if not label and handler.question:
                self.error("survey", number, self.column_of("survey", "label"), "缺少题目文字")
            asks = handler.question
            self.extras(number, cells, item, topics, attributes)
            item["required"] = self.required(number, cells) if asks else False
            if not asks and cells.get("required"):
                self.warn("survey", number, "required", f"{kind} 不需要作答，required 已忽略")
            if appearance := self.appearance(number, cells, group=False):
                item["appearance"] = appearance
            if cells.get("read_only"):
                read_only = _yes(cells["read_only"])
                if read_only is None:
                    self.error("survey", number, "read_only", "read_only 只能填 yes 或留空")
                elif read_only:
                    item["read_only"] = True
            if cells.get("parameters"):
                self.parameters(number, cells, item)
            if cells.get("default") and lowered != "hidden":
                if not asks:
                    self.warn("survey", number, "default", f"{kind} 不需要默认答案，default 已忽略")
                elif (default := self.default(number, cells["default"], item)) is not None:
                    item["default"] = default
            for column in EXPRESSION_COLUMNS:
                if column == "constraint" and "max_length" in item:
                    continue  # a text's longest answer, read by its type
                if column == "calculation" and item["type"] != "calculate":
                    if cells.get(column) and not item.get("read_only"):
                        self.warn("survey", number, column, "只有 calculate 题和只读题使用 calculation，已忽略")
                        continue
                expression = self.expression(number, cells, column, choices=item.get("choices"))
                if expression is not None:
                    item[column] = expression.to_dict()
            if item["type"] == "calculate" and "calculation" not in item and lowered != "hidden" and not any(
                    e.row == number and e.column == "calculation" for e in self.errors):
                self.error("survey", number, "calculation", "calculate 题需要填写 calculation")
            if item["type"] != "calculate" and not item.get("read_only"):
                item.pop("calculation", None)
            try:
                if (inherited := group_rule()) is not None:
                    own = item.get("relevant")
                    item["relevant"] = inherited if own is None else _all([Expr.from_dict(inherited), Expr.from_dict(own)]).to_dict()
            except ExpressionError as exc:
                self.error("survey", number, "relevant", f"本题与所在分组的条件合起来无法使用：{exc}")
            if section is None:
                section = open_section(number, groups[-1] if groups else None)
            section["items"].append(item)
            if groups:
                groups[-1]["items"] += 1
            if name and (asks or handler.computed):
                self.asked[name] = item
            if select and select.group(3) and "choices" in item:  # (a missing list is said once, by select)
                self.or_other(number, item, section, names)
        for group in groups:
            self.error("survey", group["row"], "type", "begin group 没有对应的 end group")
        for row, column, name in self.piped_choices:
            if name not in self.asked:
                self.error("choices", row, column, f"选项文字中引用的题目 ${{{name}}} 不存在")
        for list_name in sorted(set(lists) - used_lists):
            self.warn("choices", lists[list_name]["rows"][0] if lists[list_name]["rows"] else None, "list_name",
                      f"选项列表 \"{list_name}\" 没有题目使用")
        if not sheet.rows:
            self.error("survey", None, None, "survey 表中没有题目")
        for entry in sections:
            del entry["row"]
        return sections

    def or_other(self, number: int, item: dict[str, Any], section: dict[str, Any], names: dict[str, int]) -> None:
        """Add XLSForm's or_other: an "other" choice and, after the question, a text box asked when it is chosen."""
        if any(c["code"] == OTHER for c in item["choices"]):
            self.error("survey", number, "type", f"or_other 会加一个名为 \"{OTHER}\" 的选项，选项列表中已有这个名称")
            return
        other: dict[str, Any] = {"code": OTHER, "label": OTHER_LABEL[0]}
        if item["type"] == "rating":
            other["score"] = None  # "其他" is no score: left out of the means, as "不了解"
        elif item["type"] == "yesno":
            other["yes"] = None
        specify: dict[str, Any] = {"label": OTHER_LABEL[1]}
        labels = {lang: OTHER_LABELS.get(lang.strip().lower(), OTHER_LABELS["en"] if "(en)" in lang.lower() else None)
                  for lang in self.languages[1:]}
        if found := {lang: texts for lang, texts in labels.items() if texts}:
            other["translations"] = {lang: {"label": texts[0]} for lang, texts in found.items()}
            specify["translations"] = {lang: {"label": texts[1]} for lang, texts in found.items()}
        # Before an exclusive "以上都没有", which stays last: the phone, the paper and entry number alike.
        place = next((n for n, c in enumerate(item["choices"]) if c.get("exclusive")), len(item["choices"]))
        item["choices"].insert(place, other)
        code = f"{item['code']}_other"
        if code in names:
            self.error("survey", number, "name", f"or_other 的填写框名为 \"{code}\"，与第{names[code]}行的名称重复")
            return
        names[code] = number
        rule = parse(f"selected(${{{item['code']}}}, '{OTHER}')")
        if item.get("relevant") is not None:
            rule = _all([Expr.from_dict(item["relevant"]), rule])
        specify.update(code=code, type="text", required=True, other_of=item["code"], relevant=rule.to_dict(),
                       max_length=200)
        section["items"].append(specify)
        self.asked[code] = specify

    def default(self, number: int, text: str, item: dict[str, Any]) -> str | None:
        """Return a question's default answer as its type keeps it, or None (the error located)."""
        handler = ITEM_TYPES[item["type"]]
        if handler.needs_choices:
            codes = {c["code"] for c in item.get("choices", ())}
            wanted = text.split() if handler.multiple else [text]
            if not wanted or any(code not in codes for code in wanted) or (len(wanted) > 1 and not handler.multiple):
                self.error("survey", number, "default", f"默认答案 \"{text}\" 不是本题的选项")
                return None
            return " ".join(c["code"] for c in item["choices"] if c["code"] in wanted) if handler.multiple else text
        bounds = item.get("range")
        probe = Item(item["code"], item["type"], (("", ""),), required=False, max_length=item.get("max_length", 500),
                     range=(bounds["start"], bounds["end"], bounds["step"]) if bounds else None)
        value, error = handler.parse(probe, text)
        if error:
            self.error("survey", number, "default", f"默认答案 \"{text}\" 不能用：{error}")
            return None
        return value

    def appearance(self, number: int, cells: dict[str, str], *, group: bool) -> str:
        """Return the appearances we show (``field-list``, ``table-list``, ``minimal``...); warn of the others."""
        words = cells.get("appearance", "").split()
        kept = []
        for word in words:
            lowered = word.lower()
            base = lowered.split("(")[0]
            if base in REFUSED_APPEARANCES:
                self.error("survey", number, "appearance", REFUSED_APPEARANCES[base])
            elif lowered in APPEARANCES or re.fullmatch(r"w\d+", lowered):
                kept.append(lowered)
            else:
                self.warn("survey", number, "appearance", f"外观 \"{word}\" 本平台不使用，已忽略")
        if not group and {"field-list", "table-list"} & set(kept):
            self.warn("survey", number, "appearance", "field-list 和 table-list 用于分组（begin group），已忽略")
            kept = [w for w in kept if w not in ("field-list", "table-list")]
        return " ".join(kept)

    def parameters(self, number: int, cells: dict[str, str], item: dict[str, Any]) -> None:
        """Read a range's ``parameters`` (``start=0 end=10 step=1``); others are warned about."""
        found: dict[str, float] = {}
        for part in re.split(r"[\s;,]+", cells["parameters"].strip()):
            key, sep, value = part.partition("=")
            key = key.strip().lower()
            if not sep:
                continue
            if item["type"] != "range" or key not in ("start", "end", "step"):
                self.warn("survey", number, "parameters", f"参数 \"{part}\" 本平台不使用，已忽略")
                continue
            try:
                number_value = float(value)
            except ValueError:
                self.error("survey", number, "parameters", f"参数 {key} 应是数字，而不是 \"{value}\"")
                continue
            found[key] = int(number_value) if number_value.is_integer() else number_value
        if item["type"] == "range":
            bounds = {"start": 1, "end": 10, "step": 1} | found
            if bounds["step"] <= 0 or bounds["end"] <= bounds["start"] or (bounds["end"] - bounds["start"]) / bounds["step"] > 1000:
                self.error("survey", number, "parameters", "range 的参数应满足 start < end、step > 0，最多 1000 档")
            else:
                item["range"] = bounds

    def select(self, number: int, cells: dict[str, str], item: dict[str, Any], list_name: str,
               lists: dict[str, dict[str, Any]], used: set[str], multiple: bool) -> None:
        entry = lists.get(list_name)
        if entry is None:
            where = "choices 表中没有这个列表" if "choices" in self.sheets else "缺少 choices 工作表"
            self.error("survey", number, "type", f"选项列表 \"{list_name}\" 不存在：{where}")
            item["type"] = "multi" if multiple else "choice"
            return
        used.add(list_name)
        self.choices_used += len(entry["choices"])
        if self.choices_used > MAX_CHOICES:
            # Each question gets its own copy of its list: a long list used by many questions would
            # make a definition of millions of choices. What was found so far is said, then stop.
            self.error("survey", number, "type", f"各题的选项合计超过 {MAX_CHOICES} 个（一个选项列表每被一道题使用就计算一次）："
                                                 "请减少题目或选项")
            raise self.failed()
        choices = [dict(c) for c in entry["choices"]]
        kind = cells.get("kind", "")
        if multiple:
            item["type"] = "multi"
            if entry["scores"] or entry["yes"]:
                self.error("survey", number, "type", f"多选题（select_multiple）不计分：选项列表 \"{list_name}\" 的 score / yes 列请留空")
            if kind:
                self.error("survey", number, "kind", "kind 只用于单选题（select_one）")
            for choice in choices:
                choice.pop("score", None)
                choice.pop("yes", None)
        elif entry["scores"] and not entry["yes"]:
            item["type"] = "rating"
            for choice in choices:
                choice.setdefault("score", None)
            if kind and kind != "satisfaction":
                self.error("survey", number, "kind", f"计分题（选项带 score）的 kind 只能是 satisfaction，而不是 \"{kind}\"")
        elif entry["yes"] and not entry["scores"]:
            item["type"] = "yesno"
            for choice in choices:
                choice.setdefault("yes", None)
            flags = [c["yes"] for c in choices]
            if True not in flags or False not in flags:
                self.error("survey", number, "type", f"选项列表 \"{list_name}\" 至少要有一个 yes=1 和一个 yes=0 的选项")
            if kind == "satisfaction":
                self.error("survey", number, "kind", "satisfaction 题的选项应带 score，而不是 yes")
        else:
            item["type"] = "choice"
            if kind:
                self.error("survey", number, "kind", "kind 只用于选项带 score 或 yes 的选择题")
        if not multiple:
            for choice in choices:
                if choice.pop("exclusive", None):
                    self.warn("choices", entry["rows"][0], "exclusive", "exclusive 只用于多选题，单选题已忽略")
        if not choices:
            self.error("survey", number, "type", f"选项列表 \"{list_name}\" 没有选项")
        item["choices"] = choices
        item["list"] = list_name

    def extras(self, number: int, cells: dict[str, str], item: dict[str, Any],
               topics: dict[str, dict[str, Any]], attributes: dict[str, int]) -> None:
        kind, topic, attribute, short = (cells.get(c, "") for c in ("kind", "topic", "attribute", "short"))
        handler = ITEM_TYPES[item["type"]]
        asks_choice = handler.needs_choices and not handler.multiple
        if constraint := cells.get("constraint", ""):
            own = handler.read_xlsform(constraint)
            if own is not None:
                item.update(own)
        if kind:
            if kind not in KINDS:
                self.error("survey", number, "kind", f"kind 应是 {'、'.join(KINDS)} 之一，而不是 \"{kind}\"")
            elif not asks_choice:
                self.error("survey", number, "kind", "kind 只用于单选题")
            else:
                item["kind"] = kind
        if topic:
            if not asks_choice:
                self.error("survey", number, "topic", "topic 只用于单选题")
            elif topic not in topics:
                self.error("survey", number, "topic", f"主题 \"{topic}\" 没有列在 topics 表中")
            else:
                item["topic"] = topic
        if attribute:
            if not asks_choice:
                self.error("survey", number, "attribute", "只有单选题（select_one）可以作为受访者属性")
            elif not ATTRIBUTE_NAME.match(attribute):
                self.error("survey", number, "attribute", f"属性名 \"{attribute}\" 只能用小写英文字母、数字和 _，并以字母开头")
            elif attribute in attributes:
                self.error("survey", number, "attribute", f"属性 \"{attribute}\" 与第{attributes[attribute]}行重复")
            else:
                attributes[attribute] = number
                item["attribute"] = attribute
        if short:
            item["short"] = short

    def required(self, number: int, cells: dict[str, str]) -> bool:
        value = cells.get("required", "").strip().lower()
        if value in YES:
            return True
        if value not in NO:
            self.error("survey", number, "required", f"required 只支持 yes 或留空，不支持 \"{cells['required']}\"")
        return False

    def expression(self, number: int, cells: dict[str, str], column: str,
                   choices: list[dict[str, Any]] | None = None) -> Expr | None:
        """Return the expression of a cell (relevant, constraint, choice_filter, calculation), its errors located."""
        text = cells.get(column, "")
        if not text:
            return None
        if len(text) > MAX_EXPRESSION:
            self.error("survey", number, column, f"表达式太长（{len(text)} 个字符）：最多 {MAX_EXPRESSION} 个字符，请简化")
            return None
        try:
            expression = parse(text)
        except ExpressionError as exc:
            self.error("survey", number, column, str(exc))
            return None
        ok = True
        for name in sorted(expression.references()):
            if name not in self.asked:
                self.error("survey", number, column, f"表达式引用的题目 ${{{name}}} 不存在或不在本题之前")
                ok = False
        if expression.uses_dot() and column not in ("constraint", "calculation"):
            if column != "relevant":
                self.error("survey", number, column, f"{column} 中不能用 “.”（本题的回答）")
                ok = False
        if expression.columns() and column != "choice_filter":
            self.error("survey", number, column, f"{column} 中的名称 {'、'.join(sorted(expression.columns()))} "
                                                 "应写成 ${题目名}（只有 choice_filter 可以直接写选项表的列名）")
            ok = False
        if column == "choice_filter":
            if choices is None:
                self.error("survey", number, column, "choice_filter 只用于选择题")
                ok = False
            else:
                known = {c for choice in choices for c in choice.get("columns", {})} | {"name", "label"}
                missing = sorted(expression.columns() - known)
                if missing:
                    self.error("survey", number, column, f"choices 表中没有 {'、'.join(missing)} 列")
                    ok = False

        def compared(name: str, value: str) -> str:
            nonlocal ok
            target = self.asked.get(name)
            if target is not None and "choices" in target and value and value not in self.choice_codes(name, target):
                self.error("survey", number, column, f"题目 {name} 没有名为 \"{value}\" 的选项")
                ok = False
            return value

        expression.map_literals(compared)
        return expression if ok else None

    def choice_codes(self, name: str, question: dict[str, Any]) -> set[str]:
        """Return the codes of a question's choices (worked out once per question)."""
        if name not in self.codes:
            self.codes[name] = {c["code"] for c in question["choices"]}
        return self.codes[name]


def _all(rules: list[Expr]) -> Expr:
    """Return the rules joined by ``and`` (a group's rule and its item's own)."""
    return parse(" and ".join(f"({rule.to_xlsform()})" for rule in rules))


def _translations(others: dict[str, str], key: str) -> dict[str, Any]:
    return {"translations": {lang: {key: text} for lang, text in others.items()}} if others else {}


def _free_code(names: dict[str, int], index: int) -> str:
    code = f"section{index}"
    while code in names:
        code += "_"
    names[code] = 0
    return code


def _yes(value: str) -> bool | None:
    lowered = value.strip().lower()
    return True if lowered in YES else (False if lowered in NO else None)


def read_xlsform(source: bytes | str | Path, *, code: str | None = None, version: int | None = None,
                 name: str | None = None) -> Imported:
    """Read an XLSForm workbook (bytes or a path) into a definition; raise XLSFormError listing every problem.

    ``code`` / ``version`` override the settings sheet's ``form_id`` / ``version``; ``name``
    names the source in messages from the definition's own checks (default: the file name).
    """
    errors: list[Located] = []
    sheets = _read_workbook(source, errors)
    if not sheets:
        raise XLSFormError(errors or [Located("", None, None, "工作簿是空的")])
    importer = _Importer(sheets, errors)
    for sheet in sheets:
        if sheet == "entities":
            importer.error(sheet, None, None, "不支持实体（entities 工作表）：本平台不在问卷之间共享数据")
        elif sheet not in SHEETS:
            importer.warn(sheet, None, None, "本平台不使用这个工作表，已忽略")
    settings = importer.settings()
    importer.find_languages(settings)
    topics = importer.topics()
    lists = importer.choices()
    sections = importer.survey(lists, topics)
    raw: dict[str, Any] = {"code": code or settings.get("form_id", ""), "version": version or 1}
    settings_row = sheets["settings"].rows[0][0] if "settings" in sheets and sheets["settings"].rows else 2
    file_name = name or (Path(source).name if not isinstance(source, bytes) else "")
    if not raw["code"] and NAME.match(Path(file_name).stem):
        # As in XLSForm: a form without form_id is named after its file.
        raw["code"] = Path(file_name).stem
        importer.warn("settings", settings_row, "form_id", f"没有填写问卷代码（form_id），已使用文件名 \"{raw['code']}\"")
    if not raw["code"]:
        importer.error("settings", settings_row, "form_id", "缺少问卷代码（form_id）")
    elif not NAME.match(raw["code"]):
        importer.error("settings", settings_row, "form_id", f"问卷代码 \"{raw['code']}\" 只能用英文字母、数字、_、-、.")
    if version is None and settings.get("version"):
        text = settings["version"]
        if not text.isascii() or not text.isdigit() or int(text) < 1:
            importer.error("settings", settings_row, "version", f"版本号 \"{text}\" 应是从 1 起的整数")
        else:
            raw["version"] = int(text)
    translations: dict[str, dict[str, str]] = {}
    for key, column in (("title", "form_title"), ("intro", "intro"), ("privacy", "privacy")):
        raw[key], others = importer.texts("settings", settings_row, settings, column)
        for lang, text in others.items():
            translations.setdefault(lang, {})[key] = text
    if not raw["title"] and raw["code"]:
        # As in XLSForm: the title defaults to the form's id.
        raw["title"] = raw["code"]
        importer.warn("settings", settings_row, "form_title", f"没有填写问卷标题（form_title），已使用问卷代码 \"{raw['code']}\"")
    if not raw["title"]:
        importer.error("settings", settings_row, "form_title", "缺少问卷标题（form_title）")
    minors = _yes(settings.get("minors", ""))
    if minors is None:
        importer.error("settings", settings_row, "minors", "minors 只能填 yes 或 no")
    raw["minors"] = bool(minors)
    raw["languages"] = importer.languages
    for lang, places in importer.untranslated.items():
        shown = "、".join(places[:3]) + ("等" if len(places) > 3 else "")
        importer.warn("", None, None, f"{len(places)} 处文字没有 {lang} 译文（{shown}）：选 {lang} 的受访者在这些地方看到的是"
                                      f"{importer.default_language}")
    if translations:
        raw["translations"] = translations
    raw["topics"] = list(topics.values())
    raw["sections"] = sections
    if errors:
        raise importer.failed()
    source_name = name or (Path(source).name if not isinstance(source, bytes) else f"{raw['code']}-v{raw['version']}.xlsx")
    try:
        definition = parse_definition(raw, source_name)
    except DefinitionError as exc:  # a rule the importer should have located: still say what it is
        raise XLSFormError([Located("survey", None, None, str(exc))], importer.listed_warnings()) from None
    return Imported(definition, raw, importer.listed_warnings())


def load_xlsform(source: bytes | str | Path, **options: Any) -> Definition:
    """Return the definition of an XLSForm workbook (see :func:`read_xlsform`)."""
    return read_xlsform(source, **options).definition


# export --------------------------------------------------------------------------------------


def _put(sheet: Any, rows: Iterable[list[Any]]) -> None:
    for row in rows:
        sheet.append(row)
    for cells in sheet.iter_rows():
        for cell in cells:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # text that merely starts with "=", not a formula


def _texts_columns(base: str, languages: tuple[str, ...]) -> list[str]:
    return [f"{base}::{lang}" for lang in languages]


def _text_values(texts: tuple[tuple[str, str], ...]) -> list[str | None]:
    return [text or None for _, text in texts]


def definition_to_xlsx(definition: Definition) -> bytes:
    """Return the definition as an XLSForm workbook; reading it back gives an equal definition.

    Every column the importer reads is written back: expressions in XLSForm syntax, the messages
    and hints in every language, ``or_other`` in place of the "other" choice and its text box.
    """
    languages = definition.languages
    book = openpyxl.Workbook()
    survey = book.active
    survey.title = "survey"
    choices, settings, topics = book.create_sheet("choices"), book.create_sheet("settings"), book.create_sheet("topics")
    lists: dict[tuple[Any, ...], str] = {}
    filter_columns = sorted({name for item in definition.elements for c in item.choices for name, _ in c.columns})
    choice_rows: list[list[Any]] = []
    survey_rows: list[list[Any]] = []
    header = ["type", "name", *_texts_columns("label", languages), *_texts_columns("hint", languages),
              "required", *_texts_columns("required_message", languages), "relevant", "constraint",
              *_texts_columns("constraint_message", languages), "choice_filter", "calculation", "default", "read_only",
              "appearance", "parameters", "kind", "topic", "attribute", "short"]
    blank = [None] * len(languages)
    for section in definition.sections:
        survey_rows.append(["begin group", section.code, *_text_values(section.titles), *blank, None, *blank,
                            None, None, *blank, None, None, None, None, section.appearance or None])
        for item in section.elements:
            if item.other_of is not None:
                continue  # written as the or_other of its question
            handler = item.handler
            shown = tuple(c for c in item.choices if c.code != OTHER) if item.has_other else item.choices
            if handler.xlsform_type not in ("select_one", "select_multiple"):
                kind = handler.xlsform_type
            else:
                key = (item.type, tuple(shown))
                if key not in lists:
                    lists[key] = item.code
                    for c in shown:
                        columns = c.column_values
                        choice_rows.append([item.code, c.code, *_text_values(c.labels), *handler.xlsform_choice(c),
                                            "yes" if c.exclusive else None, *(columns.get(n) for n in filter_columns)])
                kind = f"{handler.xlsform_type} {lists[key]}" + (" or_other" if item.has_other else "")
            relevant = item.relevant
            survey_rows.append([
                kind, item.code, *_text_values(item.labels),
                *(_text_values(item.hints) if item.hints else blank),
                "yes" if item.required else None,
                *(_text_values(item.required_messages) if item.required_messages else blank),
                relevant.to_xlsform() if relevant else None,
                handler.xlsform_constraint(item),
                *(_text_values(item.constraint_messages) if item.constraint_messages else blank),
                item.choice_filter.to_xlsform() if item.choice_filter else None,
                item.calculation.to_xlsform() if item.calculation else None,
                item.default, "yes" if item.read_only else None, item.appearance or None,
                " ".join(f"{k}={number_text(Decimal(str(v)))}" for k, v in zip(("start", "end", "step"), item.range, strict=True))
                if item.range else None,
                item.kind, item.topic, item.attribute, item.short,
            ])
        survey_rows.append(["end group", section.code])
    _put(survey, [header, *survey_rows])
    _put(choices, [["list_name", "name", *_texts_columns("label", languages), "score", "yes", "exclusive", *filter_columns],
                   *choice_rows])
    others = languages[1:]
    _put(settings, [
        ["form_title", *(f"form_title::{lang}" for lang in others), "form_id", "version", "default_language",
         "intro", *(f"intro::{lang}" for lang in others), "privacy", *(f"privacy::{lang}" for lang in others), "minors"],
        [*_text_values(definition.titles), definition.code, str(definition.version), languages[0],
         *_text_values(definition.intros or tuple((lang, "") for lang in languages)),
         *_text_values(definition.privacies or tuple((lang, "") for lang in languages)),
         "yes" if definition.minors else "no"],
    ])
    _put(topics, [["name", *_texts_columns("label", languages)],
                  *([t.code, *_text_values(t.labels)] for t in definition.topics)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()

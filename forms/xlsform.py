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

- ``survey``: ``type`` = ``select_one LIST`` | ``text`` | ``note`` | ``begin group`` / ``end group``
  (and the ``xlsform_type`` of any other item type registered in ``forms.items.ITEM_TYPES``)
  (also ``begin_group`` / ``end_group``; one level: a group is a section; questions outside a group
  form a section of their own); ``name``; ``label`` / ``label::<language>`` (any number of
  languages); ``hint`` / ``hint::<language>``; ``required`` (yes/true/1, no/false/0/blank);
  ``relevant`` (see :mod:`forms.conditions`; a group's rule applies to each of its items);
  ``constraint`` only as ``string-length(.) <= N`` on text (the longest answer);
  our columns ``kind`` (awareness/support/participation/satisfaction), ``topic`` (named in the
  ``topics`` sheet), ``attribute`` (a respondent attribute for weighting, [a-z][a-z0-9_]*) and
  ``short`` (a short name for table headers).
- ``choices``: ``list_name`` (also the old spelling ``list name``), ``name``, ``label`` / ``label::<language>``, our ``score`` (0-100;
  blank = "don't know", left out of means) and ``yes`` (1/0/blank). A ``select_one`` whose list
  has scores is a ``rating`` item, one whose list has yes flags a ``yesno`` item, else ``choice``.
- ``settings``: ``form_title`` (and ``form_title::<language>``; the code when blank, as in XLSForm),
  ``form_id`` (the code; the file's name when blank and the name is a usable code),
  ``version`` (a whole number; 1 when blank), ``default_language``, our ``intro``, ``privacy``
  (each also ``::<language>``) and ``minors`` (yes/no).
- ``topics`` (ours): ``name``, ``label`` / ``label::<language>``.

The default language is settings' ``default_language``, else the first language of the survey
sheet; a plain ``label`` column is in the default language (中文 when none is named). Columns
that change nothing for us (``constraint_message``, ``media::image``, ``appearance``,
``guidance_hint``, unknown columns, ...) give a located warning and are ignored, as do ODK's
metadata rows (``start``, ``end``, ``today``, ``deviceid``, ``uri:deviceid``...), which ask nothing.
Texts that quote an answer (``${name}`` in a label or hint, which ODK fills in) are errors: the
phone would show the raw ``${name}``. Tested on the XLSForm project's own ODK spec test form.
"""
from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
from defusedxml import DefusedXmlException

from forms.common import DefinitionError
from forms.conditions import Condition, ExpressionError, join, parse_expression
from forms.definition import ATTRIBUTE_NAME, KINDS, Definition, parse_definition
from forms.items import ITEM_TYPES
from forms.xlsx_reader import TooLarge, XlsxReader

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
SHEETS = ("survey", "choices", "settings", "topics")
# Far above any questionnaire fielded on a phone, and what keeps the checks of an upload (and the
# page listing its messages) short whatever the file holds. Rows are those with a value.
MAX_ROWS = 2_000  # in each sheet but choices
MAX_CHOICES = 5_000  # rows of the choices sheet; also the choices of all questions together
MAX_COLUMNS = 100  # named columns of a sheet
MAX_EXPRESSION = 1_000  # characters of a relevant expression
MAX_MESSAGES = 200  # errors (and warnings) listed; the others are counted in one last line
ENTITIES = ("文件中含有 XML 实体或文档类型声明（DTD），Excel 和 WPS 保存的文件不会有这些内容，已拒绝。"
            "请用 Excel 或 WPS 重新保存为 .xlsx 后再上传。")
SELECT_ONE = re.compile(r"select_one\s+(\S+)(\s+or_other)?\Z")
YES = {"yes", "true", "1", "true()"}
NO = {"no", "false", "0", "false()", ""}
# Columns whose value changes what is asked or stored: refused when filled in.
SURVEY_REFUSED = {
    "calculation": "不支持计算（calculation）",
    "choice_filter": "不支持选项筛选（choice_filter）",
    "repeat_count": "不支持重复组（repeat_count）",
    "default": "不支持默认答案（default）",
    "read_only": "不支持只读题（read_only）",
    "trigger": "不支持触发计算（trigger）",
}
SURVEY_COLUMNS = {"type", "name", "label", "hint", "required", "relevant", "constraint", "kind", "topic", "attribute", "short"}
CHOICES_COLUMNS = {"list_name", "name", "label", "score", "yes"}
SETTINGS_COLUMNS = {"form_title", "form_id", "version", "default_language", "intro", "privacy", "minors"}
TOPICS_COLUMNS = {"name", "label"}
TRANSLATED = {"label", "hint", "form_title", "intro", "privacy"}
# ODK metadata that the phone records by itself: asks nothing, so ignoring it changes nothing.
PIPED = re.compile(r"\$\{[^${}]*\}")  # as conditions.TOKEN: linear on a text of repeated "${"
METADATA = {"start", "end", "today", "deviceid", "username", "phonenumber", "simserial", "subscriberid", "email", "audit"}
UNSUPPORTED_TYPES = {
    "begin repeat": "不支持重复组（begin repeat）", "begin_repeat": "不支持重复组（begin repeat）",
    "end repeat": "不支持重复组（end repeat）", "end_repeat": "不支持重复组（end repeat）",
}


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
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


# Older spellings that XLSForm tools still accept, read as their current names.
COLUMN_ALIASES = {"list name": "list_name"}


def _column_key(header: str) -> str:
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
        for column, text in ((base, plain), (f"{base}::{self.default_language}", tagged),
                             *((f"{base}::{lang}", text) for lang, text in others.items())):
            if piped := PIPED.search(text):
                # ODK shows the earlier answer here; we would show the raw ${...} to residents.
                self.error(sheet, number, column, f"不支持在文字中引用答案（{piped.group(0)}），请改写这段文字")
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
        for number, cells in sheet.rows:
            self.check_columns(sheet, CHOICES_COLUMNS, {}, number, cells)
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
        group: dict[str, Any] | None = None  # the open section
        group_rule: Condition | None = None
        names: dict[str, int] = {}
        questions: dict[str, dict[str, Any]] = {}
        attributes: dict[str, int] = {}
        used_lists: set[str] = set()
        # The types besides select_one, by their XLSForm name (text, note, and any type registered).
        plain = {t.xlsform_type: t.name for t in ITEM_TYPES.values() if t.xlsform_type != "select_one"}

        def name_of(number: int, cells: dict[str, str], what: str) -> str | None:
            name = cells.get("name", "")
            if not name:
                self.error("survey", number, "name", f"缺少{what}名称（name）")
                return None
            if not NAME.match(name):
                self.error("survey", number, "name", f"名称 \"{name}\" 只能用英文字母、数字、_、-、.，并以字母或 _ 开头")
                return None
            if name in names:
                self.error("survey", number, "name", f"名称 \"{name}\" 与第{names[name]}行重复")
                return None
            names[name] = number
            return name

        for number, cells in sheet.rows:
            self.check_columns(sheet, SURVEY_COLUMNS, SURVEY_REFUSED, number, cells)
            kind = re.sub(r"\s+", " ", cells.get("type", "")).strip()
            lowered = kind.lower()
            if lowered in ("begin group", "begin_group"):
                if group is not None and group["explicit"]:
                    self.error("survey", number, "type", f"不支持嵌套分组（第{group['row']}行的分组尚未结束）")
                    continue
                name = name_of(number, cells, "分组")
                title, others = self.texts("survey", number, cells, "label")
                group = {"code": name or f"group{number}", "title": title, **_translations(others, "title"),
                         "items": [], "explicit": True, "row": number}
                sections.append(group)
                group_rule = self.rule(number, cells, questions) if cells.get("relevant") else None
                for column in ("required", "kind", "topic", "attribute", "constraint"):
                    if cells.get(column):
                        self.error("survey", number, column, f"分组不能设置 {column}")
                continue
            if lowered in ("end group", "end_group"):
                if group is None or not group["explicit"]:
                    self.error("survey", number, "type", "end group 没有对应的 begin group")
                else:
                    if not group["items"]:
                        self.error("survey", group["row"], "type", "分组中没有题目")
                    group, group_rule = None, None
                continue
            if not kind:
                self.error("survey", number, "type", "缺少题型（type）")
                continue
            select = SELECT_ONE.match(kind)
            if lowered in UNSUPPORTED_TYPES and lowered not in plain:
                self.error("survey", number, "type", UNSUPPORTED_TYPES[lowered])
                continue
            if lowered.removeprefix("uri:") in METADATA:
                self.warn("survey", number, "type", f"自动记录字段 \"{kind}\" 本平台不使用，已忽略")
                continue
            if not (select or lowered in plain):
                self.error("survey", number, "type",
                           f"不支持的题型 \"{kind.split()[0]}\"（支持 select_one、{'、'.join(plain)}、begin group/end group）")
                continue
            if select and select.group(2):
                self.error("survey", number, "type", f"不支持 or_other（\"{kind}\"）：请把“其他”作为普通选项")
                continue
            name = name_of(number, cells, "题目")
            label, others = self.texts("survey", number, cells, "label")
            hint, hint_others = self.texts("survey", number, cells, "hint")
            if not label:
                self.error("survey", number, self.column_of("survey", "label"), "缺少题目文字")
            item: dict[str, Any] = {"code": name or f"row{number}", "label": label}
            if hint:
                item["hint"] = hint
            translations = _translations(others, "label")["translations"] if others else {}
            for lang, text in hint_others.items():
                translations.setdefault(lang, {})["hint"] = text
            if translations:
                item["translations"] = translations
            if select:
                self.select_one(number, cells, item, select.group(1), lists, used_lists)
            else:
                item["type"] = plain[lowered]
            asks = ITEM_TYPES[item["type"]].question
            self.extras(number, cells, item, topics, attributes)
            item["required"] = self.required(number, cells) if asks else False
            if not asks and cells.get("required"):
                self.warn("survey", number, "required", "说明文字（note）不需要作答，required 已忽略")
            rule = self.rule(number, cells, questions) if cells.get("relevant") else None
            rule = join("and", [r for r in (group_rule, rule) if r is not None]) if group_rule or rule else None
            if rule is not None:
                item["relevant"] = rule.to_dict()
            if group is None:
                group = {"code": _free_code(names, len(sections) + 1), "title": "", "items": [], "explicit": False, "row": number}
                sections.append(group)
            group["items"].append(item)
            if asks and name:
                questions[name] = item
        if group is not None and group["explicit"]:
            self.error("survey", group["row"], "type", "begin group 没有对应的 end group")
        for list_name in sorted(set(lists) - used_lists):
            self.warn("choices", lists[list_name]["rows"][0] if lists[list_name]["rows"] else None, "list_name",
                      f"选项列表 \"{list_name}\" 没有题目使用")
        if not sheet.rows:
            self.error("survey", None, None, "survey 表中没有题目")
        for section in sections:
            del section["explicit"], section["row"]
        return sections

    def select_one(self, number: int, cells: dict[str, str], item: dict[str, Any], list_name: str,
                   lists: dict[str, dict[str, Any]], used: set[str]) -> None:
        entry = lists.get(list_name)
        if entry is None:
            where = "choices 表中" if "choices" in self.sheets else "（缺少 choices 工作表）"
            self.error("survey", number, "type", f"选项列表 \"{list_name}\" 不存在{where}")
            item["type"] = "choice"
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
        if entry["scores"] and not entry["yes"]:
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
        if not choices:
            self.error("survey", number, "type", f"选项列表 \"{list_name}\" 没有选项")
        item["choices"] = choices

    def extras(self, number: int, cells: dict[str, str], item: dict[str, Any],
               topics: dict[str, dict[str, Any]], attributes: dict[str, int]) -> None:
        kind, topic, attribute, short = (cells.get(c, "") for c in ("kind", "topic", "attribute", "short"))
        handler = ITEM_TYPES[item["type"]]
        asks_choice = handler.needs_choices
        try:
            item.update(handler.read_xlsform(cells.get("constraint", "")))
        except ValueError as exc:
            self.error("survey", number, "constraint", str(exc))
        if kind:
            if kind not in KINDS:
                self.error("survey", number, "kind", f"kind 应是 {'、'.join(KINDS)} 之一，而不是 \"{kind}\"")
            elif not asks_choice:
                self.error("survey", number, "kind", "kind 只用于选择题")
            else:
                item["kind"] = kind
        if topic:
            if not asks_choice:
                self.error("survey", number, "topic", "topic 只用于选择题")
            elif topic not in topics:
                self.error("survey", number, "topic", f"主题 \"{topic}\" 没有列在 topics 表中")
            else:
                item["topic"] = topic
        if attribute:
            if not asks_choice:
                self.error("survey", number, "attribute", "只有选择题（select_one）可以作为受访者属性")
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

    def rule(self, number: int, cells: dict[str, str], questions: dict[str, dict[str, Any]]) -> Condition | None:
        text = cells["relevant"]
        if len(text) > MAX_EXPRESSION:
            self.error("survey", number, "relevant", f"条件太长（{len(text)} 个字符）：最多 {MAX_EXPRESSION} 个字符，请简化这条条件")
            return None
        try:
            condition = parse_expression(text)
        except ExpressionError as exc:
            self.error("survey", number, "relevant", str(exc))
            return None
        ok = True
        for leaf in condition.comparisons():
            target = questions.get(leaf.item)
            if target is None:
                self.error("survey", number, "relevant", f"条件引用的题目 ${{{leaf.item}}} 不存在或不在本题之前")
                ok = False
            elif "choices" in target and leaf.value not in self.choice_codes(leaf.item, target):
                self.error("survey", number, "relevant", f"题目 {leaf.item} 没有名为 \"{leaf.value}\" 的选项")
                ok = False
            elif leaf.op == "selected" and "choices" not in target:
                self.error("survey", number, "relevant", f"selected() 只能用于选择题，{leaf.item} 是填空题")
                ok = False
            elif "'" in leaf.value and '"' in leaf.value:
                self.error("survey", number, "relevant", "选项名称不能同时含单引号和双引号")
                ok = False
        return condition if ok else None

    def choice_codes(self, name: str, question: dict[str, Any]) -> set[str]:
        """Return the codes of a question's choices (worked out once per question)."""
        if name not in self.codes:
            self.codes[name] = {c["code"] for c in question["choices"]}
        return self.codes[name]


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
        if sheet not in SHEETS:
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
    if translations:
        raw["translations"] = translations
    raw["topics"] = list(topics.values())
    raw["sections"] = sections
    if sections and not any(ITEM_TYPES[i["type"]].scored for s in sections for i in s["items"]):
        importer.error("survey", None, None, "问卷中没有计分题（选项带 score 的 select_one）")
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
    """Return the definition as an XLSForm workbook; reading it back gives an equal definition."""
    languages = definition.languages
    book = openpyxl.Workbook()
    survey = book.active
    survey.title = "survey"
    choices, settings, topics = book.create_sheet("choices"), book.create_sheet("settings"), book.create_sheet("topics")
    lists: dict[tuple[Any, ...], str] = {}
    choice_rows: list[list[Any]] = []
    survey_rows: list[list[Any]] = []
    header = ["type", "name", *_texts_columns("label", languages), *_texts_columns("hint", languages),
              "required", "relevant", "constraint", "kind", "topic", "attribute", "short"]
    blank_hints = [None] * len(languages)
    for section in definition.sections:
        survey_rows.append(["begin group", section.code, *_text_values(section.titles), *blank_hints])
        for item in section.elements:
            handler = item.handler
            if handler.xlsform_type != "select_one":
                kind = handler.xlsform_type
            else:
                key = (item.type, tuple(item.choices))
                if key not in lists:
                    lists[key] = item.code
                    for c in item.choices:
                        choice_rows.append([item.code, c.code, *_text_values(c.labels), *handler.xlsform_choice(c)])
                kind = f"select_one {lists[key]}"
            survey_rows.append([
                kind, item.code, *_text_values(item.labels),
                *(_text_values(item.hints) if item.hints else blank_hints),
                "yes" if item.required else None,
                item.relevant.to_xlsform() if item.relevant else None,
                handler.xlsform_constraint(item),
                item.kind, item.topic, item.attribute, item.short,
            ])
        survey_rows.append(["end group", section.code])
    _put(survey, [header, *survey_rows])
    _put(choices, [["list_name", "name", *_texts_columns("label", languages), "score", "yes"], *choice_rows])
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

"""What the phone page needs to show a questionnaire: texts in the respondent's language, piped
labels, choice lists cut by their filters, and what static/form.js reads from data attributes.

The view makes one :class:`PhonePage` per rendering; the templates (public/questionnaire.html and
public/_items.html) ask it for every text, so no template switches on a language or a type's name.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

from forms import Definition
from forms.definition import Choice, Item, in_language, is_english
from forms.items import ImageItem, RangeItem
from survey import answer_photos

# survey/static/expr.js (the expression engine in the browser) is shipped with the app or not: looked at once.
EXPR_JS = (Path(__file__).resolve().parent.parent / "static" / "expr.js").is_file()
LANGUAGE_TAG = re.compile(r"\(([A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*)\)\s*\Z")

# The page's own words besides the questionnaire's, for a respondent reading English.
ENGLISH = {
    "隐私说明：": "Privacy: ", "提交问卷": "Submit", "带 * 的题目为必答题。": "Questions marked * must be answered.",
    "确认": "OK", "纬度": "Latitude", "经度": "Longitude", "获取当前位置": "Use my location", "— 请选择 —": "— Choose —",
    "更新选项": "Update the choices", "语言": "Language",
    "还有 {0} 题需要处理": "{0} questions need your attention", "，已填写的回答都已保留。请点击题号前往：": ". Your answers are kept. Go to:",
    "第{0}题": "Question {0}", "所在社区": "Your community", "照片已上传；重新选择可替换": "Photo received; choose again to replace it",
    "提交成功": "Thank you", "感谢{0}参与“{1}”！{0}的意见将用于查找问题、改进工作。":
        "Thank you for taking part in “{1}”. Your answers help find problems and improve our work.",
    "这份问卷此前已经收到，无需重复提交。": "We had already received this questionnaire: there is no need to send it again.",
    "{0}可以关闭本页面。": "You can close this page now.",
    "这台手机（电脑）此前已经提交过这份问卷，这一份不计入统计（同一台手机只计第一份）。":
        "This phone has answered this questionnaire before: this answer will not be counted (a phone's first answer counts).",
}
# What the server says of an answer (forms' messages), for a respondent reading English. A question's
# own required_message / constraint_message is taken in the page's language from the questionnaire.
MESSAGES_ENGLISH = {
    "请选择一项": "Please choose one.", "请从列出的选项中选择一项": "Please choose one of the listed options.",
    "请至少选择一项": "Please choose at least one.", "请填写此项": "Please answer this question.",
    "请填写整数": "Please enter a whole number.", "请填写数字": "Please enter a number.", "请勾选此项": "Please tick this box.",
    "这个选项与前面的回答不符，请重新选择": "This choice does not fit an earlier answer: please choose again.",
    "请拍摄或选择一张照片": "Please take or choose a photo.", "照片没有上传成功，请重新选择": "The photo did not arrive: please choose it again.",
    "格式不对，请重新填写": "Please check how this is written.", "答案不符合要求": "This answer is not allowed.",
    "请填写有效日期，如 2026-12-08": "Please enter a valid date, e.g. 2026-12-08.",
    "请填写有效时间，如 08:30": "Please enter a valid time, e.g. 08:30.",
    "请填写有效的日期和时间，如 2026-12-08 08:30": "Please enter a valid date and time, e.g. 2026-12-08 08:30.",
    "请填写有效的位置：纬度（-90到90）和经度（-180到180）": "Please enter a valid place: latitude (-90 to 90) and longitude (-180 to 180).",
    "内容中含有无法识别的特殊字符，请删除后重试": "The text holds a character that cannot be kept: please remove it.",
}
MESSAGE_PATTERNS_ENGLISH = (
    (re.compile(r"选了“(.+)”就不能再选其他选项\Z"), "“{0}” cannot be chosen with other choices."),
    (re.compile(r"请不要超过(\d+)个字\Z"), "Please write at most {0} characters."),
    (re.compile(r"请填写(-?[\d.]+)到(-?[\d.]+)之间的数(?:（每次([\d.]+)）)?\Z"), "Please enter a number from {0} to {1}."),
)
# What static/form.js says, for a respondent reading English (the form's data-ui; Chinese needs none).
SCRIPT_ENGLISH = {
    "上一页": "Back", "下一页": "Next", "第{0}页，共{1}页": "Page {0} of {1}", "已答题目": "Answered",
    "已答 {0} 题，共 {1} 题": "{0} of {1} answered", "已恢复您上次未提交的回答。": "Your unsent answers are back.",
    "清空": "Clear", "关闭提示": "Close", "请先回答": "Please answer first: ", "请填写整数": "Please enter a whole number",
    "请填写数字": "Please enter a number", "正在获取位置…": "Finding your location…",
    "已获取位置（误差约{0}米）": "Location found (within about {0} m)",
    "无法获取位置，请手动填写，或跳过此题": "Could not find your location: type it, or skip this question",
}


def html_lang(language: str | None) -> str:
    """Return the ``lang`` attribute of a page in a questionnaire language (``English (en)`` -> en).

    >>> html_lang("中文"), html_lang("English"), html_lang("Tibetan (bo)"), html_lang(None)
    ('zh-CN', 'en', 'bo', 'zh-CN')
    """
    if not language:
        return "zh-CN"
    tag = LANGUAGE_TAG.search(language)
    if tag:
        return "zh-CN" if tag.group(1).lower() == "zh" else tag.group(1)
    return "en" if is_english(language) else "zh-CN"


def pick_language(definition: Definition, asked: str | None) -> str | None:
    """Return the language a respondent asked for when the questionnaire has it (None: the default)."""
    if asked and asked in definition.languages[1:]:
        return asked
    return None


@dataclass
class PhonePage:
    """One rendering of the questionnaire: its language, the answers shown and the city's date."""

    definition: Definition
    answers: Mapping[str, str | None] = field(default_factory=dict)
    language: str | None = None
    today: date | None = None
    returned: bool = False  # shown again after a POST: the page holds what was sent (form.js keeps no draft over it)
    fixed: Mapping[str, str | None] = field(default_factory=dict)  # answers the link gives (a class's grade band)

    @property
    def lang(self) -> str:
        return html_lang(self.language or self.definition.languages[0])

    @property
    def script_words(self) -> str:
        """Return form.js's words in the page's language as JSON ("" when they are its own, Chinese)."""
        return json.dumps(SCRIPT_ENGLISH, ensure_ascii=False) if self.lang == "en" else ""

    def ui(self, text: str) -> str:
        """Return one of the page's own words in the page's language."""
        return ENGLISH.get(text, text) if self.lang == "en" else text

    def message(self, code: str, text: str) -> str:
        """Return the server's message about question ``code``'s answer in the page's language.

        The question's own messages come from the questionnaire in that language; the platform's
        are translated for English (others read them in Chinese).
        """
        if not self.language:
            return text
        try:
            item = self.definition.item(code)
        except KeyError:
            item = None
        if item is not None:
            for texts in (item.required_messages, item.constraint_messages):
                if texts and text == in_language(texts, None) and in_language(texts, self.language) != text:
                    return in_language(texts, self.language)
        if self.lang != "en":
            return text
        if text in MESSAGES_ENGLISH:
            return MESSAGES_ENGLISH[text]
        for pattern, english in MESSAGE_PATTERNS_ENGLISH:
            if found := pattern.match(text):
                return english.format(*found.groups())
        return text

    def messages(self, errors: Mapping[str, str]) -> dict[str, str]:
        return {code: self.message(code, text) for code, text in errors.items()}

    def asked_when(self, item: Item) -> str:
        """Return the line beside a follow-up question saying when to answer it."""
        if self.lang == "en":
            return "(Answer only if it applies, given your earlier answers.)"
        return f"（{self.definition.asked_when(item)}的请回答）"

    @cached_property
    def languages(self) -> list[tuple[str, str | None, str, bool]]:
        """Return (name, ``lang`` query value or None, its tag, whether it is shown now) per language (none for one)."""
        names = self.definition.languages
        if len(names) < 2:
            return []
        current = self.language or names[0]
        return [(name, name if n else None, html_lang(name), name == current) for n, name in enumerate(names)]

    @cached_property
    def expr_js(self) -> bool:
        return EXPR_JS

    @cached_property
    def has_image(self) -> bool:
        return any(item.handler.fragment == "image" for item in self.definition.items)

    def title(self) -> str:
        return in_language(self.definition.titles, self.language)

    def intro(self) -> str:
        return in_language(self.definition.intros, self.language)

    def privacy(self) -> str:
        return in_language(self.definition.privacies, self.language)

    def section_title(self, section: Any) -> str:
        return section.title_in(self.language)

    def pieces(self, text: str) -> list[tuple[str, str | None]]:
        """Return a label cut at its ``${q}``: (text, None) or (the answer or its placeholder, the code)."""
        if "${" not in text:
            return [(text, None)]
        return [(literal, None) if code is None else
                (self.definition.display(code, self.answers.get(code), self.language) or self.placeholder(code), code)
                for literal, code in self.definition.pieces(text)]

    def placeholder(self, code: str) -> str:
        """Return what stands for an answer not given yet in a label that quotes it."""
        if self.lang == "en" and self.definition.is_numbered(code):
            return f"(your answer to question {self.definition.number_of(code)})"
        return f"（{self.definition.question_name(code)}的回答）"

    def label(self, item: Item) -> list[tuple[str, str | None]]:
        return self.pieces(item.label_in(self.language))

    def hint(self, item: Item) -> list[tuple[str, str | None]]:
        return self.pieces(item.hint_in(self.language))

    def choice_label(self, choice: Choice) -> str:
        return choice.label_in(self.language)

    def required_message(self, item: Item) -> str:
        return in_language(item.required_messages, self.language) or item.handler.missing

    def constraint_message(self, item: Item) -> str:
        """Return what the server says when the constraint fails (its message, else the engine's own)."""
        if item.constraint is None:
            return ""
        return in_language(item.constraint_messages, self.language) or item.constraint_default

    def choices(self, item: Item) -> list[Choice]:
        """Return the choices a plain choice question shows: only the link's own answer when the link gives it."""
        given = self.fixed.get(item.code)
        own = [c for c in item.choices if given and c.code == given]
        return own or list(item.choices)

    def offered(self, item: Item) -> tuple[list[tuple[str, list[Choice]]], list[Choice]]:
        """Return a filtered question's (groups of choices shown, choices kept back for form.js).

        Once the answers its filter reads are given, only the choices passing it are shown (one
        group without a name) and the others are kept back; before, every choice is shown, grouped
        by the answer they belong to when the filter compares one column with one answer.
        """
        if item.filter_ready(self.answers):
            shown = set(item.choices_for(self.answers, self.today))
            return [("", [c for c in item.choices if c in shown])], [c for c in item.choices if c not in shown]
        groups: dict[str, list[Choice]] = {}
        column, source = self._grouping(item)
        for choice in item.choices:
            key = choice.column_values.get(column, "") if column else ""
            groups.setdefault(key, []).append(choice)
        named = []
        for key, choices in groups.items():
            owner = self.definition.item(source).choice(key) if source and key else None
            named.append((owner.label_in(self.language) if owner else key, choices))
        return named, []

    def _grouping(self, item: Item) -> tuple[str | None, str | None]:
        expr = item.choice_filter
        if expr is None:
            return None, None
        columns = sorted(getattr(expr, "columns", frozenset)())  # the stand-in engine names none
        references = sorted(expr.references())
        return (columns[0], references[0]) if len(columns) == 1 and len(references) == 1 else (None, None)

    def waiting_for(self, item: Item) -> str:
        """Return "第N题" of the first unanswered question a filter reads ("" when none)."""
        if item.choice_filter is None:
            return ""
        missing = [code for code in item.choice_filter.references() if not self.answers.get(code)]
        return min((self.definition.question_name(code) for code in missing), key=_number, default="")

    def filter_numbers(self, item: Item) -> str:
        """Return {code: "第N题"} of the questions a choice filter reads, for form.js (JSON text)."""
        if item.choice_filter is None:
            return "{}"
        return json.dumps({code: self.definition.question_name(code) for code in sorted(item.choice_filter.references())},
                          ensure_ascii=False)

    @staticmethod
    def range_values(item: Item) -> list[str]:
        """Return a range's values when a row of buttons shows them (at most 11), else none (a number box)."""
        values = item.handler.values(item) if isinstance(item.handler, RangeItem) else []
        return values if len(values) <= 11 else []

    @staticmethod
    def geopoint(value: str | None) -> tuple[str, str]:
        parts = (value or "").split()
        return (parts[0] if parts else "", parts[1] if len(parts) > 1 else "")

    @staticmethod
    def carried_photo(value: str | None) -> str:
        """Return a photo already received, signed for the page shown again ("" for none)."""
        return answer_photos.carried(value) if value and ImageItem.STORED.match(value) else ""

    @staticmethod
    def in_table(item: Item) -> bool:
        """Return whether a table-list group shows the item as a row of its grid (a plain list of choices)."""
        return item.handler.fragment == "choice" and not item.choice_filter and "minimal" not in item.appearances

    @staticmethod
    def shown(item: Item) -> bool:
        """Return whether the page shows the item (a calculated value is never shown)."""
        return not item.handler.computed


def _number(name: str) -> int:
    found = re.search(r"\d+", name)
    return int(found.group()) if found else 10**6

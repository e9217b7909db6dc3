"""Questionnaire definitions: versioned data (XLSForm files, stored as dicts), validated on load.

A definition has sections of items. Every item has a ``type`` that is one of the classes in
``ITEM_TYPES``; the type validates the item, checks a submitted answer and says what an answer
stores (choice code, score, free text). A ``note`` is shown but asks nothing: it is not a question,
is not numbered and stores nothing.

Scored items (``rating``) give every choice a ``score``; a "don't know" choice has
``"score": null`` and is left out of the respondent's mean. Yes-type items (``yesno``) mark
choices with ``"yes": true / false / null`` for awareness, support and participation rates.

The dict format (what :func:`parse_definition` accepts and the database stores)::

    {"code", "version", "title", "intro", "privacy", "minors",
     "languages": ["中文", "English"],              # the first is the default language
     "translations": {LANG: {"title", "intro", "privacy"}},
     "topics": [{"code", "label", "translations": {LANG: {"label"}}}],
     "sections": [{"code", "title", "translations": {LANG: {"title"}}, "items": [
         {"code", "type", "label", "hint", "translations": {LANG: {"label", "hint"}},
          "required", "max_length", "kind", "topic", "attribute", "short",
          "relevant": {"op": "=", "item": CODE, "value": CHOICE} | {"op": "and", "args": [...]},
          "choices": [{"code", "label", "translations": {LANG: {"label"}}, "score", "yes"}]}]}]}

Plain keys (``title``, ``label``, ``hint``...) hold the default language; ``translations`` the
others. A dict without ``languages`` is the first format (stored by early databases): its
languages are 中文 and English, its English texts are ``title_en`` / ``label_en``, its topics are
named by ``TOPIC_NAMES`` and ``required`` defaults to true except for text.
"""
from __future__ import annotations

import copy
import functools
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from forms.conditions import Condition, condition_from_dict

DEFINITIONS = Path(__file__).parent / "definitions"
KINDS = ("awareness", "support", "participation", "satisfaction")
KIND_NAMES = {"awareness": "知晓率", "support": "支持率", "participation": "参与率", "satisfaction": "满意度"}
# Topic names of the first definition format, which named no topics: used only for those.
TOPIC_NAMES = {
    "environment": "环境卫生", "public_order": "公共秩序", "traffic_order": "交通秩序", "public_services": "公共服务",
    "community_services": "社区服务", "volunteer_services": "志愿服务", "civility_publicity": "文明宣传",
    "government_services": "政务服务", "safety": "安全感", "overall": "总体评价",
    "school_life": "学校生活", "family": "家庭", "community": "社区环境", "online_life": "网络生活",
    "moral_education": "思想品德",
}
LEGACY_LANGUAGES = ("中文", "English")
# A respondent attribute (used for weighting) is named like a column: lower case, digits, underscores.
ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
REQUIRED_MESSAGE = "请选择一项"
INVALID_CHOICE_MESSAGE = "请从列出的选项中选择一项"
# Control characters other than tab and line breaks: refused in every text a person types, since
# no keyboard makes them and PostgreSQL cannot store NUL.
# Bidirectional embeddings, overrides and isolates (U+202A-E, U+2066-9) are refused too: typed
# into a comment they make it read backwards in staff lists and exports ("Trojan source").
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
CONTROL_MESSAGE = "内容中含有无法识别的特殊字符，请删除后重试"
# The one XLSForm constraint a text item takes: its greatest length.
MAX_LENGTH = re.compile(r"string-length\(\s*\.\s*\)\s*<=\s*(\d+)\Z")
FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
# Texts in every language of the definition, default first: ((language, text), ...).
Texts = tuple[tuple[str, str], ...]

def has_control_characters(text: str) -> bool:
    r"""Return True when ``text`` holds a control character other than tab, CR or LF, or a bidi control.

    >>> has_control_characters("楼道灯坏了\r\n两周"), has_control_characters("a\x00b")
    (False, True)
    >>> has_control_characters("路灯\u202e坏了"), has_control_characters("👨\u200d👩\u200d👧")  # bidi override; emoji joiner
    (True, False)
    """
    return CONTROL_CHARACTERS.search(text) is not None


def choice_number(raw: str) -> int | None:
    """Return the choice number a person typed (ASCII or full-width digits), else None.

    >>> choice_number("３"), choice_number("12"), choice_number("²"), choice_number("٣")
    (3, 12, None, None)
    """
    digits = raw.strip().translate(FULLWIDTH_DIGITS)
    return int(digits) if 0 < len(digits) <= 3 and digits.isascii() and digits.isdigit() else None


def is_english(language: str) -> bool:
    """Return whether a language name (as in ``label::English (en)``) means English.

    >>> is_english("English"), is_english("English (en)"), is_english("en"), is_english("中文")
    (True, True, True, False)
    """
    name = language.strip().lower()
    return name == "en" or name.startswith("english") or name.endswith("(en)")


def english_of(texts: Texts) -> str:
    """Return the English text of ``texts`` (the first language that is English), else ""."""
    return next((text for language, text in texts if is_english(language)), "")


class DefinitionError(ValueError):
    """A questionnaire definition that cannot be used; the message names the file and item."""


@dataclass(frozen=True)
class Choice:
    code: str
    labels: Texts
    score: float | None = None
    yes: bool | None = None

    @property
    def label(self) -> str:
        return self.labels[0][1]

    @property
    def label_en(self) -> str:
        return english_of(self.labels)


@dataclass(frozen=True)
class Topic:
    """A topic that scored items belong to: a heatmap column, named by the questionnaire."""

    code: str
    labels: Texts

    @property
    def name(self) -> str:
        return self.labels[0][1]


@dataclass(frozen=True)
class Item:
    code: str
    type: str
    labels: Texts
    choices: tuple[Choice, ...] = ()
    kind: str | None = None
    topic: str | None = None
    attribute: str | None = None
    required: bool = True
    max_length: int = 500
    short: str | None = None
    hints: Texts = ()
    relevant: Condition | None = None
    topic_name: str | None = None

    @property
    def handler(self) -> ItemType:
        return ITEM_TYPES[self.type]

    @property
    def label(self) -> str:
        """Return the label in the default language."""
        return self.labels[0][1]

    @property
    def label_en(self) -> str:
        return english_of(self.labels)

    @property
    def hint(self) -> str:
        """Return the hint in the default language ("" for none)."""
        return self.hints[0][1] if self.hints else ""

    @property
    def is_question(self) -> bool:
        """Return whether the item asks something (a note does not: no answer, no number)."""
        return self.handler.question

    @property
    def short_label(self) -> str:
        """Return the item's short name (for table headers): its own, its topic's, or its code."""
        return self.short or self.topic_name or self.code

    def choice(self, code: str) -> Choice | None:
        return self._choices_by_code.get(code)

    @cached_property
    def _choices_by_code(self) -> dict[str, Choice]:
        # Looked up for every answer of every submission: a dict, built once per item.
        return {c.code: c for c in self.choices}

    def is_relevant(self, answers: Mapping[str, str | None]) -> bool:
        """Return whether the item is asked given the earlier answers (its skip rule holds, or it has none)."""
        return self.relevant is None or self.relevant.evaluate(answers)

    def answer(self, value: str | None) -> tuple[str | None, float | None, str | None]:
        """Return what to store for a submitted value: (choice code, score, text)."""
        return self.handler.answer(self, value)

    def parse(self, raw: str | None) -> tuple[str | None, str | None]:
        """Return (the answer, or None; what is wrong with it, or None) for a submitted value."""
        return self.handler.parse(self, raw)


@dataclass(frozen=True)
class Section:
    code: str
    titles: Texts
    elements: tuple[Item, ...]

    @property
    def title(self) -> str:
        return self.titles[0][1]

    @property
    def title_en(self) -> str:
        return english_of(self.titles)

    @cached_property
    def items(self) -> tuple[Item, ...]:
        """Return the section's questions (its notes left out; worked out once: a submission asks often)."""
        return tuple(item for item in self.elements if item.is_question)

    @cached_property
    def scored_items(self) -> tuple[Item, ...]:
        """Return the section's questions whose type gives a score (worked out once)."""
        return tuple(item for item in self.items if item.handler.scored)


@dataclass(frozen=True)
class Definition:
    code: str
    version: int
    titles: Texts
    sections: tuple[Section, ...]
    intros: Texts = ()
    privacies: Texts = ()
    minors: bool = False
    languages: tuple[str, ...] = LEGACY_LANGUAGES
    topics: tuple[Topic, ...] = ()
    source: str = field(default="", compare=False)

    @property
    def title(self) -> str:
        return self.titles[0][1]

    @property
    def title_en(self) -> str:
        return english_of(self.titles)

    @property
    def intro(self) -> str:
        return self.intros[0][1] if self.intros else ""

    @property
    def privacy(self) -> str:
        return self.privacies[0][1] if self.privacies else ""

    @cached_property
    def items(self) -> tuple[Item, ...]:
        """Return the questions in order (notes left out): what is answered, stored and numbered.

        Worked out once per definition (definitions never change): every submission walks them
        several times.
        """
        return tuple(item for section in self.sections for item in section.items)

    @cached_property
    def elements(self) -> tuple[Item, ...]:
        """Return every item in order, notes included: what a page shows."""
        return tuple(item for section in self.sections for item in section.elements)

    def item(self, code: str) -> Item:
        """Return the item (question or note) of this code; KeyError when there is none."""
        return self._elements_by_code[code]

    @cached_property
    def _elements_by_code(self) -> dict[str, Item]:
        # Looked up for every leaf of every skip rule a page describes: a dict, not a walk of the items.
        return {item.code: item for item in self.elements}

    def number_of(self, code: str) -> int:
        """Return the item's question number as shown to respondents (from 1)."""
        return self._numbers[code]

    @cached_property
    def _numbers(self) -> dict[str, int]:
        return {item.code: n for n, item in enumerate(self.items, start=1)}

    def asked_when(self, item: Item) -> str:
        """Return, in plain Chinese, when a follow-up question is asked ("" for an item without a skip rule).

        E.g. "第3题选“是”": pages show it as "（第3题选“是”的请回答）" where no script hides the question.

        >>> from forms.conditions import parse_expression
        >>> citizen = bundled_definitions()[("citizen", 1)]
        >>> citizen.asked_when(Item("x", "text", (("中文", "x"),), relevant=parse_expression("${resident} = 'Y'")))
        '第3题选“是”'
        """
        if item.relevant is None:
            return ""

        def label(code: str, value: str) -> str | None:
            target = self.item(code)
            if not target.choices:
                return None
            choice = target.choice(value)
            return choice.label if choice is not None else value

        return item.relevant.describe(lambda code: f"第{self.number_of(code)}题", label)

    @property
    def topic_names(self) -> dict[str, str]:
        """Return {topic code: name in the default language}, in the questionnaire's order."""
        return {topic.code: topic.name for topic in self.topics}

    @cached_property
    def column_names(self) -> dict[str, str]:
        """Return {scored item code: its column name in heatmaps and problem lists}.

        An item's short name, else its topic's name (from the questionnaire's ``topics``), else
        its code; items that would share a name are told apart by their question number.

        >>> list(bundled_definitions()[("minor", 2)].column_names.values())[:3]
        ['学校生活（第2题）', '学校生活（第3题）', '家庭（第4题）']
        """
        names = {item.code: item.short_label for item in self.scored_items}
        shared = {name for name, count in Counter(names.values()).items() if count > 1}
        return {code: f"{name}（第{self.number_of(code)}题）" if name in shared else name for code, name in names.items()}

    @property
    def attributes(self) -> dict[str, str]:
        """Return {respondent attribute name: item code} for the items marked as weighting attributes."""
        return dict(self.attribute_pairs)

    @cached_property
    def attribute_pairs(self) -> tuple[tuple[str, str], ...]:
        """Return (respondent attribute name, item code) pairs, worked out once (read by every submission)."""
        return tuple((i.attribute, i.code) for i in self.items if i.attribute)

    @property
    def scored_items(self) -> list[Item]:
        """Return the questions whose type gives a score (the respondent's mean, the heatmap's columns)."""
        return list(self._scored)

    @cached_property
    def _scored(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.handler.scored)

    @property
    def rate_items(self) -> list[Item]:
        """Return the questions whose type gives a yes-rate (awareness, support, participation)."""
        return [i for i in self.items if i.handler.rate]

    def choice_scores(self) -> dict[str, dict[str, float | None]]:
        """Return {item: {choice: score or None}} for the scored items."""
        return {i.code: {c.code: c.score for c in i.choices} for i in self.scored_items}

    def parse_submission(self, formdata: Mapping[str, str]) -> tuple[dict[str, str | None], dict[str, str]]:
        """Return (answers by item code, error message by item code) for submitted form fields.

        Each item's type checks its own value: no form library on the hot path of every answer.
        An item whose skip rule does not hold (given the earlier answers) is not asked: it is
        not required and whatever was submitted for it is dropped (None).

        >>> citizen = bundled_definitions()[("citizen", 1)]
        >>> answers, errors = citizen.parse_submission({"sex": "F", "q01": "9"})
        >>> answers["sex"], errors["q01"], errors["q02"], "comment" in errors
        ('F', '请从列出的选项中选择一项', '请选择一项', False)
        """
        answers: dict[str, str | None] = {}
        errors: dict[str, str] = {}
        for item in self.items:
            if not item.is_relevant(answers):
                answers[item.code] = None
                continue
            value, error = item.parse(formdata.get(item.code))
            answers[item.code] = value
            if error:
                errors[item.code] = error
        return answers, errors

    def submitted_values(self, formdata: Mapping[str, str]) -> dict[str, str | None]:
        """Return every question's submitted value as sent: what a page shown again keeps.

        Unlike :meth:`parse_submission` this keeps answers to follow-up questions whose rule
        does not hold (yet): a respondent who corrects an earlier answer loses nothing.
        """
        return {item.code: formdata.get(item.code) for item in self.items}

    def respondent_score(self, answers: dict[str, str | None]) -> tuple[float | None, int]:
        """Return the mean score over scored items answered with a scored choice, and how many."""
        scores = [
            choice.score
            for item in self._scored
            if (choice := item.choice(answers.get(item.code) or "")) is not None and choice.score is not None
        ]
        return (sum(scores) / len(scores) if scores else None), len(scores)


class ItemType:
    """Behaviour of one kind of question: validation, checking a submitted answer, what is stored,
    what the analysis and the exports make of it, and how XLSForm writes it.

    Adding a type is one subclass registered in ``ITEM_TYPES`` (see :func:`register`): nothing
    else switches on the type's name.
    """

    name: ClassVar[str]
    needs_choices: ClassVar[bool] = True
    question: ClassVar[bool] = True  # asks something: numbered, answered, stored
    required_by_default: ClassVar[bool] = True  # first definition format: "required" left out
    # The type's template fragment: the macro of this name in public/_items.html (the phone page)
    # and entry/_items.html (paper entry) shows an item of this type.
    fragment: ClassVar[str] = "choice"
    written: ClassVar[bool] = False  # answered in words: ruled lines on paper, a text box at entry
    scored: ClassVar[bool] = False  # its choices' scores make the respondent's score and heatmap columns
    rate: ClassVar[bool] = False  # its yes choices make a rate (awareness, support, participation)
    # How exports type its column: "choice" (codes with value labels) or "text".
    export_kind: ClassVar[str] = "choice"
    # Its XLSForm type: "select_one" (followed by its choice list's name) or a type of its own.
    xlsform_type: ClassVar[str] = "select_one"

    def value(self, choice: Choice) -> float | None:
        """Return what the analysis takes for an answer with this choice: a score, 1/0, or None (left out)."""
        return None

    def xlsform_choice(self, choice: Choice) -> tuple[float | None, int | None]:
        """Return a choice's ``score`` and ``yes`` cells in an exported XLSForm choices sheet."""
        return None, None

    def xlsform_constraint(self, item: Item) -> str | None:
        """Return the item's ``constraint`` cell in an exported XLSForm (None: none)."""
        return None

    def read_xlsform(self, constraint: str) -> dict[str, Any]:
        """Return the dict-format keys an XLSForm row's ``constraint`` cell ("" for none) gives an item.

        Raises ValueError with a message for the office (Chinese) for a constraint this type cannot use.
        """
        if constraint:
            raise ValueError(f"不支持的约束 \"{constraint}\"：只有填空题可以限制字数")
        return {}

    def check(self, raw: dict[str, Any], where: str) -> None:
        """Raise DefinitionError for anything this type cannot use."""
        if self.needs_choices:
            choices = raw.get("choices")
            if not isinstance(choices, list) or not choices:
                raise DefinitionError(f"{where}: empty choice list")
            seen: set[str] = set()
            duplicated: set[str] = set()
            for c in choices:
                if not isinstance(c, dict) or not str(c.get("code", "")).strip() or not str(c.get("label", "")).strip():
                    raise DefinitionError(f"{where}: every choice needs a code and a label")
                # A set, not codes.count(code) per choice: that was quadratic (4 s for 20,000 choices).
                code = str(c["code"])  # what the Choice keeps
                (duplicated if code in seen else seen).add(code)
            if duplicated:
                raise DefinitionError(f"{where}: duplicate choice code {sorted(duplicated)[0]!r}")

    def answer(self, item: Item, value: str | None) -> tuple[str | None, float | None, str | None]:
        if not value:
            return None, None, None
        choice = item.choice(value)
        return (choice.code, choice.score, None) if choice else (None, None, None)

    def parse(self, item: Item, raw: str | None) -> tuple[str | None, str | None]:
        """Check a submitted choice code: one of the item's choices, or nothing where allowed."""
        if not raw:
            return None, (REQUIRED_MESSAGE if item.required else None)
        return (raw, None) if item.choice(raw) is not None else (raw, INVALID_CHOICE_MESSAGE)

    def parse_typed(self, item: Item, raw: str) -> tuple[str | None, str | None]:
        """Check what a grid worker typed from a paper copy: the choice's printed number (from 1).

        Returns (choice code or None, message for the worker or None).
        """
        raw = raw.strip()
        if not raw:
            return None, ("未填写" if item.required else None)
        number = choice_number(raw)
        if number is None or not 1 <= number <= len(item.choices):
            return None, f"请输入1到{len(item.choices)}"
        return item.choices[number - 1].code, None


class ChoiceItem(ItemType):
    """A plain single choice without a score, e.g. a respondent attribute."""

    name = "choice"


class RatingItem(ItemType):
    """A scored single choice: every choice states its score; null means "don't know"."""

    name = "rating"
    scored = True

    def value(self, choice: Choice) -> float | None:
        return None if choice.score is None else float(choice.score)

    def xlsform_choice(self, choice: Choice) -> tuple[float | None, int | None]:
        return choice.score, None

    def check(self, raw: dict[str, Any], where: str) -> None:
        super().check(raw, where)
        for choice in raw["choices"]:
            if "score" not in choice:
                raise DefinitionError(f"{where}: choice {choice['code']!r} has no score (use null for don't know)")
            score = choice["score"]
            if score is not None and (isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 100):
                raise DefinitionError(f"{where}: choice {choice['code']!r} score must be a number from 0 to 100 or null")
        if all(c["score"] is None for c in raw["choices"]):
            raise DefinitionError(f"{where}: no choice carries a score")


class YesNoItem(ItemType):
    """A yes-type question for awareness, support or participation rates."""

    name = "yesno"
    rate = True

    def value(self, choice: Choice) -> float | None:
        return None if choice.yes is None else float(choice.yes)

    def xlsform_choice(self, choice: Choice) -> tuple[float | None, int | None]:
        return None, None if choice.yes is None else int(choice.yes)

    def check(self, raw: dict[str, Any], where: str) -> None:
        super().check(raw, where)
        flags = [c.get("yes", "missing") for c in raw["choices"]]
        if any(f not in (True, False, None) for f in flags):
            raise DefinitionError(f"{where}: every choice needs \"yes\": true, false or null")
        if True not in flags or False not in flags:
            raise DefinitionError(f"{where}: needs at least one yes choice and one no choice")


class TextItem(ItemType):
    """Free text, optional, bounded in length."""

    name = "text"
    needs_choices = False
    required_by_default = False
    fragment = "text"
    written = True
    export_kind = "text"
    xlsform_type = "text"

    def xlsform_constraint(self, item: Item) -> str | None:
        return f"string-length(.) <= {item.max_length}" if item.max_length != 500 else None

    def read_xlsform(self, constraint: str) -> dict[str, Any]:
        if not constraint:
            return {"max_length": 500}
        match = MAX_LENGTH.match(re.sub(r"\s+", " ", constraint).strip())
        if match is None or not 1 <= int(match.group(1)) <= 5000:
            raise ValueError(f"不支持的约束 \"{constraint}\"：填空题只支持 string-length(.) <= 字数（1 到 5000）")
        return {"max_length": int(match.group(1))}

    def check(self, raw: dict[str, Any], where: str) -> None:
        if raw.get("choices"):
            raise DefinitionError(f"{where}: a text item has no choices")
        length = raw.get("max_length", 500)
        if not isinstance(length, int) or not 1 <= length <= 5000:
            raise DefinitionError(f"{where}: max_length must be a whole number from 1 to 5000")

    def answer(self, item: Item, value: str | None) -> tuple[str | None, float | None, str | None]:
        text = (value or "").strip()
        return None, None, (text or None)

    def parse(self, item: Item, raw: str | None) -> tuple[str | None, str | None]:
        """Check submitted free text: length and no control characters; the text is kept as typed."""
        if not isinstance(raw, str) or not raw.strip():
            return None, ("请填写此项" if item.required else None)
        if len(raw) > item.max_length:
            return raw, f"请不要超过{item.max_length}个字"
        if has_control_characters(raw):
            return raw, CONTROL_MESSAGE
        return raw, None

    def parse_typed(self, item: Item, raw: str) -> tuple[str | None, str | None]:
        """Check text keyed in from paper: the words written on the copy."""
        raw = raw.strip()
        if not raw:
            return None, ("未填写" if item.required else None)
        if len(raw) > item.max_length:
            return raw, f"不超过{item.max_length}个字"
        if has_control_characters(raw):
            return raw, CONTROL_MESSAGE
        return raw, None


class NoteItem(ItemType):
    """Text shown between questions (an explanation, a heading): asks nothing, stores nothing."""

    name = "note"
    needs_choices = False
    question = False
    required_by_default = False
    fragment = "note"
    export_kind = "text"
    xlsform_type = "note"

    def check(self, raw: dict[str, Any], where: str) -> None:
        if raw.get("choices"):
            raise DefinitionError(f"{where}: a note has no choices")
        for key in ("kind", "topic", "attribute"):
            if raw.get(key) is not None:
                raise DefinitionError(f"{where}: a note has no {key}")

    def answer(self, item: Item, value: str | None) -> tuple[str | None, float | None, str | None]:
        return None, None, None

    def parse(self, item: Item, raw: str | None) -> tuple[str | None, str | None]:
        return None, None

    def parse_typed(self, item: Item, raw: str) -> tuple[str | None, str | None]:
        return None, None


ITEM_TYPES: dict[str, ItemType] = {t.name: t() for t in (ChoiceItem, RatingItem, YesNoItem, TextItem, NoteItem)}


def register(item_type: type[ItemType]) -> ItemType:
    """Add an item type (a class with a new ``name``) to ``ITEM_TYPES`` and return its instance."""
    if item_type.name in ITEM_TYPES:
        raise ValueError(f"item type {item_type.name!r} is already registered")
    ITEM_TYPES[item_type.name] = handler = item_type()
    return handler


class _Reader:
    """Reads the texts of one dict-format definition in every language (both formats)."""

    def __init__(self, raw: dict[str, Any], source: str) -> None:
        self.source = source
        self.legacy = "languages" not in raw
        if self.legacy:
            self.languages = LEGACY_LANGUAGES
        else:
            languages = raw["languages"]
            if (not isinstance(languages, list) or not languages
                    or not all(isinstance(x, str) and x.strip() for x in languages)
                    or len(set(languages)) != len(languages)):
                raise DefinitionError(f"{source}: languages must be a list of distinct language names")
            self.languages = tuple(languages)

    def texts(self, obj: dict[str, Any], key: str, where: str) -> Texts:
        """Return ``obj``'s ``key`` text in every language, default first ("" where missing)."""
        default = obj.get(key) or ""
        if self.legacy:
            others = {"English": obj.get(f"{key}_en") or ""}
        else:
            translations = obj.get("translations") or {}
            if not isinstance(translations, dict) or not all(
                lang in self.languages[1:] and isinstance(texts, dict) for lang, texts in translations.items()
            ):
                raise DefinitionError(f"{where}: translations must map the other languages to their texts")
            others = {lang: texts.get(key) or "" for lang, texts in translations.items()}
        out = ((self.languages[0], default),) + tuple((lang, others.get(lang, "")) for lang in self.languages[1:])
        if not all(isinstance(text, str) for _, text in out):
            raise DefinitionError(f"{where}: {key} must be text")
        return out


def _topics(raw: dict[str, Any], reader: _Reader) -> dict[str, Topic] | None:
    """Return the definition's topics by code, or None for a dict that names none (first format)."""
    if "topics" not in raw:
        return None
    if not isinstance(raw["topics"], list):
        raise DefinitionError(f"{reader.source}: topics must be a list")
    topics: dict[str, Topic] = {}
    for index, topic in enumerate(raw["topics"], start=1):
        code = str(topic.get("code") or "").strip() if isinstance(topic, dict) else ""
        where = f"{reader.source}: topic {code or index!r}"
        if not code or code in topics:
            raise DefinitionError(f"{where}: every topic needs its own code")
        labels = reader.texts(topic, "label", where)
        if not labels[0][1].strip():
            raise DefinitionError(f"{where}: missing label")
        topics[code] = Topic(code, labels)
    return topics


def _relevant(raw: Any, where: str, earlier: dict[str, Item]) -> Condition | None:
    if raw is None:
        return None
    try:
        condition = condition_from_dict(raw)
    except ValueError as exc:
        raise DefinitionError(f"{where}: {exc}") from None
    for leaf in condition.comparisons():
        target = earlier.get(leaf.item)
        if target is None:
            raise DefinitionError(f"{where}: relevant refers to {leaf.item!r}, which is not an earlier question")
        if target.choices and target.choice(leaf.value) is None:
            raise DefinitionError(f"{where}: relevant compares {leaf.item!r} with {leaf.value!r}, which is not one of its choices")
        if leaf.op == "selected" and not target.choices:
            raise DefinitionError(f"{where}: selected() needs a question with choices, not {leaf.item!r}")
    return condition


def parse_definition(raw: Any, source: str = "<definition>") -> Definition:
    """Validate a decoded definition (either dict format) and return it; errors name ``source`` and the item."""
    if not isinstance(raw, dict):
        raise DefinitionError(f"{source}: the definition must be a JSON object")
    for key in ("code", "version", "title", "sections"):
        if key not in raw:
            raise DefinitionError(f"{source}: missing {key!r}")
    if not isinstance(raw["version"], int) or isinstance(raw["version"], bool) or raw["version"] < 1:
        raise DefinitionError(f"{source}: version must be a whole number from 1")
    if not isinstance(raw["sections"], list) or not raw["sections"]:
        raise DefinitionError(f"{source}: no sections")
    reader = _Reader(raw, source)
    topics = _topics(raw, reader)
    used_topics: dict[str, Topic] = {}
    seen: set[str] = set()
    attributes: set[str] = set()
    earlier: dict[str, Item] = {}
    sections = []
    for s_index, section in enumerate(raw["sections"], start=1):
        if not isinstance(section, dict) or not isinstance(section.get("items"), list) or not section["items"]:
            raise DefinitionError(f"{source}: section {s_index} has no items")
        items = []
        for i_index, item in enumerate(section["items"], start=1):
            code = str(item.get("code", "")).strip() if isinstance(item, dict) else ""
            where = f"{source}: item {code!r}" if code else f"{source}: section {s_index} item {i_index}"
            if not code:
                raise DefinitionError(f"{where}: missing code")
            if code in seen:
                raise DefinitionError(f"{where}: duplicate item code")
            seen.add(code)
            kind = item.get("type")
            if kind not in ITEM_TYPES:
                raise DefinitionError(f"{where}: unknown type {kind!r} (known: {', '.join(ITEM_TYPES)})")
            handler = ITEM_TYPES[kind]
            for key in ("label", "label_en") if reader.legacy else ("label",):
                if not str(item.get(key, "")).strip():
                    raise DefinitionError(f"{where}: missing {key}")
            if item.get("kind") is not None and item["kind"] not in KINDS:
                raise DefinitionError(f"{where}: unknown kind {item['kind']!r}")
            attribute = item.get("attribute")
            if attribute is not None:
                if not isinstance(attribute, str) or not ATTRIBUTE_NAME.match(attribute):
                    raise DefinitionError(f"{where}: attribute {attribute!r} must be lower case letters, digits and _")
                if attribute in attributes:
                    raise DefinitionError(f"{where}: attribute {attribute!r} is given twice")
                if not handler.needs_choices:
                    raise DefinitionError(f"{where}: only an item with choices can be a respondent attribute")
                attributes.add(attribute)
            topic_name = None
            if (topic := item.get("topic")) is not None:
                if topics is None:  # first format: named by TOPIC_NAMES
                    used_topics.setdefault(topic, Topic(topic, tuple(
                        (lang, TOPIC_NAMES.get(topic, topic) if n == 0 else "") for n, lang in enumerate(reader.languages)
                    )))
                    topic_name = used_topics[topic].name
                elif topic not in topics:
                    raise DefinitionError(f"{where}: topic {topic!r} is not one of the questionnaire's topics")
                else:
                    topic_name = topics[topic].name
            handler.check(item, where)
            parsed = Item(
                code=code,
                type=kind,
                labels=reader.texts(item, "label", where),
                choices=tuple(
                    Choice(str(c["code"]), reader.texts(c, "label", where), c.get("score"), c.get("yes"))
                    for c in item.get("choices") or ()
                ),
                kind=item.get("kind"),
                topic=topic,
                attribute=attribute,
                required=bool(item.get("required", handler.required_by_default)) and handler.question,
                max_length=int(item.get("max_length", 500)),
                short=item.get("short"),
                hints=reader.texts(item, "hint", where),
                relevant=_relevant(item.get("relevant"), where, earlier),
                topic_name=topic_name,
            )
            items.append(parsed)
            if handler.question:
                earlier[code] = parsed
        sections.append(Section(str(section.get("code", s_index)), reader.texts(section, "title", f"{source}: section {s_index}"), tuple(items)))
    definition = Definition(
        code=str(raw["code"]),
        version=raw["version"],
        titles=reader.texts(raw, "title", source),
        sections=tuple(sections),
        intros=reader.texts(raw, "intro", source),
        privacies=reader.texts(raw, "privacy", source),
        minors=bool(raw.get("minors", False)),
        languages=reader.languages,
        topics=tuple((topics if topics is not None else used_topics).values()),
        source=source,
    )
    if not definition.scored_items:
        raise DefinitionError(f"{source}: no scored (rating) item")
    return definition


def load_definition(path: str | Path) -> Definition:
    """Read and validate one definition file: an XLSForm ``.xlsx`` or a JSON dict."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        from forms.xlsform import load_xlsform

        return load_xlsform(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DefinitionError(f"{path.name}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DefinitionError(f"{path.name}: not valid JSON ({exc})") from None
    return parse_definition(raw, path.name)


def bundled_raw() -> dict[tuple[str, int], dict[str, Any]]:
    """Return the definition dict of every XLSForm shipped in ``forms/definitions``, validated.

    Each call returns fresh dicts (callers may change them); the files are read once per process.
    """
    return {key: copy.deepcopy(raw) for key, raw in _bundled().items()}


@functools.cache
def _bundled() -> dict[tuple[str, int], dict[str, Any]]:
    from forms.xlsform import read_xlsform

    out = {}
    for path in sorted(DEFINITIONS.glob("*.xlsx")):
        imported = read_xlsform(path)
        out[(imported.definition.code, imported.definition.version)] = imported.raw
    return out


def bundled_definitions() -> dict[tuple[str, int], Definition]:
    """Return every definition shipped in ``forms/definitions`` by (code, version)."""
    return {key: parse_definition(raw, f"{key[0]}-v{key[1]}.xlsx") for key, raw in bundled_raw().items()}

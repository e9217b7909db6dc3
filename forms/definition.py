"""Questionnaire definitions: versioned JSON data files, validated on load.

A definition has sections of items. Every item has a ``type`` that is one of the classes in
``ITEM_TYPES``; the type validates the item, checks a submitted answer and says what an answer
stores (choice code, score, free text).

Scored items (``rating``) give every choice a ``score``; a "don't know" choice has
``"score": null`` and is left out of the respondent's mean. Yes-type items (``yesno``) mark
choices with ``"yes": true / false / null`` for awareness, support and participation rates.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

DEFINITIONS = Path(__file__).parent / "definitions"
KINDS = ("awareness", "support", "participation", "satisfaction")
KIND_NAMES = {"awareness": "知晓率", "support": "支持率", "participation": "参与率", "satisfaction": "满意度"}
TOPIC_NAMES = {
    "environment": "环境卫生", "public_order": "公共秩序", "traffic_order": "交通秩序", "public_services": "公共服务",
    "community_services": "社区服务", "volunteer_services": "志愿服务", "civility_publicity": "文明宣传",
    "government_services": "政务服务", "safety": "安全感", "overall": "总体评价",
    "school_life": "学校生活", "family": "家庭", "community": "社区环境", "online_life": "网络生活",
    "moral_education": "思想品德",
}
ATTRIBUTES = ("sex", "age_band", "resident_6m", "grade_band")
REQUIRED_MESSAGE = "请选择一项"
INVALID_CHOICE_MESSAGE = "请从列出的选项中选择一项"
# Control characters other than tab and line breaks: refused in every text a person types, since
# no keyboard makes them and PostgreSQL cannot store NUL.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CONTROL_MESSAGE = "内容中含有无法识别的特殊字符，请删除后重试"
FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def has_control_characters(text: str) -> bool:
    r"""Return True when ``text`` holds a control character other than tab, CR or LF.

    >>> has_control_characters("楼道灯坏了\r\n两周"), has_control_characters("a\x00b")
    (False, True)
    """
    return CONTROL_CHARACTERS.search(text) is not None


def choice_number(raw: str) -> int | None:
    """Return the choice number a person typed (ASCII or full-width digits), else None.

    >>> choice_number("３"), choice_number("12"), choice_number("²"), choice_number("٣")
    (3, 12, None, None)
    """
    digits = raw.strip().translate(FULLWIDTH_DIGITS)
    return int(digits) if 0 < len(digits) <= 3 and digits.isascii() and digits.isdigit() else None



class DefinitionError(ValueError):
    """A questionnaire definition that cannot be used; the message names the file and item."""


@dataclass(frozen=True)
class Choice:
    code: str
    label: str
    label_en: str = ""
    score: float | None = None
    yes: bool | None = None


@dataclass(frozen=True)
class Item:
    code: str
    type: str
    label: str
    label_en: str
    choices: tuple[Choice, ...] = ()
    kind: str | None = None
    topic: str | None = None
    attribute: str | None = None
    required: bool = True
    max_length: int = 500
    short: str | None = None

    @property
    def handler(self) -> ItemType:
        return ITEM_TYPES[self.type]

    @property
    def short_label(self) -> str:
        """Return the item's short name (for table headers): its own, its topic's, or its code."""
        return self.short or TOPIC_NAMES.get(self.topic or "", self.code)

    def choice(self, code: str) -> Choice | None:
        return next((c for c in self.choices if c.code == code), None)

    def answer(self, value: str | None) -> tuple[str | None, float | None, str | None]:
        """Return what to store for a submitted value: (choice code, score, text)."""
        return self.handler.answer(self, value)

    def parse(self, raw: str | None) -> tuple[str | None, str | None]:
        """Return (the answer, or None; what is wrong with it, or None) for a submitted value."""
        return self.handler.parse(self, raw)


@dataclass(frozen=True)
class Section:
    code: str
    title: str
    title_en: str
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Definition:
    code: str
    version: int
    title: str
    title_en: str
    intro: str
    privacy: str
    sections: tuple[Section, ...]
    minors: bool = False
    source: str = field(default="", compare=False)

    @property
    def items(self) -> list[Item]:
        return [item for section in self.sections for item in section.items]

    def item(self, code: str) -> Item:
        return next(i for i in self.items if i.code == code)

    def number_of(self, code: str) -> int:
        """Return the item's question number as shown to respondents (from 1)."""
        return next(n for n, i in enumerate(self.items, start=1) if i.code == code)

    @property
    def scored_items(self) -> list[Item]:
        return [i for i in self.items if i.type == "rating"]

    @property
    def rate_items(self) -> list[Item]:
        return [i for i in self.items if i.type == "yesno"]

    def choice_scores(self) -> dict[str, dict[str, float | None]]:
        """Return {item: {choice: score or None}} for the scored items."""
        return {i.code: {c.code: c.score for c in i.choices} for i in self.scored_items}

    def parse_submission(self, formdata: Mapping[str, str]) -> tuple[dict[str, str | None], dict[str, str]]:
        """Return (answers by item code, error message by item code) for submitted form fields.

        Each item's type checks its own value: no form library on the hot path of every answer.

        >>> citizen = bundled_definitions()[("citizen", 1)]
        >>> answers, errors = citizen.parse_submission({"sex": "F", "q01": "9"})
        >>> answers["sex"], errors["q01"], errors["q02"], "comment" in errors
        ('F', '请从列出的选项中选择一项', '请选择一项', False)
        """
        answers: dict[str, str | None] = {}
        errors: dict[str, str] = {}
        for item in self.items:
            value, error = item.parse(formdata.get(item.code))
            answers[item.code] = value
            if error:
                errors[item.code] = error
        return answers, errors

    def respondent_score(self, answers: dict[str, str | None]) -> tuple[float | None, int]:
        """Return the mean score over scored items answered with a scored choice, and how many."""
        scores = [
            choice.score
            for item in self.scored_items
            if (choice := item.choice(answers.get(item.code) or "")) is not None and choice.score is not None
        ]
        return (sum(scores) / len(scores) if scores else None), len(scores)


class ItemType:
    """Behaviour of one kind of question: validation, checking a submitted answer, what is stored."""

    name: ClassVar[str]
    needs_choices: ClassVar[bool] = True

    def check(self, raw: dict[str, Any], where: str) -> None:
        """Raise DefinitionError for anything this type cannot use."""
        if self.needs_choices:
            choices = raw.get("choices")
            if not isinstance(choices, list) or not choices:
                raise DefinitionError(f"{where}: empty choice list")
            codes = [c.get("code") if isinstance(c, dict) else None for c in choices]
            for c in choices:
                if not isinstance(c, dict) or not str(c.get("code", "")).strip() or not str(c.get("label", "")).strip():
                    raise DefinitionError(f"{where}: every choice needs a code and a label")
            duplicated = {c for c in codes if codes.count(c) > 1}
            if duplicated:
                raise DefinitionError(f"{where}: duplicate choice code {sorted(map(str, duplicated))[0]!r}")

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


class ChoiceItem(ItemType):
    """A plain single choice without a score, e.g. a respondent attribute."""

    name = "choice"


class RatingItem(ItemType):
    """A scored single choice: every choice states its score; null means "don't know"."""

    name = "rating"

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


ITEM_TYPES: dict[str, ItemType] = {t.name: t() for t in (ChoiceItem, RatingItem, YesNoItem, TextItem)}


def parse_definition(raw: Any, source: str = "<definition>") -> Definition:
    """Validate a decoded definition and return it; errors name ``source`` and the item."""
    if not isinstance(raw, dict):
        raise DefinitionError(f"{source}: the definition must be a JSON object")
    for key in ("code", "version", "title", "sections"):
        if key not in raw:
            raise DefinitionError(f"{source}: missing {key!r}")
    if not isinstance(raw["version"], int) or raw["version"] < 1:
        raise DefinitionError(f"{source}: version must be a whole number from 1")
    if not isinstance(raw["sections"], list) or not raw["sections"]:
        raise DefinitionError(f"{source}: no sections")
    seen: set[str] = set()
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
            for key in ("label", "label_en"):
                if not str(item.get(key, "")).strip():
                    raise DefinitionError(f"{where}: missing {key}")
            if item.get("kind") is not None and item["kind"] not in KINDS:
                raise DefinitionError(f"{where}: unknown kind {item['kind']!r}")
            if item.get("attribute") is not None and item["attribute"] not in ATTRIBUTES:
                raise DefinitionError(f"{where}: unknown attribute {item['attribute']!r}")
            ITEM_TYPES[kind].check(item, where)
            items.append(
                Item(
                    code=code,
                    type=kind,
                    label=item["label"],
                    label_en=item["label_en"],
                    choices=tuple(
                        Choice(str(c["code"]), c["label"], c.get("label_en", ""), c.get("score"), c.get("yes"))
                        for c in item.get("choices") or ()
                    ),
                    kind=item.get("kind"),
                    topic=item.get("topic"),
                    attribute=item.get("attribute"),
                    required=bool(item.get("required", kind != "text")),
                    max_length=int(item.get("max_length", 500)),
                    short=item.get("short"),
                )
            )
        sections.append(Section(str(section.get("code", s_index)), section.get("title", ""), section.get("title_en", ""), tuple(items)))
    definition = Definition(
        code=str(raw["code"]),
        version=raw["version"],
        title=raw["title"],
        title_en=raw.get("title_en", ""),
        intro=raw.get("intro", ""),
        privacy=raw.get("privacy", ""),
        sections=tuple(sections),
        minors=bool(raw.get("minors", False)),
        source=source,
    )
    if not definition.scored_items:
        raise DefinitionError(f"{source}: no scored (rating) item")
    return definition


def load_definition(path: str | Path) -> Definition:
    """Read and validate one definition file."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DefinitionError(f"{path.name}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DefinitionError(f"{path.name}: not valid JSON ({exc})") from None
    return parse_definition(raw, path.name)


def bundled_raw() -> dict[tuple[str, int], dict[str, Any]]:
    """Return the decoded JSON of every definition shipped in ``forms/definitions``, validated."""
    out = {}
    for path in sorted(DEFINITIONS.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        definition = parse_definition(raw, path.name)
        out[(definition.code, definition.version)] = raw
    return out


def bundled_definitions() -> dict[tuple[str, int], Definition]:
    """Return every definition shipped in ``forms/definitions`` by (code, version)."""
    return {key: parse_definition(raw, f"{key[0]}-v{key[1]}.json") for key, raw in bundled_raw().items()}

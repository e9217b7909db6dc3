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

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from forms.common import DefinitionError
from forms.conditions import Condition, condition_from_dict
from forms.items import ITEM_TYPES, ItemType

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
# Texts in every language of the definition, default first: ((language, text), ...).
Texts = tuple[tuple[str, str], ...]

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
        >>> from forms.bundled import bundled_definitions
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

        >>> from forms.bundled import bundled_definitions
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

        >>> from forms.bundled import bundled_definitions
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



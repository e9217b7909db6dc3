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
         {"code", "type", "label", "hint", "required_message", "constraint_message",
          "translations": {LANG: {"label", "hint", "required_message", "constraint_message"}},
          "required", "max_length", "kind", "topic", "attribute", "short",
          "relevant", "constraint", "choice_filter", "calculation": EXPRESSION (forms.expressions' to_dict),
          "default", "read_only", "appearance", "range": {"start", "end", "step"}, "other_of": CODE,
          "choices": [{"code", "label", "translations": {LANG: {"label"}}, "score", "yes", "exclusive",
                       "columns": {NAME: TEXT}}]}]}]}

An expression is stored as :meth:`forms.expressions.Expr.to_dict` gives it; a ``relevant`` of the
first small format (``{"op": "=", "item", "value"}`` / ``{"op": "and", "args"}``) still reads.
``other_of`` marks the text box of a choice question's "其他（请注明）" (XLSForm ``or_other``): it is
asked when that question's ``other`` choice is chosen, and kept beside it, not as a comment.
Sections have an ``appearance`` (``field-list``: a page of its own; ``table-list``: a grid of
questions sharing their choices).

Plain keys (``title``, ``label``, ``hint``...) hold the default language; ``translations`` the
others. A dict without ``languages`` is the first format (stored by early databases): its
languages are 中文 and English, its English texts are ``title_en`` / ``label_en``, its topics are
named by ``TOPIC_NAMES`` and ``required`` defaults to true except for text.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property
from typing import Any

from forms.common import DefinitionError
from forms.expressions import Env, Expr, describe_constraint
from forms.items import ITEM_TYPES, ItemType, number_text

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
# A label's reference to an answer (ODK's piping: "您在${street}住了几年？").
PIPED = re.compile(r"\$\{([^${}]*)\}")
OTHER = "other"  # the code of the choice XLSForm's or_other adds


def in_language(texts: Texts, language: str | None) -> str:
    """Return the text in ``language``, else in the default language ("" for no texts)."""
    if not texts:
        return ""
    if language:
        for lang, text in texts:
            if lang == language and text:
                return text
    return texts[0][1]


def as_text(value: str | float | bool) -> str:
    """Return an expression's value as an answer keeps it (XPath string(): ``3`` not ``3.0``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return number_text(value)
    return value

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
    exclusive: bool = False  # "以上都没有": chosen alone in a multiple choice
    columns: tuple[tuple[str, str], ...] = ()  # the choices sheet's other columns (what choice_filter reads)

    @property
    def label(self) -> str:
        return self.labels[0][1]

    @property
    def label_en(self) -> str:
        return english_of(self.labels)

    def label_in(self, language: str | None) -> str:
        return in_language(self.labels, language)

    @cached_property
    def column_values(self) -> dict[str, str]:
        return dict(self.columns)


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
    relevant: Expr | None = None
    topic_name: str | None = None
    required_messages: Texts = ()
    constraint: Expr | None = None
    constraint_messages: Texts = ()
    choice_filter: Expr | None = None
    default: str | None = None
    read_only: bool = False
    appearance: str = ""
    calculation: Expr | None = None
    range: tuple[float, float, float] | None = None
    other_of: str | None = None  # the choice question whose "其他（请注明）" this text box is

    @property
    def handler(self) -> ItemType:
        return ITEM_TYPES[self.type]

    def label_in(self, language: str | None) -> str:
        return in_language(self.labels, language)

    def hint_in(self, language: str | None) -> str:
        return in_language(self.hints, language) if any(text for _, text in self.hints) else ""

    @property
    def required_message(self) -> str:
        """Return the question's own message for a missing answer ("" for the type's)."""
        return in_language(self.required_messages, None)

    @property
    def appearances(self) -> frozenset[str]:
        return frozenset(self.appearance.split())

    @property
    def has_other(self) -> bool:
        """Return whether the question offers "其他（请注明）" with a text box (XLSForm ``or_other``)."""
        return self.other_text is not None

    other_text: str | None = None  # the code of this question's "其他（请注明）" text box

    def choices_for(self, answers: Mapping[str, str | None], today: date | None = None) -> tuple[Choice, ...]:
        """Return the choices offered given the earlier answers (all of them without a choice_filter)."""
        if self.choice_filter is None:
            return self.choices
        return tuple(c for c in self.choices if self.choice_filter.holds(Env(answers, columns=c.column_values, today=today)))

    def filter_ready(self, answers: Mapping[str, str | None]) -> bool:
        """Return whether every answer the choice_filter reads is given (so the list can be cut)."""
        return self.choice_filter is None or all(answers.get(code) for code in self.choice_filter.references())

    def check_answer(self, value: str, answers: Mapping[str, str | None], today: date | None = None) -> str | None:
        """Return what is wrong with a well-formed answer given the earlier ones (choice_filter, constraint), else None."""
        if self.choice_filter is not None:
            offered = {c.code for c in self.choices_for(answers, today)}
            if any(code not in offered for code in value.split()):
                return "这个选项与前面的回答不符，请重新选择"
        if self.constraint is not None and not self.constraint.holds(Env(answers, dot=value, today=today)):
            return in_language(self.constraint_messages, None) or self.constraint_default
        return None

    @property
    def constraint_default(self) -> str:
        """Return what a broken constraint says without a constraint_message (e.g. 请填写不小于0、不大于120的数)."""
        if self.constraint is None:
            return ""
        return describe_constraint(self.constraint, lambda value: c.label if (c := self.choice(value)) is not None else None)

    @property
    def constraint_message(self) -> str:
        """Return the message of a broken constraint: the question's own, else one said from the rule."""
        return in_language(self.constraint_messages, None) or self.constraint_default

    @property
    def worked_out(self) -> bool:
        """Return whether the definition, not the respondent, gives the answer (calculated or read-only)."""
        return self.handler.computed or self.read_only

    def work_out(self, answers: Mapping[str, str | None], today: date | None = None) -> str | None:
        """Return the answer of a calculated item or a read-only question (its calculation, else its default)."""
        return self.compute(answers, today) if self.calculation is not None or self.handler.computed else self.default

    def compute(self, answers: Mapping[str, str | None], today: date | None = None) -> str | None:
        """Return a calculated item's value (its calculation, else its default), None for ""."""
        if self.calculation is None:
            return self.default
        try:
            value = as_text(self.calculation.evaluate(Env(answers, today=today)))
        except (ArithmeticError, ValueError):  # never expected: evaluation is total; a sum of huge numbers at worst
            return None
        return value[:1000] or None

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

    def is_relevant(self, answers: Mapping[str, str | None], today: date | None = None) -> bool:
        """Return whether the item is asked given the earlier answers (its skip rule holds, or it has none)."""
        return self.relevant is None or self.relevant.holds(Env(answers, today=today))

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
    appearance: str = ""  # field-list: a page of its own; table-list: a grid of questions sharing choices

    @property
    def appearances(self) -> frozenset[str]:
        return frozenset(self.appearance.split())

    def title_in(self, language: str | None) -> str:
        return in_language(self.titles, language)

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

    def is_numbered(self, code: str) -> bool:
        """Return whether ``code`` is a question with a number (not a note or a calculated value)."""
        return code in self._numbers

    def number_of(self, code: str) -> int:
        """Return the item's question number as shown to respondents (from 1)."""
        return self._numbers[code]

    @cached_property
    def _numbers(self) -> dict[str, int]:
        return {item.code: n for n, item in enumerate(self.items, start=1)}

    def asked_when(self, item: Item) -> str:
        """Return, in plain Chinese, when a follow-up question is asked ("" for an item without a skip rule).

        E.g. "第3题选“是”": pages show it as "（第3题选“是”的请回答）" where no script hides the question.

        >>> from forms.expressions import parse
        >>> from forms.bundled import bundled_definitions
        >>> citizen = bundled_definitions()[("citizen", 1)]
        >>> citizen.asked_when(Item("x", "text", (("中文", "x"),), relevant=parse("${resident} = 'Y'")))
        '第3题选“是”'
        """
        if item.relevant is None:
            return ""
        return item.relevant.describe(self.question_name, self.choice_label, self.is_multiple)

    def is_multiple(self, code: str) -> bool:
        """Return whether question ``code`` takes several choices (rules then say 选了)."""
        found = self._elements_by_code.get(code)
        return found is not None and found.handler.multiple

    def question_name(self, code: str) -> str:
        """Return how rules name a question: "第3题" (a calculated value by its label or code)."""
        if code in self._numbers:
            return f"第{self._numbers[code]}题"
        found = self._elements_by_code.get(code)
        return f"“{found.label or code}”" if found is not None else f"“{code}”"

    def choice_label(self, code: str, value: str) -> str | None:
        """Return the label of ``value`` among the choices of question ``code`` (None: it has no choices)."""
        target = self._elements_by_code.get(code)
        if target is None or not target.choices:
            return None
        choice = target.choice(value)
        return choice.label if choice is not None else value

    def pieces(self, text: str) -> list[tuple[str, str | None]]:
        """Return a label cut at its references to answers: (literal text, None) and (placeholder, code).

        The placeholder is what shows while the answer is not known (第3题的回答).

        >>> from forms.bundled import bundled_definitions
        >>> bundled_definitions()[("citizen", 1)].pieces("您选了${resident}。")
        [('您选了', None), ('（第3题的回答）', 'resident'), ('。', None)]
        """
        out: list[tuple[str, str | None]] = []
        at = 0
        for found in PIPED.finditer(text):
            code = found.group(1).strip()
            if found.start() > at:
                out.append((text[at:found.start()], None))
            out.append((f"（{self.question_name(code)}的回答）", code))
            at = found.end()
        if at < len(text):
            out.append((text[at:], None))
        return out

    def piped(self, text: str, answers: Mapping[str, str | None], language: str | None = None) -> str:
        """Return a label with its references replaced by the answers given (or their placeholders)."""
        if "${" not in text:
            return text
        return "".join(
            literal if code is None else (self.display(code, answers.get(code), language) or literal)
            for literal, code in self.pieces(text)
        )

    def display(self, code: str, value: str | None, language: str | None = None) -> str:
        """Return an answer to question ``code`` as people read it (its choice's label, or the value)."""
        item = self._elements_by_code.get(code)
        return item.handler.display(item, value, language) if item is not None else (value or "")

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

    @cached_property
    def stored_items(self) -> tuple[Item, ...]:
        """Return the questions and the calculated items in order: what a response stores."""
        return tuple(item for item in self.elements if item.is_question or item.handler.computed)

    @cached_property
    def defaults(self) -> dict[str, str]:
        """Return {question: its default answer} for the questions that have one (a blank page shows them)."""
        return {item.code: item.default for item in self.items if item.default is not None}

    def parse_submission(self, formdata: Mapping[str, Any], today: date | None = None
                         ) -> tuple[dict[str, str | None], dict[str, str]]:
        """Return (answers by item code, error message by item code) for submitted form fields.

        Each item's type checks its own value: no form library on the hot path of every answer.
        An item whose skip rule does not hold (given the earlier answers) is not asked: it is
        not required and whatever was submitted for it is dropped (None). A well-formed answer
        is then held to the question's choice_filter and constraint; calculated items are worked
        out in their place and read-only questions keep their default, whatever was sent.
        ``today`` is the city's date (``today()`` in rules).

        >>> from forms.bundled import bundled_definitions
        >>> citizen = bundled_definitions()[("citizen", 1)]
        >>> answers, errors = citizen.parse_submission({"sex": "F", "q01": "9"})
        >>> answers["sex"], errors["q01"], errors["q02"], "comment" in errors
        ('F', '请从列出的选项中选择一项', '请选择一项', False)
        """
        answers: dict[str, str | None] = {}
        errors: dict[str, str] = {}
        for item in self.stored_items:
            if item.relevant is not None and not item.is_relevant(answers, today):
                answers[item.code] = None
                continue
            handler = item.handler
            if item.worked_out:
                answers[item.code] = item.work_out(answers, today)
                continue
            value, error = handler.parse(item, handler.read(item, formdata))
            if error is None and value is not None:
                error = item.check_answer(value, answers, today)
            answers[item.code] = value
            if error:
                errors[item.code] = error
        return answers, errors

    def submitted_values(self, formdata: Mapping[str, Any]) -> dict[str, str | None]:
        """Return every question's submitted value as sent: what a page shown again keeps.

        Unlike :meth:`parse_submission` this keeps answers to follow-up questions whose rule
        does not hold (yet): a respondent who corrects an earlier answer loses nothing.
        """
        return {item.code: item.handler.read(item, formdata) for item in self.items}

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


def _expression(raw: Any, where: str, key: str, earlier: Mapping[str, Item]) -> Expr | None:
    """Return an item's stored expression (``relevant``, ``constraint``...), checked against the earlier items."""
    if raw is None:
        return None
    try:
        expression = Expr.from_dict(raw)
    except (ValueError, TypeError) as exc:
        raise DefinitionError(f"{where}: {key}: {exc}") from None
    for code in sorted(expression.references()):
        if code not in earlier:
            raise DefinitionError(f"{where}: {key} refers to {code!r}, which is not an earlier question")

    def compared(code: str, value: str) -> str:
        target = earlier.get(code)
        if target is not None and target.choices and target.choice(value) is None and value != "":
            raise DefinitionError(f"{where}: {key} compares {code!r} with {value!r}, which is not one of its choices")
        return value

    expression.map_literals(compared)
    return expression


def _choices(item: dict[str, Any], reader: _Reader, where: str) -> tuple[Choice, ...]:
    out = []
    for c in item.get("choices") or ():
        columns = c.get("columns") or {}
        if not isinstance(columns, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in columns.items()):
            raise DefinitionError(f"{where}: a choice's columns must map names to texts")
        out.append(Choice(str(c["code"]), reader.texts(c, "label", where), c.get("score"), c.get("yes"),
                          bool(c.get("exclusive", False)), tuple(sorted(columns.items()))))
    return tuple(out)


def _range(item: dict[str, Any]) -> tuple[float, float, float] | None:
    bounds = item.get("range")
    return (bounds["start"], bounds["end"], bounds["step"]) if isinstance(bounds, dict) else None


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
    sections: list[Section] = []
    for s_index, section in enumerate(raw["sections"], start=1):
        if not isinstance(section, dict) or not isinstance(section.get("items"), list) or not section["items"]:
            raise DefinitionError(f"{source}: section {s_index} has no items")
        items: list[Item] = []
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
                if not str(item.get(key, "")).strip() and not handler.computed:
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
            for key in ("default", "appearance", "other_of"):
                if item.get(key) is not None and not isinstance(item[key], str):
                    raise DefinitionError(f"{where}: {key} must be text")
            other_of = item.get("other_of")
            if other_of is not None and (kind != "text" or other_of not in earlier or not earlier[other_of].choice(OTHER)):
                raise DefinitionError(f"{where}: other_of must name an earlier choice question with an {OTHER!r} choice")
            parsed = Item(
                code=code,
                type=kind,
                labels=reader.texts(item, "label", where),
                choices=_choices(item, reader, where),
                kind=item.get("kind"),
                topic=topic,
                attribute=attribute,
                required=bool(item.get("required", handler.required_by_default)) and handler.question,
                max_length=int(item.get("max_length", 500)),
                short=item.get("short"),
                hints=reader.texts(item, "hint", where),
                relevant=_expression(item.get("relevant"), where, "relevant", earlier),
                topic_name=topic_name,
                required_messages=reader.texts(item, "required_message", where),
                constraint=_expression(item.get("constraint"), where, "constraint", earlier),
                constraint_messages=reader.texts(item, "constraint_message", where),
                choice_filter=_expression(item.get("choice_filter"), where, "choice_filter", earlier),
                default=item.get("default"),
                read_only=bool(item.get("read_only", False)),
                appearance=item.get("appearance") or "",
                calculation=_expression(item.get("calculation"), where, "calculation", earlier),
                range=_range(item),
                other_of=other_of,
            )
            if parsed.default is not None and handler.question:
                value, error = handler.parse(parsed, parsed.default)
                if error or value != parsed.default:
                    raise DefinitionError(f"{where}: default {parsed.default!r} is not an answer of this question"
                                          + (f" ({error})" if error else f" (write it as {value!r})"))
            for text in (*(t for _, t in parsed.labels), *(t for _, t in parsed.hints)):
                for found in PIPED.finditer(text):
                    if found.group(1).strip() not in earlier:
                        raise DefinitionError(f"{where}: the label refers to ${{{found.group(1)}}}, which is not an earlier question")
            if other_of is not None:
                index = next(n for n, done in enumerate(items) if done.code == other_of) if any(
                    done.code == other_of for done in items) else None
                owner = earlier[other_of]
                earlier[other_of] = owner = _with_other(owner, code)
                if index is not None:
                    items[index] = owner
                else:
                    _replace_in_sections(sections, owner)
            items.append(parsed)
            if handler.question or handler.computed:
                earlier[code] = parsed
        appearance = section.get("appearance") or ""
        if not isinstance(appearance, str):
            raise DefinitionError(f"{source}: section {s_index}: appearance must be text")
        sections.append(Section(str(section.get("code", s_index)), reader.texts(section, "title", f"{source}: section {s_index}"),
                                tuple(items), appearance))
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
    return definition


def _with_other(owner: Item, text_code: str) -> Item:
    return replace(owner, other_text=text_code)


def _replace_in_sections(sections: list[Section], owner: Item) -> None:
    """Put ``owner`` in place of the item of its code in the sections made so far (sections are frozen)."""
    for n, section in enumerate(sections):
        if any(item.code == owner.code for item in section.elements):
            elements = tuple(owner if item.code == owner.code else item for item in section.elements)
            sections[n] = Section(section.code, section.titles, elements, section.appearance)
            return



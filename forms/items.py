"""Item types: each kind of question owns its checks, answer parsing, storage, scoring and XLSForm form.

``ITEM_TYPES`` maps a definition's ``type`` to the instance that handles it; :func:`register`
adds one (tests/survey/test_item_types.py adds a type without changing anything else).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

from forms.common import (
    CONTROL_MESSAGE,
    INVALID_CHOICE_MESSAGE,
    MAX_LENGTH,
    REQUIRED_MESSAGE,
    DefinitionError,
    choice_number,
    has_control_characters,
)

if TYPE_CHECKING:  # for annotations only: definition.py imports this module
    from forms.definition import Choice, Item


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

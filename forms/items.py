"""Item types: each kind of question owns its checks, answer parsing, storage, scoring and XLSForm form.

``ITEM_TYPES`` maps a definition's ``type`` to the instance that handles it; :func:`register`
adds one (tests/survey/test_item_types.py adds a type without changing anything else).

What an answer is, for every type: one string (``None`` when unanswered), in the form the
expressions of :mod:`forms.expressions` read it (as ODK does): a choice code; several choice codes
separated by spaces (``select_multiple``); a number written plainly (``25``, ``1.5``); a date
``YYYY-MM-DD``; a time ``HH:MM``; a date and time ``YYYY-MM-DDTHH:MM``; a location ``纬度 经度``;
``OK`` for an acknowledgement; the stored name of a photo.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
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

# What a person may type for a number, a date or a time: full-width digits and punctuation too.
FULLWIDTH = str.maketrans({**{ord(k): v for k, v in zip("０１２３４５６７８９", "0123456789", strict=True)},
                           ord("．"): ".", ord("－"): "-", ord("："): ":", ord("，"): ",", ord("　"): " "})
NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)\Z")
DATE = re.compile(r"(\d{4})\s*(?:[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?|(\d{2})(\d{2}))\Z")
TIME = re.compile(r"(?:(\d{1,2})\s*[:点時时]\s*(\d{1,2})?\s*分?(?::(\d{1,2}))?|(\d{2})(\d{2}))\Z")
YEARS = (1900, 2100)  # dates a questionnaire may ask: a birth date to a planned date
MAX_DIGITS = 15  # a number's significant digits: what a float keeps exactly


class ItemType:
    """Behaviour of one kind of question: validation, checking a submitted answer, what is stored,
    what the analysis and the exports make of it, and how XLSForm writes it.

    Adding a type is one subclass registered in ``ITEM_TYPES`` (see :func:`register`): nothing
    else switches on the type's name.
    """

    name: ClassVar[str]
    needs_choices: ClassVar[bool] = True
    question: ClassVar[bool] = True  # asks something: numbered, answered by the respondent, stored
    computed: ClassVar[bool] = False  # not shown, not asked: worked out from the definition and stored
    required_by_default: ClassVar[bool] = True  # first definition format: "required" left out
    # The type's template fragment: the macro of this name in public/_items.html (the phone page)
    # and entry/_items.html (paper entry) shows an item of this type.
    fragment: ClassVar[str] = "choice"
    written: ClassVar[bool] = False  # answered in words: ruled lines on paper, a text box at entry
    scored: ClassVar[bool] = False  # its choices' scores make the respondent's score and heatmap columns
    rate: ClassVar[bool] = False  # its yes choices make a rate (awareness, support, participation)
    multiple: ClassVar[bool] = False  # several choices may be chosen
    # How exports type its column: "choice" (codes with value labels), "multi" (codes separated by
    # spaces, and a 0/1 column per choice), "number" or "text".
    export_kind: ClassVar[str] = "choice"
    # Its XLSForm type: "select_one" (followed by its choice list's name) or a type of its own.
    xlsform_type: ClassVar[str] = "select_one"
    # How a printed copy asks it (reports/paper.py): "choices", "multi", "lines", "number", "date",
    # "time", "datetime", "check", "location", "photo".
    paper: ClassVar[str] = "choices"
    # What a grid worker types at paper entry, shown beside the box.
    typed_hint: ClassVar[str] = ""
    # The message for an unanswered required question (a question's required_message overrides it).
    missing: ClassVar[str] = REQUIRED_MESSAGE

    def value(self, choice: Choice) -> float | None:
        """Return what the analysis takes for an answer with this choice: a score, 1/0, or None (left out)."""
        return None

    def xlsform_choice(self, choice: Choice) -> tuple[float | None, int | None]:
        """Return a choice's ``score`` and ``yes`` cells in an exported XLSForm choices sheet."""
        return None, None

    def xlsform_constraint(self, item: Item) -> str | None:
        """Return the item's ``constraint`` cell in an exported XLSForm (None: none)."""
        return item.constraint.to_xlsform() if item.constraint is not None else None

    def read_xlsform(self, constraint: str) -> dict[str, Any] | None:
        """Return the dict-format keys an XLSForm ``constraint`` cell gives this type, or None.

        None: the cell is an ordinary constraint expression (checked with the answer as ".").
        """
        return None

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
        elif raw.get("choices"):
            raise DefinitionError(f"{where}: a {self.name} item has no choices")

    def read(self, item: Item, formdata: Mapping[str, Any]) -> str | None:
        """Return what a submitted form holds for the item (its field, or its fields joined)."""
        value = formdata.get(item.code)
        return value if isinstance(value, str) else None

    def answer(self, item: Item, value: str | None) -> tuple[str | None, float | None, str | None]:
        """Return what the answer stores as (choice code, score, comment text)."""
        if not value:
            return None, None, None
        choice = item.choice(value)
        return (choice.code, choice.score, None) if choice else (None, None, None)

    def stored_value(self, item: Item, value: str | None) -> str | None:
        """Return what the answer's ``value`` column keeps (numbers, dates, several choices...), else None."""
        return None

    def parse(self, item: Item, raw: str | None) -> tuple[str | None, str | None]:
        """Check a submitted choice code: one of the item's choices, or nothing where allowed."""
        if not raw:
            return None, ((item.required_message or self.missing) if item.required else None)
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

    def typed(self, item: Item, value: str | None) -> str:
        """Return an answer as a grid worker types it (the inverse of :meth:`parse_typed`), "" for none."""
        if not value:
            return ""
        position = next((n for n, c in enumerate(item.choices, start=1) if c.code == value), None)
        return str(position) if position is not None else value

    def display(self, item: Item, value: str | None, language: str | None = None) -> str:
        """Return an answer as people read it (a choice's label; the value itself for typed answers)."""
        if not value:
            return ""
        choice = item.choice(value)
        return choice.label_in(language) if choice is not None else value


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


class MultiItem(ItemType):
    """Several choices (``select_multiple``); a choice marked ``exclusive`` ("以上都没有") stands alone.

    The answer is the chosen codes in the list's order, separated by spaces; it is kept in the
    ``value`` column, and exported as that text and as a 0/1 column per choice.
    """

    name = "multi"
    multiple = True
    fragment = "multi"
    export_kind = "multi"
    xlsform_type = "select_multiple"
    paper = "multi"
    typed_hint = "可多选，用逗号隔开，如 1,3"
    missing = "请至少选择一项"

    def check(self, raw: dict[str, Any], where: str) -> None:
        super().check(raw, where)
        for choice in raw["choices"]:
            if re.search(r"\s", str(choice["code"])):
                raise DefinitionError(f"{where}: choice code {choice['code']!r} of a multiple choice cannot hold spaces")

    def read(self, item: Item, formdata: Mapping[str, Any]) -> str | None:
        getlist = getattr(formdata, "getlist", None)
        values = getlist(item.code) if getlist is not None else [formdata.get(item.code)]
        codes = [v for value in values if isinstance(value, str) for v in value.split()]
        return " ".join(codes) if codes else None

    def parse(self, item: Item, raw: str | None) -> tuple[str | None, str | None]:
        codes = (raw or "").split()
        if not codes:
            return None, ((item.required_message or self.missing) if item.required else None)
        if len(codes) > len(item.choices) or any(item.choice(code) is None for code in codes):
            return raw, INVALID_CHOICE_MESSAGE
        return self._ordered(item, codes)

    def _ordered(self, item: Item, codes: list[str]) -> tuple[str | None, str | None]:
        chosen = set(codes)
        exclusive = [c for c in item.choices if c.exclusive and c.code in chosen]
        if exclusive and len(chosen) > 1:
            return " ".join(codes), f"选了“{exclusive[0].label}”就不能再选其他选项"
        return " ".join(c.code for c in item.choices if c.code in chosen), None

    def parse_typed(self, item: Item, raw: str) -> tuple[str | None, str | None]:
        """Read typed choice numbers: ``1,3,5`` (commas, spaces, 、 or full-width ，), each once."""
        text = raw.strip().translate(FULLWIDTH)
        if not text:
            return None, ("未填写" if item.required else None)
        parts = [p for p in re.split(r"[\s,、;；]+", text) if p]
        numbers = [choice_number(p) for p in parts]
        if len(parts) > len(item.choices) or any(n is None or not 1 <= n <= len(item.choices) for n in numbers):
            return None, f"请输入1到{len(item.choices)}之间的数，用逗号隔开"
        codes = [item.choices[n - 1].code for n in numbers if n is not None]
        if len(set(codes)) != len(codes):
            return None, "同一个选项只能输入一次"
        value, error = self._ordered(item, codes)
        return (None, error) if error else (value, None)

    def typed(self, item: Item, value: str | None) -> str:
        return ",".join(ItemType.typed(self, item, code) for code in (value or "").split())

    def answer(self, item: Item, value: str | None) -> tuple[str | None, float | None, str | None]:
        return None, None, None

    def stored_value(self, item: Item, value: str | None) -> str | None:
        return value or None

    def display(self, item: Item, value: str | None, language: str | None = None) -> str:
        return "、".join(ItemType.display(self, item, code, language) for code in (value or "").split())


class TypedItem(ItemType):
    """A question answered by typing a value (a number, a date...): no choices, kept in the ``value`` column."""

    name = "typed"
    needs_choices = False
    fragment = "typed"
    export_kind = "text"
    missing = "请填写此项"

    def answer(self, item: Item, value: str | None) -> tuple[str | None, float | None, str | None]:
        return None, None, None

    def stored_value(self, item: Item, value: str | None) -> str | None:
        return value or None

    def normalise(self, item: Item, text: str) -> tuple[str | None, str | None]:
        """Return (the canonical answer, None) or (None, what is wrong) for a non-empty typed text."""
        raise NotImplementedError

    def parse(self, item: Item, raw: str | None) -> tuple[str | None, str | None]:
        text = (raw or "").strip()
        if not text:
            return None, ((item.required_message or self.missing) if item.required else None)
        if len(text) > 100 or has_control_characters(text):
            return raw, self.invalid(item)
        value, error = self.normalise(item, text.translate(FULLWIDTH).strip())
        return (value, None) if error is None else (raw, error)

    def parse_typed(self, item: Item, raw: str) -> tuple[str | None, str | None]:
        if not raw.strip():
            return None, ("未填写" if item.required else None)
        value, error = self.parse(item, raw)
        return (value, None) if error is None else (None, error)

    def typed(self, item: Item, value: str | None) -> str:
        return value or ""

    def display(self, item: Item, value: str | None, language: str | None = None) -> str:
        return value or ""

    def invalid(self, item: Item) -> str:
        return "格式不对，请重新填写"


def _number(text: str) -> Decimal | None:
    if not NUMBER.match(text) or sum(ch.isdigit() for ch in text.lstrip("-0.")) > MAX_DIGITS:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # never: NUMBER admits only what Decimal reads
        return None


def number_text(number: Decimal | float) -> str:
    """Return a number as an answer keeps it: no exponent, no trailing zeros (``1.50`` -> ``1.5``)."""
    value = Decimal(str(number)) if isinstance(number, float) else number
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


class IntegerItem(TypedItem):
    """A whole number (``integer``): typed on the phone's number keyboard."""

    name = "integer"
    xlsform_type = "integer"
    export_kind = "number"
    paper = "number"
    typed_hint = "整数"

    def normalise(self, item: Item, text: str) -> tuple[str | None, str | None]:
        number = _number(text)
        if number is None or number != number.to_integral_value():
            return None, "请填写整数"
        return number_text(number), None

    def invalid(self, item: Item) -> str:
        return "请填写整数"


class DecimalItem(TypedItem):
    """A number that may have decimals (``decimal``)."""

    name = "decimal"
    xlsform_type = "decimal"
    export_kind = "number"
    paper = "number"
    typed_hint = "数字"

    def normalise(self, item: Item, text: str) -> tuple[str | None, str | None]:
        number = _number(text)
        return (None, "请填写数字") if number is None else (number_text(number), None)

    def invalid(self, item: Item) -> str:
        return "请填写数字"


class RangeItem(TypedItem):
    """A number from ``start`` to ``end`` in steps of ``step`` (``range``; XLSForm ``parameters``).

    Phones show a row of buttons when there are at most 11 values (a 0-10 scale), else a number box.
    """

    name = "range"
    xlsform_type = "range"
    export_kind = "number"
    fragment = "range"
    paper = "number"
    typed_hint = "数字"

    def check(self, raw: dict[str, Any], where: str) -> None:
        super().check(raw, where)
        bounds = raw.get("range", {"start": 1, "end": 10, "step": 1})
        if not isinstance(bounds, dict) or not all(
                isinstance(bounds.get(k), int | float) and not isinstance(bounds.get(k), bool) and math.isfinite(bounds[k])
                for k in ("start", "end", "step")):
            raise DefinitionError(f"{where}: range needs numbers start, end and step")
        if bounds["step"] <= 0 or bounds["end"] <= bounds["start"] or (bounds["end"] - bounds["start"]) / bounds["step"] > 1000:
            raise DefinitionError(f"{where}: range needs start < end and a step > 0 giving at most 1000 steps")

    @staticmethod
    def bounds(item: Item) -> tuple[Decimal, Decimal, Decimal]:
        start, end, step = item.range or (1, 10, 1)
        return Decimal(str(start)), Decimal(str(end)), Decimal(str(step))

    def values(self, item: Item) -> list[str]:
        """Return every value the range allows, as answers keep them (for a row of buttons)."""
        start, end, step = self.bounds(item)
        count = int((end - start) / step) + 1
        return [number_text(start + n * step) for n in range(count)]

    def normalise(self, item: Item, text: str) -> tuple[str | None, str | None]:
        start, end, step = self.bounds(item)
        number = _number(text)
        if number is None or not start <= number <= end or (number - start) % step != 0:
            return None, self.invalid(item)
        return number_text(number), None

    def invalid(self, item: Item) -> str:
        start, end, step = (number_text(b) for b in self.bounds(item))
        every = "" if step == "1" else f"（每次{step}）"
        return f"请填写{start}到{end}之间的数{every}"


class DateItem(TypedItem):
    """A date (``date``): the phone's date picker; typed ``2026-12-08``, ``2026/12/8`` or ``2026年12月8日``."""

    name = "date"
    xlsform_type = "date"
    fragment = "date"
    paper = "date"
    typed_hint = "年-月-日，如 2026-12-08"

    def normalise(self, item: Item, text: str) -> tuple[str | None, str | None]:
        found = _date(text)
        return (found.isoformat(), None) if found is not None else (None, self.invalid(item))

    def invalid(self, item: Item) -> str:
        return "请填写有效日期，如 2026-12-08"


def _date(text: str) -> date | None:
    match = DATE.match(text.strip())
    if match is None:
        return None
    year, month, day = match.group(1), match.group(2) or match.group(4), match.group(3) or match.group(5)
    try:
        found = date(int(year), int(month), int(day))
    except ValueError:
        return None
    return found if YEARS[0] <= found.year <= YEARS[1] else None


def _time(text: str) -> str | None:
    match = TIME.match(text.strip())
    if match is None:
        return None
    hour = int(match.group(1) or match.group(4))
    minute = int(match.group(2) or match.group(5) or 0)
    return f"{hour:02d}:{minute:02d}" if hour < 24 and minute < 60 else None


class TimeItem(TypedItem):
    """A time of day (``time``), kept as ``HH:MM``."""

    name = "time"
    xlsform_type = "time"
    fragment = "time"
    paper = "time"
    typed_hint = "时:分，如 08:30 或 0830"

    def normalise(self, item: Item, text: str) -> tuple[str | None, str | None]:
        found = _time(text)
        return (found, None) if found is not None else (None, self.invalid(item))

    def invalid(self, item: Item) -> str:
        return "请填写有效时间，如 08:30"


class DateTimeItem(TypedItem):
    """A date and time (``datetime``), kept as ``YYYY-MM-DDTHH:MM`` (the city's local time)."""

    name = "datetime"
    xlsform_type = "datetime"
    fragment = "datetime"
    paper = "datetime"
    typed_hint = "如 2026-12-08 08:30 或 20261208 0830"

    def normalise(self, item: Item, text: str) -> tuple[str | None, str | None]:
        day, _, clock = re.sub(r"\s*[T ]\s*", " ", text, count=1).partition(" ")
        found, at = _date(day), _time(clock or "")
        return (f"{found.isoformat()}T{at}", None) if found is not None and at is not None else (None, self.invalid(item))

    def invalid(self, item: Item) -> str:
        return "请填写有效的日期和时间，如 2026-12-08 08:30"


class AcknowledgeItem(TypedItem):
    """A box to tick (``acknowledge``): consent, "I have read this". Its answer is ``OK``."""

    name = "acknowledge"
    xlsform_type = "acknowledge"
    fragment = "acknowledge"
    export_kind = "text"
    paper = "check"
    typed_hint = "打勾的填 1"
    missing = "请勾选此项"

    def normalise(self, item: Item, text: str) -> tuple[str | None, str | None]:
        return ("OK", None) if text.upper() in ("OK", "1", "Y", "YES", "TRUE", "ON", "是", "√", "✓") else (None, self.invalid(item))

    def invalid(self, item: Item) -> str:
        return "请勾选此项"


class GeopointItem(TypedItem):
    """A location (``geopoint``): the phone's position (with scripts) or typed latitude and longitude.

    Kept as ``纬度 经度`` (WGS 84 decimal degrees, as ODK, without altitude and accuracy).
    """

    name = "geopoint"
    xlsform_type = "geopoint"
    fragment = "geopoint"
    paper = "location"
    typed_hint = "纬度,经度，如 30.27,120.15"

    def read(self, item: Item, formdata: Mapping[str, Any]) -> str | None:
        whole = formdata.get(item.code)
        if isinstance(whole, str) and whole.strip():
            return whole
        parts = [formdata.get(f"{item.code}.{part}") for part in ("lat", "lon")]
        texts = [p.strip() for p in parts if isinstance(p, str) and p.strip()]
        return " ".join(texts) if texts else None

    def normalise(self, item: Item, text: str) -> tuple[str | None, str | None]:
        parts = [p for p in re.split(r"[\s,;]+", text) if p]
        numbers = [_number(p) for p in parts[:2]] if len(parts) in (2, 3, 4) else []
        if len(numbers) != 2 or None in numbers:
            return None, self.invalid(item)
        lat, lon = numbers
        if lat is None or lon is None or not -90 <= lat <= 90 or not -180 <= lon <= 180:
            return None, self.invalid(item)
        return f"{number_text(lat)} {number_text(lon)}", None

    def invalid(self, item: Item) -> str:
        return "请填写有效的位置：纬度（-90到90）和经度（-180到180）"


class ImageItem(TypedItem):
    """A photo from the phone's camera (``image``): checked and re-encoded by the server like 整改 photos.

    The page posts the file; the server stores it privately and the answer is its stored name.
    On paper it cannot be answered: the printed copy says it is taken on the phone.
    """

    name = "image"
    xlsform_type = "image"
    fragment = "image"
    paper = "photo"
    missing = "请拍摄或选择一张照片"
    STORED = re.compile(r"[0-9a-f]{32}\.jpg\Z")

    def normalise(self, item: Item, text: str) -> tuple[str | None, str | None]:
        return (text, None) if self.STORED.match(text) else (None, self.invalid(item))

    def parse_typed(self, item: Item, raw: str) -> tuple[str | None, str | None]:
        return (None, "照片只能在手机上拍摄上传，纸质问卷不录入此项") if raw.strip() else (None, None)

    def invalid(self, item: Item) -> str:
        return "照片没有上传成功，请重新选择"


class TextItem(ItemType):
    """Free text, optional, bounded in length."""

    name = "text"
    needs_choices = False
    required_by_default = False
    fragment = "text"
    written = True
    export_kind = "text"
    xlsform_type = "text"
    paper = "lines"
    missing = "请填写此项"

    def xlsform_constraint(self, item: Item) -> str | None:
        if item.constraint is not None:
            return item.constraint.to_xlsform()
        return f"string-length(.) <= {item.max_length}" if item.max_length != 500 else None

    def read_xlsform(self, constraint: str) -> dict[str, Any] | None:
        match = MAX_LENGTH.match(re.sub(r"\s+", " ", constraint).strip())
        if match is None or not 1 <= int(match.group(1)) <= 5000:
            return None
        return {"max_length": int(match.group(1))}

    def check(self, raw: dict[str, Any], where: str) -> None:
        if raw.get("choices"):
            raise DefinitionError(f"{where}: a text item has no choices")
        length = raw.get("max_length", 500)
        if not isinstance(length, int) or not 1 <= length <= 5000:
            raise DefinitionError(f"{where}: max_length must be a whole number from 1 to 5000")

    def answer(self, item: Item, value: str | None) -> tuple[str | None, float | None, str | None]:
        text = (value or "").strip()
        if item.other_of:  # "其他（请注明）": kept beside the choice, not a comment
            return None, None, None
        return None, None, (text or None)

    def stored_value(self, item: Item, value: str | None) -> str | None:
        return ((value or "").strip() or None) if item.other_of else None

    def parse(self, item: Item, raw: str | None) -> tuple[str | None, str | None]:
        """Check submitted free text: length and no control characters; the text is kept as typed."""
        if not isinstance(raw, str) or not raw.strip():
            return None, ((item.required_message or self.missing) if item.required else None)
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

    def typed(self, item: Item, value: str | None) -> str:
        return value or ""

    def display(self, item: Item, value: str | None, language: str | None = None) -> str:
        return value or ""


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


class CalculateItem(TypedItem):
    """A value worked out from earlier answers (``calculate`` with its ``calculation``): stored, never shown.

    ``hidden`` (XLSForm) is the same with a fixed value: its ``default``.
    """

    name = "calculate"
    question = False
    computed = True
    required_by_default = False
    xlsform_type = "calculate"
    fragment = "note"

    def check(self, raw: dict[str, Any], where: str) -> None:
        super().check(raw, where)
        if raw.get("calculation") is None and raw.get("default") is None:
            raise DefinitionError(f"{where}: a calculate item needs a calculation")
        for key in ("kind", "topic", "attribute"):
            if raw.get(key) is not None:
                raise DefinitionError(f"{where}: a calculate item has no {key}")

    def normalise(self, item: Item, text: str) -> tuple[str | None, str | None]:
        return text, None


ITEM_TYPES: dict[str, ItemType] = {t.name: t() for t in (
    ChoiceItem, RatingItem, YesNoItem, MultiItem, TextItem, NoteItem, IntegerItem, DecimalItem, RangeItem,
    DateItem, TimeItem, DateTimeItem, AcknowledgeItem, GeopointItem, ImageItem, CalculateItem,
)}


def register(item_type: type[ItemType]) -> ItemType:
    """Add an item type (a class with a new ``name``) to ``ITEM_TYPES`` and return its instance."""
    if item_type.name in ITEM_TYPES:
        raise ValueError(f"item type {item_type.name!r} is already registered")
    ITEM_TYPES[item_type.name] = handler = item_type()
    return handler

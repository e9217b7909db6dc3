"""Numbered paper questionnaires: the numbering shared with paper entry, serials and print runs.

A copy's serial is ``<community code>-<wave id>-<NNNN>`` (e.g. ``D01S1C1-3-0007``): numbers run
on per wave and community across print runs and questionnaires, since a paper's serial is its
key within wave and community (:func:`survey.entry.views.paper_key`). Each print run is recorded as a
:class:`~survey.models.PaperBatch`; once a community has one in a wave, paper entry takes only
serials printed for it (papers printed elsewhere stay enterable while no batch exists).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forms import Definition
from forms.definition import Choice, Item
from forms.expressions import describe_constraint
from forms.items import RangeItem, number_text
from reports.paper import TEXT_LINES, PaperForm, PaperNote, PaperQuestion, PaperSection, paper_questionnaires_pdf
from survey import db
from survey.models import Area, ExportLog, PaperBatch, Questionnaire, QuestionnaireVersion, Wave, wave_version
from survey.questionnaires import definition_by_id

MAX_COPIES = 500
# What paper entry takes as a serial; printed serials must be typeable there.
SERIAL = re.compile(r"^[A-Za-z0-9-]{1,40}$")
PRINTED = re.compile(r"^(?P<community>.+)-(?P<wave>[0-9]+)-(?P<number>[0-9]+)$")


class PrintError(ValueError):
    """A print run that cannot be made; the message says why, for the office."""


Numbered = tuple[tuple[int, Choice], ...]  # choices with their printed numbers


@dataclass(frozen=True)
class NumberedItem:
    """A question with its number and its choices with theirs, as on paper and the entry page.

    ``when`` says in plain Chinese when a follow-up question is answered ("" for every other
    question); ``typed_rule`` is its skip rule with choice numbers in place of choice codes
    (what the entry page's script compares with the typed numbers). ``label`` is the wording
    with a reference to an earlier answer said as its placeholder ("（第3题的回答）");
    ``groups`` cuts a cascading choice list by the earlier answer it depends on.
    """

    number: int
    item: Item
    choices: Numbered
    when: str = ""
    typed_rule: dict | list | None = None
    label: str = ""
    groups: tuple[tuple[str, Numbered], ...] = ()

    @property
    def rule(self) -> str:
        """Return what the answer must be, said near its box: the constraint's message, a range's bounds."""
        return rule_text(self.item)

    def choice(self, number: int) -> Choice | None:
        """Return the choice a typed number stands for, else None."""
        return self.item.choices[number - 1] if 1 <= number <= len(self.item.choices) else None


def cascade(definition: Definition, item: Item) -> tuple[tuple[str, Numbered], ...]:
    """Return a cascading choice list cut by the one earlier choice question its filter reads.

    E.g. streets under their district: (("东城区", ((1, 东华街道), (2, ...))), ("西城区", ((3, ...),))).
    Numbers are the choices' places in the whole list, so they run on from group to group. ()
    for an item without a choice_filter, or one whose filter reads anything else (printed whole).
    """
    if item.choice_filter is None or not item.choices:
        return ()
    read = item.choice_filter.references()
    if len(read) != 1:
        return ()
    parent = definition.item(next(iter(read)))
    if not parent.choices:
        return ()
    numbers = {c.code: n for n, c in enumerate(item.choices, start=1)}
    groups = []
    for given in parent.choices:
        offered = item.choices_for({parent.code: given.code})
        if offered:
            groups.append((given.label, tuple((numbers[c.code], c) for c in offered)))
    return tuple(groups)


def numbered_items(definition: Definition) -> list[NumberedItem]:
    """Return every item numbered from 1 in order, each choice numbered from 1 by position.

    The one numbering of paper questionnaires: the printed copy, the entry page and the parsing
    of typed numbers all use it, so "第3题 选2" means the same everywhere. Follow-up questions
    keep their numbers; they say when they are answered.
    """

    def typed(code: str, value: str) -> str:
        target = definition.item(code)
        position = next((n for n, c in enumerate(target.choices, start=1) if c.code == value), None)
        return str(position) if position is not None else value

    return [
        NumberedItem(
            number, item, tuple(enumerate(item.choices, start=1)), definition.asked_when(item),
            item.relevant.map_literals(typed).to_dict() if item.relevant is not None else None,
            definition.piped(item.label, {}), cascade(definition, item),
        )
        for number, item in enumerate(definition.items, start=1)
    ]


def format_serial(community_code: str, wave_id: int, number: int) -> str:
    """Return a printed serial, e.g. ``format_serial("A1", 3, 7) == "A1-3-0007"``."""
    return f"{community_code}-{wave_id}-{number:04d}"


@dataclass(frozen=True)
class Printed:
    pdf: bytes
    wave: Wave
    first: str
    last: str
    copies: int


def printable_waves(session: Session, now: datetime | None = None) -> list[Wave]:
    """Return the waves papers can be printed for: open or not yet open, soonest first."""
    now = now or datetime.now(UTC)
    return list(session.scalars(select(Wave).where(Wave.closes_at > now).order_by(Wave.opens_at, Wave.id)))


def _version_in_wave(session: Session, wave: Wave, code: str) -> QuestionnaireVersion | None:
    return session.scalar(
        select(QuestionnaireVersion)
        .join(wave_version, wave_version.c.questionnaire_version_id == QuestionnaireVersion.id)
        .join(Questionnaire, Questionnaire.id == QuestionnaireVersion.questionnaire_id)
        .where(wave_version.c.wave_id == wave.id, Questionnaire.code == code)
        .order_by(QuestionnaireVersion.version.desc())
        .limit(1)
    )


def _wave(session: Session, code: str, wave_name: str | None, now: datetime) -> tuple[Wave, QuestionnaireVersion]:
    """Return the named wave, else the open wave fielding ``code`` (newest), else the next one."""
    if wave_name:
        wave = session.scalar(select(Wave).where(Wave.name == wave_name))
        if wave is None:
            raise PrintError(f"没有名为“{wave_name}”的调查轮次")
        candidates = [wave]
    else:
        waves = printable_waves(session, now)
        candidates = sorted((w for w in waves if w.opens_at <= now), key=lambda w: w.opens_at, reverse=True)
        candidates += [w for w in waves if w.opens_at > now]
    for wave in candidates:
        version = _version_in_wave(session, wave, code)
        if version is not None:
            return wave, version
    if wave_name:
        raise PrintError(f"调查轮次“{wave_name}”没有问卷 {code}")
    raise PrintError(f"问卷 {code} 没有正在进行或即将开始的调查轮次")


def next_number(session: Session, wave_id: int, area_id: int) -> int:
    """Return the first number of the next print run for a community in a wave."""
    last = session.scalar(
        select(func.max(PaperBatch.last_number)).where(PaperBatch.wave_id == wave_id, PaperBatch.area_id == area_id)
    )
    return (last or 0) + 1


DEFAULT_DIGITS = {"integer": 4, "decimal": 4}  # digit boxes of a number without bounds
DECIMALS = 2  # boxes after the decimal point of a decimal without a step
MAX_DIGITS = 10
TABLE = "table-list"


def _bounds(item: Item) -> tuple[float | None, float | None]:
    """Return the least and greatest answer the item's constraint allows (None: not said).

    Read from the constraint's stored tree: comparisons of ``.`` with a number, joined by ``and``.
    """
    low: float | None = None
    high: float | None = None

    def walk(node: object) -> None:
        nonlocal low, high
        if not isinstance(node, list) or not node:
            return
        op, args = node[0], node[1:]
        if op == "and":
            for arg in args:
                walk(arg)
        elif op in (">=", ">", "<=", "<") and len(args) == 2:
            left, right = args
            if left == ["dot"] and isinstance(right, list) and right[:1] == ["num"]:
                value, upper = float(right[1]), op in ("<=", "<")
            elif right == ["dot"] and isinstance(left, list) and left[:1] == ["num"]:
                value, upper = float(left[1]), op in (">=", ">")
            else:
                return
            if upper:
                high = value if high is None else min(high, value)
            else:
                low = value if low is None else max(low, value)

    if item.constraint is not None:
        walk(item.constraint.to_dict())
    return low, high


def _places(number: float) -> int:
    """Return the digits before the decimal point of a bound (``100`` -> 3)."""
    return len(str(int(abs(number)))) if number == number and abs(number) < 10**MAX_DIGITS else MAX_DIGITS


def _decimals(step: float) -> int:
    text = f"{step:.6f}".rstrip("0")
    return len(text.partition(".")[2])


def rule_text(item: Item) -> str:
    """Return what the question's constraint says, for the printed copy and entry ("" when nothing plain)."""
    if isinstance(item.handler, RangeItem):
        start, end, _step = (number_text(b) for b in item.handler.bounds(item))
        return f"{start}到{end}"
    if item.constraint is None:
        return ""
    own = next((text for _, text in item.constraint_messages if text), "")
    if own:
        return own
    said = describe_constraint(item.constraint, lambda value: (c.label if (c := item.choice(value)) else None))
    return "" if said == "答案不符合要求" else said


def paper_question(definition: Definition, q: NumberedItem) -> PaperQuestion:
    """Return how one numbered question is printed (its type's ``paper`` layout, filled in)."""
    item = q.item
    layout = item.handler.paper
    extra: dict = {}
    if layout == "number":
        if item.range is not None and isinstance(item.handler, RangeItem):
            values = item.handler.values(item)
            start, end, step = item.range
            if len(values) <= 11:
                extra["scale"] = tuple(values)
            else:
                extra.update(digits=max(_places(start), _places(end)), decimals=_decimals(step))
        else:
            low, high = _bounds(item)
            digits = max(_places(b) for b in (low, high) if b is not None) if high is not None else DEFAULT_DIGITS.get(item.type, 4)
            extra.update(digits=max(1, min(digits, MAX_DIGITS)), decimals=0 if item.type == "integer" else DECIMALS)
    hint = item.hint_in(None)
    return PaperQuestion(
        number=q.number, label=q.label or item.label, choices=tuple((n, _printed(c)) for n, c in q.choices),
        lines=TEXT_LINES if item.handler.written else 0, when=q.when, layout=layout,
        hint=definition.piped(hint, {}) if hint else "",
        groups=tuple((parent, tuple((n, _printed(c)) for n, c in choices)) for parent, choices in q.groups),
        rule="" if extra.get("scale") else rule_text(item), **extra,
    )


def _table_columns(questions: list[PaperQuestion]) -> tuple[tuple[int, str], ...]:
    """Return the choices every question of a table-list section shares, else () (printed one by one)."""
    if not questions or any(q.layout != "choices" or q.groups or q.other or not q.choices for q in questions):
        return ()
    first = questions[0].choices
    return first if all(q.choices == first for q in questions) else ()


def paper_form(area: Area, wave: Wave, definition: Definition) -> PaperForm:
    """Return what every printed copy for ``area`` shows: titles, community, intro, privacy note,
    section headings, notes and numbered questions (calculated items are never printed).

    An "其他（请注明）" box is printed with the question it belongs to; a table-list section whose
    questions share their choices is a table.
    """
    root = area
    while root.parent is not None:
        root = root.parent
    street = area.parent.name if area.parent is not None and area.parent.level == "street" else ""
    printed = {q.item.code: paper_question(definition, q) for q in numbered_items(definition)}
    for item in definition.items:
        if item.other_of is not None and item.other_of in printed:
            printed[item.other_of] = replace(printed[item.other_of], other=printed[item.code])
    sections = []
    for section in definition.sections:
        parts: list[PaperQuestion | PaperNote] = []
        for element in section.elements:
            if element.code in printed and element.other_of not in printed:
                parts.append(printed[element.code])
            elif not element.is_question and not element.handler.computed and element.label:
                parts.append(PaperNote(definition.piped(element.label, {})))
        columns = _table_columns([p for p in parts if isinstance(p, PaperQuestion)]) if TABLE in section.appearances else ()
        sections.append(PaperSection(section.title, tuple(parts), columns))
    return PaperForm(city_name=root.name if root is not area else "", title=definition.title, community_name=area.name,
                     street_name=street, wave_name=wave.name, questions=tuple(printed.values()),
                     intro=definition.intro, privacy=definition.privacy, sections=tuple(sections))


def print_questionnaires(session: Session, code: str, area: Area, count: int, *, wave_name: str | None = None,
                         user_id: int | None = None, now: datetime | None = None) -> Printed:
    """Render ``count`` numbered copies of questionnaire ``code`` for a community and record the run.

    The PDF is made before anything is written, so a failed rendering records nothing; a
    concurrent run that took the same numbers meanwhile makes this one start again after it.
    With ``user_id`` (an office account) the run is also written to the export log.
    """
    now = now or datetime.now(UTC)
    if not 1 <= count <= MAX_COPIES:
        raise PrintError(f"每次印制 1 到 {MAX_COPIES} 份，不能是 {count} 份")
    if area.level != "community":
        raise PrintError(f"{area.name}不是社区：问卷编号按社区分配，请选择一个社区打印")
    wave, version = _wave(session, code, wave_name, now)
    definition = definition_by_id(session, version.id)
    form = paper_form(area, wave, definition)
    for _attempt in range(3):
        first = next_number(session, wave.id, area.id)
        serials = [format_serial(area.code, wave.id, n) for n in range(first, first + count)]
        if not SERIAL.fullmatch(serials[-1]):
            raise PrintError(f"社区编码“{area.code}”不能用在问卷编号里：编号只能有字母、数字和短横线，最长40位")
        pdf = paper_questionnaires_pdf(form, serials)
        try:
            with db.write_transaction(session):
                session.add(PaperBatch(wave_id=wave.id, area_id=area.id, questionnaire_code=code, first_number=first,
                                       last_number=first + count - 1, printed_by_id=user_id, created_at=now))
                if user_id is not None:
                    session.add(ExportLog(user_id=user_id, what="paper", area_id=area.id, wave_id=wave.id,
                                          file_format="pdf", rows=count, created_at=now))
        except IntegrityError:
            continue
        return Printed(pdf=pdf, wave=wave, first=serials[0], last=serials[-1], copies=count)
    raise PrintError("其他人正在为这个社区打印问卷，请稍后重试")


def batches(session: Session, area: Area) -> list[PaperBatch]:
    """Return the community's print runs, newest first."""
    return list(session.scalars(
        select(PaperBatch).where(PaperBatch.area_id == area.id).order_by(PaperBatch.created_at.desc(), PaperBatch.id.desc())
    ))


def check_serial(session: Session, wave_id: int, area: Area, code: str, serial: str) -> tuple[str, str | None]:
    """Return (the serial to key a paper by, a message refusing it or None) at paper entry.

    While the community has no print run in the wave, any serial is taken as typed (papers
    printed outside the platform). Once it has one, only serials of its runs are taken, for
    the questionnaire they were printed for, and typed with or without leading zeros they key
    the same paper.
    """
    runs = session.scalars(select(PaperBatch).where(PaperBatch.wave_id == wave_id, PaperBatch.area_id == area.id)).all()
    if not runs:
        return serial, None
    found = PRINTED.fullmatch(serial)
    if found and found["community"].upper() == area.code.upper() and int(found["wave"]) == wave_id:
        number = int(found["number"])
        run = next((r for r in runs if r.first_number <= number <= r.last_number), None)
        if run is not None:
            if run.questionnaire_code != code:
                title = session.scalar(select(Questionnaire.title).where(Questionnaire.code == run.questionnaire_code))
                return serial, f"编号 {serial} 印在《{title or run.questionnaire_code}》上，请到该问卷的录入页录入"
            return format_serial(area.code, wave_id, number), None
    return serial, f"编号 {serial} 不是本社区本轮印制的问卷编号，请核对"


def _printed(choice: Choice) -> str:
    """Return a choice as printed: an exclusive one ("以上都没有") says it is ticked alone."""
    return f"{choice.label}（选此项则不选其他）" if choice.exclusive else choice.label

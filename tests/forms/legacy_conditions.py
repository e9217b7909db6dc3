"""The first skip-rule engine (once forms/conditions.py), kept as the reference the tests hold forms.expressions to.

Definitions stored by early databases hold its trees; forms.expressions reads them and must
mean and say the same. What follows is its original description.

Skip logic: the small ``relevant`` expressions a questionnaire may use, as a tree.

Supported (XLSForm/ODK syntax): ``${q} = 'x'``, ``${q} != 'x'``, ``selected(${q}, 'x')``, joined
by ``and`` / ``or`` with parentheses (``and`` binds tighter than ``or``). Anything else is refused
with a plain message, so a questionnaire never silently ignores a rule its author wrote.

A definition stores the tree as a dict: a comparison is ``{"op": "=" | "!=" | "selected",
"item": CODE, "value": CHOICE}``; a combination is ``{"op": "and" | "or", "args": [...]}``.
As in ODK, an unanswered (or skipped) question compares as the empty string, so
``${q} != 'x'`` holds while ``q`` is unanswered.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

COMPARISONS = ("=", "!=", "selected")
JOINS = ("and", "or")
HELP = "只支持 ${题目} = '选项'、${题目} != '选项'、selected(${题目}, '选项')，可用 and / or 和括号连接"
# Parentheses nest at most this deep: the parser recurses once per level.
MAX_NESTING = 10
# A reference's name stops at the next "$", "{" or "}": a failed match then scans only to there,
# so a text of repeated "${" is tokenized in linear time (with [^}]* each "${" scanned to the end).
TOKEN = re.compile(
    r"""\s*(?:
        (?P<ref>\$\{(?P<name>[^${}]*)\})
      | (?P<string>'[^']*'|"[^"]*")
      | (?P<op>!=|=)
      | (?P<open>\()
      | (?P<close>\))
      | (?P<comma>,)
      | (?P<number>\d+(?:\.\d+)?)
      | (?P<word>[A-Za-z_][A-Za-z0-9_:.-]*)
      | (?P<other>\S)
    )""",
    re.VERBOSE,
)


class ExpressionError(ValueError):
    """An expression this platform does not support; the message is plain Chinese for staff."""


@dataclass(frozen=True)
class Condition:
    """One node of a skip rule: a comparison with a question's answer, or an and/or of conditions."""

    op: str
    item: str = ""
    value: str = ""
    args: tuple[Condition, ...] = ()

    def evaluate(self, answers: Mapping[str, str | None]) -> bool:
        """Return whether the condition holds for the answers given so far.

        >>> rule = parse_expression("${a} = 'Y' and (${b} != 'N' or selected(${c}, '1'))")
        >>> rule.evaluate({"a": "Y"}), rule.evaluate({"a": "Y", "b": "N"}), rule.evaluate({"a": "Y", "b": "N", "c": "1"})
        (True, False, True)
        """
        if self.op == "and":
            return all(arg.evaluate(answers) for arg in self.args)
        if self.op == "or":
            return any(arg.evaluate(answers) for arg in self.args)
        given = answers.get(self.item) or ""
        return given != self.value if self.op == "!=" else given == self.value

    def comparisons(self) -> list[Condition]:
        """Return the comparisons (leaves) of the tree, left to right."""
        if self.op in JOINS:
            return [leaf for arg in self.args for leaf in arg.comparisons()]
        return [self]

    def describe(self, question: Callable[[str], str], label: Callable[[str, str], str | None]) -> str:
        """Return the rule in plain Chinese for respondents and grid workers.

        ``question(code)`` names a question (e.g. "第3题"); ``label(code, value)`` gives the
        choice's label, or None when the question has no choices (its answer is typed).

        >>> rule = parse_expression("(${a} = 'Y' or ${a} = 'U') and ${b} != '1'")
        >>> rule.describe(lambda code: {"a": "第1题", "b": "第2题"}[code], lambda code, value: {"Y": "是", "U": "不清楚"}.get(value, value))
        '第1题选“是”或“不清楚”，并且第2题没有选“1”'
        """
        if self._one_question_choices():
            first = self.args[0]
            return f"{question(first.item)}选" + "或".join(f"“{label(a.item, a.value) or a.value}”" for a in self.args)
        if self.op in JOINS:
            parts = [
                f"（{a.describe(question, label)}）" if a.op in JOINS and not a._one_question_choices() else a.describe(question, label)
                for a in self.args
            ]
            return ("，并且" if self.op == "and" else "，或者").join(parts)
        shown = label(self.item, self.value)
        verb = "选" if shown is not None else "填"
        negated = "没有" if self.op == "!=" else ""
        return f"{question(self.item)}{negated}{verb}“{shown if shown is not None else self.value}”"

    def _one_question_choices(self) -> bool:
        """Return whether this is an ``or`` of choices of one question (said as 第N题选“A”或“B”)."""
        return (self.op == "or" and len({a.item for a in self.args}) == 1
                and all(a.op in ("=", "selected") for a in self.args))

    def map_values(self, change: Callable[[str, str], str]) -> Condition:
        """Return the same tree with every compared value replaced by ``change(item, value)``."""
        if self.op in JOINS:
            return Condition(self.op, args=tuple(arg.map_values(change) for arg in self.args))
        return Condition(self.op, self.item, change(self.item, self.value))

    def to_dict(self) -> dict[str, Any]:
        """Return the tree as stored in a definition dict."""
        if self.op in JOINS:
            return {"op": self.op, "args": [arg.to_dict() for arg in self.args]}
        return {"op": self.op, "item": self.item, "value": self.value}

    def to_xlsform(self) -> str:
        """Return the expression in XLSForm syntax (parsing it back gives an equal tree).

        >>> parse_expression("(${a}='1' or ${b}='2') and ${c}!='3'").to_xlsform()
        "(${a} = '1' or ${b} = '2') and ${c} != '3'"
        """
        if self.op == "and":
            return " and ".join(f"({a.to_xlsform()})" if a.op == "or" else a.to_xlsform() for a in self.args)
        if self.op == "or":
            return " or ".join(a.to_xlsform() for a in self.args)
        value = f'"{self.value}"' if "'" in self.value else f"'{self.value}'"
        if self.op == "selected":
            return f"selected(${{{self.item}}}, {value})"
        return f"${{{self.item}}} {self.op} {value}"


def join(op: str, args: list[Condition]) -> Condition:
    """Return ``args`` joined by ``op``, flattening nested joins of the same op (one canonical tree)."""
    flat: list[Condition] = []
    for arg in args:
        flat.extend(arg.args if arg.op == op else (arg,))
    return flat[0] if len(flat) == 1 else Condition(op, args=tuple(flat))


def condition_from_dict(raw: Any) -> Condition:
    """Return the tree stored in a definition dict; raise ValueError (English) for a malformed one."""
    if not isinstance(raw, dict) or raw.get("op") not in COMPARISONS + JOINS:
        raise ValueError(f"relevant must be a condition with op one of {', '.join(COMPARISONS + JOINS)}")
    if raw["op"] in JOINS:
        args = raw.get("args")
        if not isinstance(args, list) or len(args) < 2:
            raise ValueError(f"relevant {raw['op']!r} needs at least two args")
        return join(raw["op"], [condition_from_dict(arg) for arg in args])
    item, value = raw.get("item"), raw.get("value")
    if not isinstance(item, str) or not item or not isinstance(value, str):
        raise ValueError("relevant comparison needs an item code and a text value")
    if "'" in value and '"' in value:
        raise ValueError("relevant value cannot hold both kinds of quote")
    return Condition(raw["op"], item, value)


def parse_expression(text: str) -> Condition:
    """Parse an XLSForm ``relevant`` expression of the supported forms; raise ExpressionError otherwise.

    >>> parse_expression("${q1} = 'Y' or ${q1} = 'U'").to_dict()["op"]
    'or'
    >>> parse_expression("${age} > 18")
    Traceback (most recent call last):
    ...
    tests.forms.legacy_conditions.ExpressionError: 不支持的条件 "${age} > 18"（不支持 ">"）：只支持 ${题目} = '选项'、${题目} != '选项'、selected(${题目}, '选项')，可用 and / or 和括号连接

    Linear in the text's length; parentheses nest at most ``MAX_NESTING`` deep.
    """
    tokens = _tokens(text)
    parser = _Parser(text, tokens)
    tree = parser.expression()
    if parser.position != len(tokens):
        raise parser.fail(tokens[parser.position])
    return tree


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None or match.end() == position:  # only trailing spaces are left
            break
        position = match.end()
        kind = match.lastgroup
        if kind is None:  # never: every alternative of TOKEN is a named group
            break
        if kind == "name":  # the inner group of a ${...} reference
            kind = "ref"
        out.append((kind, match.group("name") if kind == "ref" else match.group(kind).strip()))
    return out


class _Parser:
    def __init__(self, text: str, tokens: list[tuple[str, str]]) -> None:
        self.text, self.tokens, self.position = text, tokens, 0
        self.depth = 0  # parentheses open around the current position

    def fail(self, token: tuple[str, str] | None = None) -> ExpressionError:
        detail = f"（不支持 \"{token[1]}\"）" if token and token[0] in ("other", "word", "number") else ""
        return ExpressionError(f"不支持的条件 \"{self.text.strip()}\"{detail}：{HELP}")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            raise self.fail(token)
        self.position += 1
        return token[1]

    def expression(self) -> Condition:
        args = [self.conjunction()]
        while self.peek() == ("word", "or"):
            self.position += 1
            args.append(self.conjunction())
        return join("or", args)

    def conjunction(self) -> Condition:
        args = [self.atom()]
        while self.peek() == ("word", "and"):
            self.position += 1
            args.append(self.atom())
        return join("and", args)

    def atom(self) -> Condition:
        token = self.peek()
        if token == ("open", "("):
            if self.depth == MAX_NESTING:
                raise ExpressionError(f"不支持的条件 \"{self.text.strip()}\"：括号最多嵌套 {MAX_NESTING} 层")
            self.position += 1
            self.depth += 1
            inner = self.expression()
            self.take("close")
            self.depth -= 1
            return inner
        if token == ("word", "selected"):
            self.position += 1
            self.take("open")
            item = self.reference()
            self.take("comma")
            value = self.string()
            self.take("close")
            return Condition("selected", item, value)
        item = self.reference()
        op = self.take("op")
        return Condition(op, item, self.string())

    def reference(self) -> str:
        name = self.take("ref").strip()
        if not name:
            raise self.fail()
        return name

    def string(self) -> str:
        return self.take("string")[1:-1]

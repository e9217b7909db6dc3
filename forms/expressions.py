"""XLSForm expressions (``relevant``, ``constraint``, ``choice_filter``): one safe parser and evaluator.

The language is the part of XPath 1.0 that ODK and Enketo forms use:

- literals: ``'text'``, ``"text"``, numbers ``123``, ``1.5``, ``.5``; ``${name}`` is a question's
  answer, ``.`` the current question's answer (constraints), a bare name such as ``district`` a
  column of the current choice (``choice_filter``: ``district=${district}``);
- operators, loosest first: ``or``; ``and``; ``=`` ``!=``; ``<`` ``<=`` ``>`` ``>=``; ``+`` ``-``;
  ``*`` ``div`` ``mod``; unary ``-``; parentheses;
- functions: ``selected``, ``count-selected``, ``string-length``, ``regex``, ``if``, ``coalesce``,
  ``today``, ``int``, ``round``, ``not``, ``true``, ``false``, ``number``, ``string``, ``concat``,
  ``boolean``, ``contains``, ``starts-with``. Anything else is refused with a plain Chinese message,
  so a questionnaire never silently ignores a rule its author wrote.

Values and types (XPath 1.0): a value is a string, a number (float) or a boolean.

- An unanswered question is the empty string, so ``${q} != 'x'`` holds while ``q`` is unanswered.
- number(): a string is its trimmed decimal text (``-?digits[.digits]``, spaces, tabs and line
  breaks around it), else NaN (so arithmetic on an unanswered question gives NaN); true is 1.
- string(): an integral number has no decimal point, NaN is ``NaN``, infinities ``Infinity`` and
  ``-Infinity``, -0 is ``0``; other numbers take the shortest digits that read back as the same
  number (Python's repr, JavaScript's String), always written out without an exponent
  (``1e21`` is ``1000000000000000000000``, ``1e-7`` is ``0.0000001``).
- boolean(): a string is true when not empty, a number when neither zero nor NaN.
- ``=`` and ``!=``: when either side is a boolean both are compared as booleans; else when either is
  a number both are compared as numbers (NaN equals nothing); else as strings.
- ``<`` ``<=`` ``>`` ``>=``: two strings that are both ISO dates (``YYYY-MM-DD``) or both times
  (``HH:MM`` or ``HH:MM:SS``) are compared as text, as ODK compares dates; anything else as numbers,
  and a comparison with NaN is false.
- ``int()`` truncates toward zero; ``round(x, digits)`` rounds half away from zero; ``div`` by zero
  gives an infinity or NaN; ``mod`` is the remainder with the dividend's sign.
- ``selected(a, b)``: ``a`` is a space-separated list that holds ``b``; ``coalesce(a, b)`` is the
  first of the two whose text is not empty; ``today()`` is the local date as ``YYYY-MM-DD``.
- ``regex(value, 'pattern')``: as in the ODK XForms spec (getodk/xforms-spec, "regex(string value,
  string expression)": "Returns result of regex test on provided value. The regular expression is
  created from the provided expression string ('[0-9]+' becomes /[0-9]+/)"), a JavaScript
  ``RegExp.test``: the pattern may match anywhere; write ``^...$`` to match the whole answer.

Legacy skip rules: the trees forms/conditions.py stored (``${q} = 'x'``, ``${q} != 'x'``,
``selected(${q}, 'x')`` joined by and / or) read as the same expressions (``Expr.from_dict``), say the
same in ``describe`` and mean the same, with one exception: the old engine compared the whole answer
in ``selected()``, which is ODK's list test for any answer without spaces, except that
``selected(${q}, '')`` is now false (as in ODK), where the old engine said true for an unanswered q.

Why no ``eval``: expressions come from uploaded workbooks. They are tokenized by one regular
expression in linear time and parsed by a recursive-descent parser whose recursion is bounded by
``MAX_DEPTH``; the tree is then walked by a small interpreter here and by ``survey/static/expr.js``
in the browser, which read the same ``to_dict()`` tree and give the same results (the shared cases
in tests/forms/expression_cases.json check both). Limits: ``MAX_LENGTH`` characters of text (also of
the canonical text ``to_xlsform()``), ``MAX_DEPTH`` nested parentheses, function calls and minus
signs, ``MAX_NODES`` nodes. A ``regex()`` pattern must be a quoted literal of at most
``MAX_PATTERN`` characters in the syntax JavaScript and Python read alike (no lookaround, named
groups, backreferences, flags or ``\\p{...}``); a repeated group may not hold a variable repetition
or ``|`` (``(a+)+``, ``(a|aa)*``), and the backtracking a pattern allows is bounded, so no answer
makes it run long. The answer is matched as UTF-16 code units, cut to ``MAX_SUBJECT`` of them.
Evaluation never raises, whatever the answers are.
"""
from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

MAX_LENGTH = 1000  # characters of an expression text
MAX_DEPTH = 10  # nesting of parentheses / function calls / unary minus
MAX_NODES = 300  # nodes of the tree
MAX_PATTERN = 200  # characters of a regex() pattern
MAX_SUBJECT = 10_000  # UTF-16 code units of the text regex() looks at
# Backtracking a regex() pattern may allow: start positions x the steps of its one long repetition
# x the choices of its short repetitions and alternatives (about 0.2 s of Python at the worst).
REGEX_BUDGET = 10**8
SMALL_REPEAT = 10  # a repetition with more choices than this is a long one

Value = str | float | bool

# name -> (fewest, most arguments; None: any number)
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "selected": (2, 2), "count-selected": (1, 1), "string-length": (1, 1), "regex": (2, 2),
    "if": (3, 3), "coalesce": (2, 2), "today": (0, 0), "int": (1, 1), "round": (1, 2), "not": (1, 1),
    "true": (0, 0), "false": (0, 0), "number": (1, 1), "string": (1, 1), "concat": (1, None),
    "boolean": (1, 1), "contains": (2, 2), "starts-with": (2, 2),
}
SUPPORTED = "、".join(f"{name}()" for name in FUNCTIONS)
JOINS = ("or", "and")
EQUALITIES = ("=", "!=")
RELATIONS = ("<", "<=", ">", ">=")
ARITHMETIC = ("+", "-", "*", "div", "mod")
LEVELS: tuple[tuple[str, ...], ...] = (("or",), ("and",), EQUALITIES, RELATIONS, ("+", "-"), ("*", "div", "mod"))
PRECEDENCE = {op: level for level, ops in enumerate(LEVELS) for op in ops}
UNARY = len(LEVELS)  # the precedence of a minus sign
LEAVES = ("str", "num", "ref", "dot", "col")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
# One pass over the text: every alternative is linear, and a reference's name stops at the next
# "$", "{" or "}" (so a text of repeated "${" is not scanned to its end again and again).
TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<ref>\$\{(?P<name>[^${}]*)\})
      | (?P<string>'[^']*'|"[^"]*")
      | (?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)
      | (?P<op>!=|<=|>=|[=<>+*(),-])
      | (?P<other>\.\.)
      | (?P<dot>\.)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.-]*(?::[A-Za-z_][A-Za-z0-9_.-]*)?)
      | (?P<other2>.)""",
    re.VERBOSE | re.DOTALL,
)
NUMBER_TEXT = re.compile(r"[ \t\r\n]*(-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))[ \t\r\n]*\Z")
LIST_SPACE = re.compile(r"[ \t\r\n]+")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
ISO_TIME = re.compile(r"[0-9]{2}:[0-9]{2}(?::[0-9]{2})?\Z")
# What JavaScript's \s matches (WhiteSpace and LineTerminator), spelled out for Python's re.
JS_SPACE = "\\t\\n\\x0b\\x0c\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
JS_DOT = "[^\\n\\r\\u2028\\u2029]"


class ExpressionError(ValueError):
    """Unsupported or malformed expression; the message is plain Chinese for office staff."""


@dataclass
class Env:
    """What an expression is evaluated against."""

    answers: Mapping[str, str | None]  # ${name} -> answer text; None or "" = unanswered
    dot: str | None = None  # the value of "." (the current question's answer, for constraints)
    columns: Mapping[str, str] | None = None  # bare names -> the current choice's column values
    today: date | None = None  # today() (the city's local date); default date.today()


@dataclass(frozen=True)
class Expr:
    """A node of an expression tree: ``kind`` is a leaf kind (str, num, ref, dot, col), an operator,
    ``neg`` (unary minus) or ``fn`` (a call of the function named by ``value``)."""

    kind: str
    value: str | float = ""
    args: tuple[Expr, ...] = ()

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(self, env: Env) -> Value:
        """Return the XPath value of the expression.

        >>> parse("${age} >= 18 and ${age} < 60").evaluate(Env({"age": "45"}))
        True
        >>> parse("concat(${a}, '-', 7 div 2, '-', ${b} + 1)").evaluate(Env({"a": "x"}))
        'x-3.5-NaN'
        """
        return _evaluate(self, env)

    def holds(self, env: Env) -> bool:
        """Return boolean() of the value: whether a relevant or constraint holds."""
        return boolean(_evaluate(self, env))

    # -- what the expression uses -------------------------------------------------------------

    def nodes(self) -> Iterator[Expr]:
        """Yield every node of the tree, parents before children, left to right."""
        yield self
        for arg in self.args:
            yield from arg.nodes()

    def references(self) -> frozenset[str]:
        """Return the names of the questions the expression reads (``${name}``)."""
        return frozenset(str(node.value) for node in self.nodes() if node.kind == "ref")

    def uses_dot(self) -> bool:
        """Return whether the expression reads the current question's answer (``.``)."""
        return any(node.kind == "dot" for node in self.nodes())

    def columns(self) -> frozenset[str]:
        """Return the bare names the expression reads (choice columns in a choice_filter)."""
        return frozenset(str(node.value) for node in self.nodes() if node.kind == "col")

    # -- stored forms -------------------------------------------------------------------------

    def to_dict(self) -> Any:
        """Return the tree as JSON-able lists, what survey/static/expr.js evaluates.

        >>> parse("${q} = 'x' or -.5 < count-selected(.)").to_dict()
        ['or', ['=', ['ref', 'q'], ['str', 'x']], ['<', ['neg', ['num', 0.5]], ['fn', 'count-selected', ['dot']]]]
        """
        if self.kind == "dot":
            return ["dot"]
        if self.kind in LEAVES:
            return [self.kind, self.value]
        head: list[Any] = ["fn", self.value] if self.kind == "fn" else [self.kind]
        return head + [arg.to_dict() for arg in self.args]

    @staticmethod
    def from_dict(raw: Any) -> Expr:
        """Return the tree ``to_dict()`` gave, or the one a legacy skip rule stored
        (``{"op": "=" | "!=" | "selected", "item", "value"}``, ``{"op": "and" | "or", "args"}``).

        Raise ValueError for anything else, or a tree that parsing its text would not give back.

        >>> Expr.from_dict({"op": "and", "args": [{"op": "selected", "item": "a", "value": "1"},
        ...                                      {"op": "!=", "item": "b", "value": "2"}]}).to_xlsform()
        "selected(${a}, '1') and ${b} != '2'"
        """
        tree = _from_raw(raw, [MAX_NODES], 0)
        try:
            again = parse(tree.to_xlsform())
        except ExpressionError as error:
            raise ValueError(f"not a valid expression tree: {error}") from None
        if again != tree:
            raise ValueError("not an expression tree in canonical form")
        return tree

    def to_xlsform(self) -> str:
        """Return the canonical XLSForm text; parsing it gives this tree again.

        >>> parse("(${a}='1' or ${b}='2')and(${c}!='3') and .5*(1+2)>=-${d}").to_xlsform()
        "(${a} = '1' or ${b} = '2') and ${c} != '3' and 0.5 * (1 + 2) >= -${d}"
        """
        return _text(self, lambda name: f"${{{name}}}")

    # -- wording ------------------------------------------------------------------------------

    def describe(self, question: Callable[[str], str], label: Callable[[str, str], str | None],
                 multiple: Callable[[str], bool] | None = None) -> str:
        """Return the rule in plain Chinese for respondents and grid workers.

        ``question(code)`` names a question (e.g. "第3题"); ``label(code, value)`` gives the choice's
        label, or None when the question has no choices (its answer is typed); ``multiple(code)``,
        when given, says whether a question is a multiple choice (``selected`` then reads 选了).

        >>> rule = parse("(${a} = 'Y' or ${a} = 'U') and ${b} != '1'")
        >>> rule.describe(lambda code: {"a": "第1题", "b": "第2题"}[code], lambda code, value: {"Y": "是", "U": "不清楚"}.get(value, value))
        '第1题选“是”或“不清楚”，并且第2题没有选“1”'
        >>> parse("${age} >= 18 and count-selected(${q}) > 2").describe(lambda code: code, lambda code, value: None)
        'age填写的数大于或等于18，并且q选了超过2项'
        """
        return _describe(self, question, label, multiple or (lambda code: False))

    def map_literals(self, change: Callable[[str, str], str]) -> Expr:
        """Return the tree with every text compared with ``${item}`` (by ``=``, ``!=`` or as
        ``selected(${item}, text)``) replaced by ``change(item, text)``.

        >>> parse("${q} = 'Y' and selected(${m}, 'b')").map_literals(lambda item, text: item + text).to_xlsform()
        "${q} = 'qY' and selected(${m}, 'mb')"
        """
        args = tuple(arg.map_literals(change) for arg in self.args)
        if self.kind in EQUALITIES or (self.kind == "fn" and self.value == "selected"):
            first, second = args
            if first.kind == "ref" and second.kind == "str":
                args = (first, Expr("str", change(str(first.value), str(second.value))))
            elif self.kind in EQUALITIES and first.kind == "str" and second.kind == "ref":
                args = (Expr("str", change(str(second.value), str(first.value))), second)
        return Expr(self.kind, self.value, args)


# -- parsing ----------------------------------------------------------------------------------


def parse(text: str) -> Expr:
    """Parse an XLSForm expression; raise ExpressionError (plain Chinese) when it is not supported.

    >>> parse("pulldata('x', 'y', 'z', ${q})")
    Traceback (most recent call last):
    ...
    forms.expressions.ExpressionError: 不支持函数 pulldata()：本平台只支持 selected()、count-selected()、string-length()、regex()、if()、coalesce()、today()、int()、round()、not()、true()、false()、number()、string()、concat()、boolean()、contains()、starts-with()
    """
    if not isinstance(text, str):
        raise ExpressionError("表达式应是一段文字")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"表达式太长：最多 {MAX_LENGTH} 个字符，这里有 {len(text)} 个")
    tokens = _tokens(text)
    if not tokens:
        raise ExpressionError("表达式是空的")
    parser = _Parser(text, tokens)
    tree = parser.binary(0)
    if parser.position < len(tokens):
        raise parser.fail(f"多出了 {_shown(tokens[parser.position][1])}")
    count = sum(1 for _ in tree.nodes())
    if count > MAX_NODES:
        raise ExpressionError(f"表达式太复杂：最多 {MAX_NODES} 个部分，这里有 {count} 个")
    canonical = tree.to_xlsform()
    if len(canonical) > MAX_LENGTH:
        raise ExpressionError(f"表达式太长：整理格式后最多 {MAX_LENGTH} 个字符，这里有 {len(canonical)} 个")
    return tree


def _shown(token: str) -> str:
    return f"“{token if len(token) <= 30 else token[:30] + '…'}”"


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None:  # never: the last alternative takes any character
            break
        kind, token = match.lastgroup or "other2", match.group()
        position = match.end()
        if kind == "space":
            continue
        if kind == "name":  # the inner group of a ${...} reference
            kind = "ref"
        if kind in ("other", "other2"):
            if token in "'\"":
                raise _fail(text, f"引号 {token} 没有配对")
            if token == "$":
                raise _fail(text, "“${” 没有配对的 “}”" if text.startswith("${", position - 1) else "“$” 后应是 {题目名称}")
            hint = "（请用英文半角符号）" if "\uff01" <= token <= "\uff5e" or token in "\u3000\u201c\u201d\u2018\u2019" else ""
            raise _fail(text, f"不支持 {_shown(token)}{hint}")
        out.append((kind, token))
    return out


def _fail(text: str, detail: str) -> ExpressionError:
    shown = text.strip()
    shown = shown if len(shown) <= 60 else shown[:60] + "…"
    return ExpressionError(f"表达式 \"{shown}\" 有误：{detail}")


class _Parser:
    def __init__(self, text: str, tokens: list[tuple[str, str]]) -> None:
        self.text, self.tokens, self.position = text, tokens, 0
        self.depth = 0  # parentheses, calls and minus signs around the current position

    def fail(self, detail: str) -> ExpressionError:
        return _fail(self.text, detail)

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def expect(self, token: str) -> None:
        found = self.peek()
        if found is None:
            raise self.fail(f"缺少 “{token}”")
        if found[1] != token or found[0] != "op":
            raise self.fail(f"{_shown(found[1])} 处应是 “{token}”")
        self.position += 1

    def enter(self) -> None:
        if self.depth >= MAX_DEPTH:
            raise ExpressionError(f"表达式嵌套太深：括号、函数和负号最多套 {MAX_DEPTH} 层")
        self.depth += 1

    def operator(self) -> str | None:
        token = self.peek()
        if token is None:
            return None
        kind, text = token
        if (kind == "op" and text in PRECEDENCE) or (kind == "word" and text in ("and", "or", "div", "mod")):
            return text
        return None

    def binary(self, level: int) -> Expr:
        if level == len(LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while (op := self.operator()) in LEVELS[level]:
            self.position += 1
            right = self.binary(level + 1)
            left = _join(op, [left, right]) if op in JOINS else Expr(op, args=(left, right))
        return left

    def unary(self) -> Expr:
        if self.peek() == ("op", "-"):
            self.position += 1
            self.enter()
            operand = self.unary()
            self.depth -= 1
            return Expr("neg", args=(operand,))
        return self.primary()

    def primary(self) -> Expr:
        token = self.peek()
        if token is None:
            raise self.fail("不完整，结尾缺少内容")
        kind, text = token
        self.position += 1
        if kind == "string":
            return Expr("str", text[1:-1])
        if kind == "number":
            value = float(text)
            if math.isinf(value):
                raise self.fail(f"数字 {_shown(text)} 太大")
            return Expr("num", value)
        if kind == "ref":
            name = text[2:-1].strip()
            if not NAME.match(name):
                raise self.fail(f"{_shown(text)} 中的题目名称不合法（应以英文字母开头，只含字母、数字、_ . -）")
            return Expr("ref", name)
        if kind == "dot":
            return Expr("dot")
        if token == ("op", "("):
            self.enter()
            inner = self.binary(0)
            self.expect(")")
            self.depth -= 1
            return inner
        if kind == "word":
            if self.peek() == ("op", "("):
                return self.call(text)
            if ":" in text:
                raise self.fail(f"不支持 {_shown(text)}")
            return Expr("col", text)
        raise self.fail(f"{_shown(text)} 处缺少内容" if kind == "op" else f"不支持 {_shown(text)}")

    def call(self, name: str) -> Expr:
        if name not in FUNCTIONS:
            raise ExpressionError(f"不支持函数 {name}()：本平台只支持 {SUPPORTED}")
        self.position += 1  # the "("
        self.enter()
        args: list[Expr] = []
        if self.peek() != ("op", ")"):
            args.append(self.binary(0))
            while self.peek() == ("op", ","):
                self.position += 1
                args.append(self.binary(0))
        self.expect(")")
        self.depth -= 1
        fewest, most = FUNCTIONS[name]
        if len(args) < fewest or (most is not None and len(args) > most):
            wanted = f"{fewest} 个" if fewest == most else f"{fewest} 个或以上" if most is None else f"{fewest} 到 {most} 个"
            raise ExpressionError(f"函数 {name}() 需要 {wanted}参数，这里有 {len(args)} 个")
        if name == "regex":
            if args[1].kind != "str":
                raise ExpressionError("regex() 的第二个参数必须是用引号括起来的正则表达式")
            _pattern(str(args[1].value))
        return Expr("fn", name, tuple(args))


def _join(op: str, args: list[Expr]) -> Expr:
    """Return ``args`` joined by ``op``, flattening nested joins of the same op (one canonical tree)."""
    flat: list[Expr] = []
    for arg in args:
        flat.extend(arg.args if arg.kind == op else (arg,))
    return flat[0] if len(flat) == 1 else Expr(op, args=tuple(flat))


def _from_raw(raw: Any, budget: list[int], depth: int) -> Expr:
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_NODES:
        raise ValueError(f"expression tree has more than {MAX_NODES} nodes")
    if isinstance(raw, dict):  # the legacy skip-rule format (tests/forms/legacy_conditions.py, once forms/conditions.py)
        op = raw.get("op")
        if op in JOINS:
            args = raw.get("args")
            if not isinstance(args, list) or len(args) < 2:
                raise ValueError(f"condition {op!r} needs at least two args")
            return _join(op, [_from_raw(arg, budget, depth + 1) for arg in args])
        item, value = raw.get("item"), raw.get("value")
        if op not in ("=", "!=", "selected") or not isinstance(item, str) or not item or not isinstance(value, str):
            raise ValueError("condition needs an op (=, !=, selected, and, or), an item code and a text value")
        pair = (Expr("ref", item), Expr("str", value))
        return Expr("fn", "selected", pair) if op == "selected" else Expr(op, args=pair)
    if not isinstance(raw, list | tuple) or not raw or not isinstance(raw[0], str):
        raise ValueError("expression node must be a list starting with its kind")
    kind, rest = raw[0], list(raw[1:])
    if kind == "dot" and not rest:
        return Expr("dot")
    if kind in ("str", "ref", "col") and len(rest) == 1 and isinstance(rest[0], str):
        return Expr(kind, rest[0])
    if kind == "num" and len(rest) == 1 and isinstance(rest[0], int | float) and not isinstance(rest[0], bool):
        try:
            return Expr("num", float(rest[0]))
        except OverflowError:
            raise ValueError("number too large") from None
    if kind == "fn" and rest and isinstance(rest[0], str):
        return Expr("fn", rest[0], tuple(_from_raw(arg, budget, depth + 1) for arg in rest[1:]))
    args = [_from_raw(arg, budget, depth + 1) for arg in rest]
    if kind in JOINS and len(args) >= 2:
        return _join(kind, args)
    if kind in PRECEDENCE and len(args) == 2 or kind == "neg" and len(args) == 1:
        return Expr(kind, args=tuple(args))
    raise ValueError(f"malformed expression node {kind!r}")


def _text(node: Expr, ref: Callable[[str], str]) -> str:
    """Return the canonical text of ``node``, each ``${name}`` written as ``ref(name)``."""
    kind = node.kind
    if kind == "str":
        value = str(node.value)
        if "'" not in value:
            return f"'{value}'"
        if '"' not in value:
            return f'"{value}"'
        raise ExpressionError("文字中不能同时含有单引号和双引号")
    if kind == "num":
        return string(float(node.value))
    if kind == "ref":
        return ref(str(node.value))
    if kind == "dot":
        return "."
    if kind == "col":
        return str(node.value)
    if kind == "fn":
        return f"{node.value}(" + ", ".join(_text(arg, ref) for arg in node.args) + ")"
    if kind == "neg":
        operand = node.args[0]
        inner = _text(operand, ref)
        return f"-({inner})" if operand.kind in PRECEDENCE else f"-{inner}"
    level = PRECEDENCE[kind]
    parts = []
    for index, arg in enumerate(node.args):
        inner = _text(arg, ref)
        if arg.kind in PRECEDENCE and (PRECEDENCE[arg.kind] < level or (index > 0 and PRECEDENCE[arg.kind] == level)):
            inner = f"({inner})"
        parts.append(inner)
    return f" {kind} ".join(parts)


# -- regular expressions ----------------------------------------------------------------------


class _Group:
    def __init__(self) -> None:
        self.variable = False  # holds a repetition of varying count or a "|", at any depth
        self.alternatives = 1  # "|"-separated branches directly inside


def _pattern_error(pattern: str, detail: str) -> ExpressionError:
    shown = pattern if len(pattern) <= 40 else pattern[:40] + "…"
    return ExpressionError(f"正则表达式 \"{shown}\" {detail}")


@lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern[str]:
    """Return ``pattern`` compiled for Python so that it matches as JavaScript's RegExp does; raise
    ExpressionError for syntax the two read differently and patterns that could run long."""
    if len(pattern) > MAX_PATTERN:
        raise ExpressionError(f"正则表达式太长：最多 {MAX_PATTERN} 个字符，这里有 {len(pattern)} 个")
    out: list[str] = []
    groups = [_Group()]
    repeatable: _Group | str | None = None  # what a repetition sign here would repeat
    long_repeats, choices, i, n = 0, 1, 0, len(pattern)
    while i < n:
        c = pattern[i]
        if ord(c) > 0xFFFF:
            raise _pattern_error(pattern, f"含有不支持的字符 {c}")
        if c == "\\":
            piece, i, kind = _escape(pattern, i, False)
            out.append(piece)
            repeatable = None if kind == "assert" else "atom"
        elif c == "[":
            piece, i = _char_class(pattern, i)
            out.append(piece)
            repeatable = "atom"
        elif c == "(":
            if pattern.startswith("(?:", i):
                out.append("(?:")
                i += 3
            elif pattern.startswith("(?", i):
                raise _pattern_error(pattern, "不支持 (? 开头的写法（前后查找、命名组、标志）")
            else:
                out.append("(")
                i += 1
            groups.append(_Group())
            repeatable = None
        elif c == ")":
            if len(groups) == 1:
                raise _pattern_error(pattern, "多了右括号")
            group = groups.pop()
            choices *= group.alternatives
            groups[-1].variable |= group.variable
            out.append(")")
            i += 1
            repeatable = group
        elif c == "|":
            groups[-1].alternatives += 1
            groups[-1].variable = True
            out.append("|")
            i += 1
            repeatable = None
        elif c in "*+?{":
            low, high, end = _repeat(pattern, i)
            if repeatable is None:
                raise _pattern_error(pattern, f"第{i + 1}个字符 {c} 前面缺少要重复的内容")
            if isinstance(repeatable, _Group) and repeatable.variable and (high is None or high > 1):
                raise _pattern_error(pattern, "中重复的括号里不能再有次数不定的重复或 |（可能运行过慢），请改写")
            if low != high:
                groups[-1].variable = True
            if high is None or high - low + 1 > SMALL_REPEAT:
                long_repeats += 1
                if long_repeats > 1:
                    raise _pattern_error(pattern, "中最多只能有一处次数不定的长重复（* + {n,} 等，可能运行过慢）")
            else:
                choices *= high - low + 1
            if end < n and pattern[end] == "?":  # lazy
                end += 1
            out.append(pattern[i:end])
            i = end
            repeatable = None
        elif c in "}]":
            raise _pattern_error(pattern, f"中的 {c} 没有配对，如要匹配它请写成 \\{c}")
        elif c == ".":
            out.append(JS_DOT)
            i += 1
            repeatable = "atom"
        elif c == "$":
            out.append("\\Z")
            i += 1
            repeatable = None
        elif c == "^":
            out.append("^")
            i += 1
            repeatable = None
        else:
            out.append(re.escape(c))
            i += 1
            repeatable = "atom"
    if len(groups) > 1:
        raise _pattern_error(pattern, "缺少右括号")
    choices *= groups[0].alternatives
    anchored = pattern.startswith("^") and groups[0].alternatives == 1
    cost = (1 if anchored else MAX_SUBJECT) * (MAX_SUBJECT if long_repeats else 1) * choices
    if cost > REGEX_BUDGET:
        raise _pattern_error(pattern, "的可能组合太多（可能运行过慢）：请减少 ? | {m,n}，或以 ^ 开头")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return re.compile("".join(out), re.ASCII)
    except (re.error, Warning, RecursionError, OverflowError) as error:
        raise _pattern_error(pattern, f"有误：{error}") from None


def _repeat(pattern: str, i: int) -> tuple[int, int | None, int]:
    """Return the repetition at ``i``: its fewest and most counts (None: no limit) and its end."""
    c = pattern[i]
    if c != "{":
        return {"*": (0, None), "+": (1, None), "?": (0, 1)}[c] + (i + 1,)
    match = re.compile(r"\{([0-9]{1,4})(,([0-9]{0,4}))?\}").match(pattern, i)
    if match is None:
        raise _pattern_error(pattern, "中的 { 应写成 {n}、{n,} 或 {m,n}，如要匹配 { 请写成 \\{")
    low = int(match.group(1))
    high = low if match.group(2) is None else int(match.group(3)) if match.group(3) else None
    if low > 1000 or (high is not None and (high > 1000 or high < low)):
        raise _pattern_error(pattern, "中重复次数应在 0 到 1000 之间，且前小后大")
    return low, high, match.end()


def _escape(pattern: str, i: int, in_class: bool) -> tuple[str, int, str]:
    """Return the Python text of the escape at ``i``, its end and its kind: char, set or assert."""
    if i + 1 >= len(pattern):
        raise _pattern_error(pattern, "以 \\ 结尾")
    c = pattern[i + 1]
    if c in "dDwW":
        return pattern[i:i + 2], i + 2, "set"
    if c == "s":
        return (JS_SPACE if in_class else f"[{JS_SPACE}]"), i + 2, "set"
    if c == "S" and not in_class:
        return f"[^{JS_SPACE}]", i + 2, "set"
    if c == "b" and not in_class:  # (Python's \B never matches an empty text: refused)
        return pattern[i:i + 2], i + 2, "assert"
    if c in "tnrfv":
        return pattern[i:i + 2], i + 2, "char"
    if c in "xu":
        size = 2 if c == "x" else 4
        digits = pattern[i + 2:i + 2 + size]
        if len(digits) != size or not all(d in "0123456789abcdefABCDEF" for d in digits):
            raise _pattern_error(pattern, f"中的 \\{c} 后应有 {size} 位十六进制数")
        return pattern[i:i + 2 + size], i + 2 + size, "char"
    if (c.isascii() and not c.isalnum()) or (not c.isascii() and ord(c) <= 0xFFFF):
        return re.escape(c), i + 2, "char"
    raise _pattern_error(pattern, f"中不支持 \\{c}")


def _char_class(pattern: str, i: int) -> tuple[str, int]:
    """Return the Python text of the character class at ``i`` and its end."""
    out = ["["]
    j = i + 1
    if pattern.startswith("^", j):
        out.append("^")
        j += 1
    items: list[tuple[str, str]] = []  # (kind: char, set or dash, python text)
    while True:
        if j >= len(pattern):
            raise _pattern_error(pattern, "中的 [ 没有配对的 ]")
        c = pattern[j]
        if c == "]" and items:
            break
        if c in "[]":
            raise _pattern_error(pattern, f"的方括号里如要匹配 {c} 请写成 \\{c}")
        if ord(c) > 0xFFFF:
            raise _pattern_error(pattern, f"含有不支持的字符 {c}")
        if c == "\\":
            piece, j, kind = _escape(pattern, j, True)
            if kind == "assert":
                raise _pattern_error(pattern, "的方括号里不支持 \\b、\\S")
            items.append((kind, piece))
        elif c in "&~|-" and pattern.startswith(c * 2, j):
            raise _pattern_error(pattern, f"的方括号里不支持连续的 {c * 2}")
        else:
            items.append(("dash" if c == "-" else "char", re.escape(c) if c in "\\^" else c))
            j += 1
    ranged = -1  # the index of the last item that ended a range
    for k, (kind, _) in enumerate(items):
        if kind == "dash" and 0 < k < len(items) - 1:
            if items[k - 1][0] != "char" or items[k + 1][0] != "char" or ranged == k - 1:
                raise _pattern_error(pattern, "的方括号里 - 的用法有歧义，如要匹配 - 请写成 \\-")
            ranged = k + 1
    out.extend(text for _, text in items)
    out.append("]")
    return "".join(out), j + 1


def _code_units(text: str) -> str:
    """Return ``text`` as JavaScript sees it: characters beyond U+FFFF as two surrogates."""
    text = text[:MAX_SUBJECT]
    if text.isascii() or max(text) <= "\uffff":
        return text
    out = []
    for c in text:
        point = ord(c)
        if point > 0xFFFF:
            point -= 0x10000
            out.append(chr(0xD800 + (point >> 10)) + chr(0xDC00 + (point & 0x3FF)))
        else:
            out.append(c)
    return "".join(out)[:MAX_SUBJECT]


# -- evaluation -------------------------------------------------------------------------------


def number(value: Value) -> float:
    """Return XPath number() of a value.

    >>> number(" 12.50 "), number("1e3"), number(""), number(True)
    (12.5, nan, nan, 1.0)
    """
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, float):
        return value
    match = NUMBER_TEXT.match(value)
    return float(match.group(1)) if match else math.nan


def string(value: Value) -> str:
    """Return XPath string() of a value (numbers as described in the module docstring).

    >>> [string(x) for x in (2.0, -0.0, 0.1 + 0.2, 1e21, -1e-7, math.nan, -math.inf, False)]
    ['2', '0', '0.30000000000000004', '1000000000000000000000', '-0.0000001', 'NaN', '-Infinity', 'false']
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + int(exponent or "0")
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    if point >= len(digits):
        text = digits + "0" * (point - len(digits))
    elif point <= 0:
        text = "0." + "0" * -point + digits
    else:
        text = digits[:point] + "." + digits[point:]
    return "-" + text if value < 0 else text


def boolean(value: Value) -> bool:
    """Return XPath boolean() of a value."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value == value and value != 0
    return value != ""


def _truncate(x: float) -> float:
    if math.isnan(x) or math.isinf(x):
        return x
    return math.copysign(float(math.trunc(x)), x)


def _round(x: float, digits: float) -> float:
    if math.isnan(x) or math.isinf(x) or math.isnan(digits):
        return x if not math.isnan(digits) else math.nan
    places = int(max(-308.0, min(308.0, _truncate(digits))))
    scale = 1.0
    for _ in range(abs(places)):
        scale *= 10.0
    y = x * scale if places >= 0 else x / scale
    if math.isinf(y):
        return x
    r = _truncate(y)
    if abs(y - r) >= 0.5:
        r += 1.0 if y > 0 else -1.0
    return r / scale if places >= 0 else r * scale


def _divide(a: float, b: float) -> float:
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _modulo(a: float, b: float) -> float:
    if b == 0 or math.isnan(a) or math.isnan(b) or math.isinf(a):
        return math.nan
    if math.isinf(b):
        return a
    return math.fmod(a, b)


def _temporal(text: str) -> tuple[str, str] | None:
    if ISO_DATE.match(text):
        return "date", text
    if ISO_TIME.match(text):
        return "time", text if len(text) == 8 else text + ":00"
    return None


def _equals(left: Value, right: Value) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return boolean(left) == boolean(right)
    if isinstance(left, float) or isinstance(right, float):
        return number(left) == number(right)
    return left == right


def _relation(op: str, left: Value, right: Value) -> bool:
    a: str | float
    b: str | float
    if isinstance(left, str) and isinstance(right, str):
        first, second = _temporal(left), _temporal(right)
        if first and second and first[0] == second[0]:
            a, b = first[1], second[1]
        else:
            a, b = number(left), number(right)
    else:
        a, b = number(left), number(right)
    if op == "<":
        return a < b  # type: ignore[operator]
    if op == "<=":
        return a <= b  # type: ignore[operator]
    if op == ">":
        return a > b  # type: ignore[operator]
    return a >= b  # type: ignore[operator]


def _list(value: Value) -> list[str]:
    return [part for part in LIST_SPACE.split(string(value)) if part]


def _evaluate(node: Expr, env: Env) -> Value:
    kind, args = node.kind, node.args
    if kind == "str":
        return str(node.value)
    if kind == "num":
        return float(node.value)
    if kind == "ref":
        answer = env.answers.get(str(node.value))
        return "" if answer is None else str(answer)
    if kind == "dot":
        return "" if env.dot is None else str(env.dot)
    if kind == "col":
        column = (env.columns or {}).get(str(node.value))
        return "" if column is None else str(column)
    if kind == "or":
        return any(boolean(_evaluate(arg, env)) for arg in args)
    if kind == "and":
        return all(boolean(_evaluate(arg, env)) for arg in args)
    if kind == "neg":
        return -number(_evaluate(args[0], env))
    if kind == "fn":
        return _call(str(node.value), args, env)
    left, right = _evaluate(args[0], env), _evaluate(args[1], env)
    if kind in EQUALITIES:
        return _equals(left, right) == (kind == "=")
    if kind in RELATIONS:
        return _relation(kind, left, right)
    a, b = number(left), number(right)
    if kind == "+":
        return a + b
    if kind == "-":
        return a - b
    if kind == "*":
        return a * b
    if kind == "div":
        return _divide(a, b)
    return _modulo(a, b)


def _call(name: str, args: tuple[Expr, ...], env: Env) -> Value:
    if name == "if":
        return _evaluate(args[1] if boolean(_evaluate(args[0], env)) else args[2], env)
    if name == "coalesce":
        first = _evaluate(args[0], env)
        return first if string(first) != "" else _evaluate(args[1], env)
    if name == "regex":
        return _pattern(str(args[1].value)).search(_code_units(string(_evaluate(args[0], env)))) is not None
    values = [_evaluate(arg, env) for arg in args]
    if name == "selected":
        return string(values[1]) in _list(values[0])
    if name == "count-selected":
        return float(len(_list(values[0])))
    if name == "string-length":
        return float(len(string(values[0])))
    if name == "today":
        return (env.today or date.today()).isoformat()
    if name == "int":
        return _truncate(number(values[0]))
    if name == "round":
        return _round(number(values[0]), number(values[1]) if len(values) > 1 else 0.0)
    if name == "not":
        return not boolean(values[0])
    if name in ("true", "false"):
        return name == "true"
    if name == "number":
        return number(values[0])
    if name == "string":
        return string(values[0])
    if name == "concat":
        return "".join(string(value) for value in values)
    if name == "boolean":
        return boolean(values[0])
    if name == "contains":
        return string(values[1]) in string(values[0])
    return string(values[0]).startswith(string(values[1]))  # starts-with


# -- wording ----------------------------------------------------------------------------------

NUMBER_WORDS = {">": "大于", ">=": "大于或等于", "<": "小于", "<=": "小于或等于", "=": "等于", "!=": "不等于"}
COUNT_WORDS = {">": "选了超过{}项", ">=": "至少选了{}项", "<": "选了少于{}项", "<=": "最多选了{}项",
               "=": "选了{}项", "!=": "选的不是{}项"}
FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}


def _constant(node: Expr) -> float | None:
    """Return the number a literal (or a minus sign before one) stands for, else None."""
    if node.kind == "num":
        return float(node.value)
    if node.kind == "neg" and node.args[0].kind == "num":
        return -float(node.args[0].value)
    return None


def _compared(node: Expr) -> tuple[str, Expr, float] | None:
    """Return (op, subject, number) for ``subject op number`` or ``number op subject``."""
    if node.kind not in EQUALITIES + RELATIONS:
        return None
    left, right = node.args
    if (value := _constant(right)) is not None and _constant(left) is None:
        return node.kind, left, value
    if (value := _constant(left)) is not None and _constant(right) is None:
        return FLIPPED[node.kind], right, value
    return None


def _choice_test(node: Expr) -> tuple[str, str, str] | None:
    """Return (op, item, value) for ``${item} = 'v'``, ``!=``, ``selected(${item}, 'v')`` and their not()."""
    if node.kind == "fn" and node.value == "not" and (inner := _choice_test(node.args[0])):
        return {"=": "!=", "!=": "=", "selected": "not selected", "not selected": "selected"}[inner[0]], inner[1], inner[2]
    if node.kind in EQUALITIES or (node.kind == "fn" and node.value == "selected"):
        first, second = node.args
        if node.kind in EQUALITIES and first.kind == "str" and second.kind == "ref":
            first, second = second, first
        if first.kind == "ref" and second.kind == "str":
            return "selected" if node.kind == "fn" else node.kind, str(first.value), str(second.value)
    return None


def _one_question_choices(node: Expr) -> bool:
    """Return whether this is an ``or`` of choices of one question (said as 第N题选“A”或“B”)."""
    if node.kind != "or":
        return False
    tests = [_choice_test(arg) for arg in node.args]
    return all(t is not None and t[0] in ("=", "selected") for t in tests) and len({t[1] for t in tests if t}) == 1


def _describe(node: Expr, question: Callable[[str], str], label: Callable[[str, str], str | None],
              multiple: Callable[[str], bool]) -> str:
    if _one_question_choices(node):
        tests = [t for t in map(_choice_test, node.args) if t]
        item = tests[0][1]
        verb = "选了" if all(t[0] == "selected" for t in tests) and multiple(item) else "选"
        return f"{question(item)}{verb}" + "或".join(f"“{_label(label, item, value)}”" for _, item, value in tests)
    if node.kind in JOINS:
        parts = [f"（{_describe(arg, question, label, multiple)}）" if arg.kind in JOINS and not _one_question_choices(arg)
                 else _describe(arg, question, label, multiple) for arg in node.args]
        return ("，并且" if node.kind == "and" else "，或者").join(parts)
    test = _choice_test(node)
    if test is not None:
        op, item, value = test
        if value == "" and op in EQUALITIES:
            return f"{question(item)}{'没有回答' if op == '=' else '已回答'}"
        shown = label(item, value)
        verb = "选" if shown is not None else "填"
        if verb == "选" and op in ("selected", "not selected") and multiple(item):
            verb = "选了" if op == "selected" else "选"
        negated = "没有" if op in ("!=", "not selected") else ""
        return f"{question(item)}{negated}{verb}“{shown if shown is not None else value}”"
    compared = _compared(node)
    if compared is not None:
        relation, subject, bound = compared
        if subject.kind == "ref":
            return f"{question(str(subject.value))}填写的数{NUMBER_WORDS[relation]}{string(bound)}"
        if subject.kind == "fn" and subject.value == "count-selected" and subject.args[0].kind == "ref":
            return question(str(subject.args[0].value)) + COUNT_WORDS[relation].format(string(bound))
    shown = _text(node, question)
    names = list(dict.fromkeys(str(n.value) for n in node.nodes() if n.kind == "ref"))
    return f"{question(names[0])}的回答满足 {shown}" if len(names) == 1 else f"满足 {shown}"


def _label(label: Callable[[str, str], str | None], item: str, value: str) -> str:
    shown = label(item, value)
    return value if shown is None else shown


def describe_constraint(expr: Expr, label: Callable[[str], str | None]) -> str:
    """Return a default message for a constraint on the current answer (``.``).

    ``label(value)`` gives the label of the current question's choice, or None.

    >>> describe_constraint(parse(". >= 0 and . <= 120"), lambda value: None)
    '请填写不小于0、不大于120的数'
    >>> [describe_constraint(parse(text), lambda value: None)
    ...  for text in ("count-selected(.) <= 3", "string-length(.) <= 20", "regex(., '^1[0-9]{10}$')")]
    ['最多选3项', '请不要超过20个字', '答案不符合要求']
    """
    parts = list(expr.args) if expr.kind == "and" else [expr]
    phrases: dict[str, list[str]] = {}
    for part in parts:
        found = _constraint_part(part, label)
        if found is None:
            return "答案不符合要求"
        phrases.setdefault(found[0], []).append(found[1])
    if len(phrases) != 1:
        return "答案不符合要求"
    (kind, said), = phrases.items()
    if kind == "number":
        return "请填写" + "、".join(said) + "的数"
    if kind == "count":
        return "，".join(said)
    if kind == "length":
        return "请" + "，".join(said)
    return "请不要选" + "、".join(said)


def _constraint_part(part: Expr, label: Callable[[str], str | None]) -> tuple[str, str] | None:
    if part.kind == "fn" and part.value == "not" and (inner := part.args[0]).kind == "fn" and inner.value == "selected":
        first, second = inner.args
        if first.kind == "dot" and second.kind == "str":
            return "exclude", f"“{label(str(second.value)) or second.value}”"
    if part.kind == "!=" and part.args[0].kind == "dot" and part.args[1].kind == "str":
        code = str(part.args[1].value)
        return "exclude", f"“{label(code) or code}”"
    compared = _compared(part)
    if compared is None:
        return None
    op, subject, value = compared
    shown = string(value)
    whole = value == int(value) if math.isfinite(value) else False
    if subject.kind == "dot" and op in RELATIONS:
        return "number", {">=": "不小于", ">": "大于", "<=": "不大于", "<": "小于"}[op] + shown
    if (subject.kind != "fn" or subject.value not in ("count-selected", "string-length")
            or subject.args[0].kind != "dot" or op == "!="):
        return None
    if op == "<" and whole:
        op, shown = "<=", string(value - 1)
    if op == ">" and whole:
        op, shown = ">=", string(value + 1)
    if subject.value == "count-selected":
        said = {"<=": "最多选{}项", ">=": "至少选{}项", "=": "请选{}项", "<": "选少于{}项", ">": "选多于{}项"}[op]
        return "count", said.format(shown)
    if subject.value == "string-length":
        said = {"<=": "不要超过{}个字", ">=": "至少填写{}个字", "=": "填写{}个字", "<": "少于{}个字", ">": "多于{}个字"}[op]
        return "length", said.format(shown)
    return None

"""TEMPORARY shim over forms.conditions with the API of the coming expression engine (replaced soon)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from forms.conditions import Condition, ExpressionError, condition_from_dict, parse_expression

MAX_LENGTH = 1000
MAX_DEPTH = 10
MAX_NODES = 300


@dataclass
class Env:
    answers: Mapping[str, str | None]
    dot: str | None = None
    columns: Mapping[str, str] | None = None
    today: date | None = None


@dataclass(frozen=True)
class Expr:
    condition: Condition

    def evaluate(self, env: Env) -> str | float | bool:
        return self.condition.evaluate(env.answers)

    def holds(self, env: Env) -> bool:
        return self.condition.evaluate(env.answers)

    def references(self) -> frozenset[str]:
        return frozenset(leaf.item for leaf in self.condition.comparisons())

    def uses_dot(self) -> bool:
        return False

    def columns(self) -> frozenset[str]:
        return frozenset()

    def to_dict(self) -> Any:
        return self.condition.to_dict()

    @staticmethod
    def from_dict(raw: Any) -> Expr:
        return Expr(condition_from_dict(raw))

    def to_xlsform(self) -> str:
        return self.condition.to_xlsform()

    def describe(self, question: Callable[[str], str], label: Callable[[str, str], str | None]) -> str:
        return self.condition.describe(question, label)

    def map_literals(self, change: Callable[[str, str], str]) -> Expr:
        return Expr(self.condition.map_values(change))


def parse(text: str) -> Expr:
    return Expr(parse_expression(text))


def describe_constraint(expr: Expr, label: Any) -> str:
    return "答案不符合要求"


__all__ = ["Env", "Expr", "ExpressionError", "parse", "describe_constraint"]

"""A diverging colour scale centred on the 80-point pass line (red below, blue above)."""
from __future__ import annotations

import math

from analysis.rules import PASS_LINE

LOW, CENTER, HIGH = 60.0, PASS_LINE, 95.0
_RED, _WHITE, _BLUE = (178, 24, 43), (247, 247, 247), (33, 102, 172)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    red, green, blue = (round(x + (y - x) * t) for x, y in zip(a, b))
    return red, green, blue


def score_color(score: float | None) -> str:
    """Return the fill colour for a score: pale at 80, deepening red below and blue above.

    >>> score_color(80), score_color(60), score_color(99), score_color(None)
    ('#f7f7f7', '#b2182b', '#2166ac', '#e0e0e0')
    """
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return "#e0e0e0"
    if score < CENTER:
        rgb = _mix(_WHITE, _RED, min(1.0, (CENTER - score) / (CENTER - LOW)))
    else:
        rgb = _mix(_WHITE, _BLUE, min(1.0, (score - CENTER) / (HIGH - CENTER)))
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def text_color(score: float | None) -> str:
    """Return black or white, whichever reads better on :func:`score_color`."""
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return "#333333"
    return "#ffffff" if score < 70 or score > 90 else "#1f2328"



def plotly_scale() -> list[list[float | str]]:
    """Return the same scale for a plotly colour axis running from LOW to HIGH (zmin, zmax).

    >>> plotly_scale()
    [[0.0, '#b2182b'], [0.5714285714285714, '#f7f7f7'], [1.0, '#2166ac']]
    """
    def at(score: float) -> float:
        return (score - LOW) / (HIGH - LOW)

    return [[0.0, score_color(LOW)], [at(CENTER), score_color(CENTER)], [1.0, score_color(HIGH)]]

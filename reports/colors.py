"""A diverging colour scale centred on the 80-point pass line (red below, blue above)."""
from __future__ import annotations

import math

from analysis.rules import PASS_LINE

LOW, CENTER, HIGH = 60.0, PASS_LINE, 95.0
_RED, _WHITE, _BLUE = (178, 24, 43), (247, 247, 247), (33, 102, 172)
_DARK_TEXT, _LIGHT_TEXT = (31, 35, 40), (255, 255, 255)
MIN_CONTRAST = 4.5  # WCAG AA for normal text: the score in a cell is about 15 px


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    red, green, blue = (round(x + (y - x) * t) for x, y in zip(a, b))
    return red, green, blue


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(v) for v in rgb)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _fill(score: float) -> tuple[int, int, int]:
    """The scale's colour, darkened where neither black nor white text would reach MIN_CONTRAST on it."""
    if score < CENTER:
        rgb = _mix(_WHITE, _RED, min(1.0, (CENTER - score) / (CENTER - LOW)))
    else:
        rgb = _mix(_WHITE, _BLUE, min(1.0, (score - CENTER) / (HIGH - CENTER)))
    step = 0
    while max(contrast(rgb, _DARK_TEXT), contrast(rgb, _LIGHT_TEXT)) < MIN_CONTRAST and step < 20:
        rgb = _mix(rgb, (0, 0, 0), 0.05)
        step += 1
    return rgb


def score_color(score: float | None) -> str:
    """Return the fill colour for a score: pale at 80, deepening red below and blue above; the middle
    shades are a little darker where needed, so that black or white text on them is readable.

    >>> score_color(80), score_color(60), score_color(99), score_color(None)
    ('#f7f7f7', '#b2182b', '#2166ac', '#e0e0e0')
    """
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return "#e0e0e0"
    return "#{:02x}{:02x}{:02x}".format(*_fill(score))


def text_color(score: float | None) -> str:
    """Return near-black or white, whichever contrasts more with :func:`score_color`.

    >>> text_color(80), text_color(60), text_color(None)
    ('#1f2328', '#ffffff', '#333333')
    """
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return "#333333"
    fill = _fill(score)
    return "#ffffff" if contrast(fill, _LIGHT_TEXT) > contrast(fill, _DARK_TEXT) else "#1f2328"



def plotly_scale() -> list[list[float | str]]:
    """Return the same scale for a plotly colour axis running from LOW to HIGH (zmin, zmax).

    >>> plotly_scale()
    [[0.0, '#b2182b'], [0.5714285714285714, '#f7f7f7'], [1.0, '#2166ac']]
    """
    def at(score: float) -> float:
        return (score - LOW) / (HIGH - LOW)

    return [[0.0, score_color(LOW)], [at(CENTER), score_color(CENTER)], [1.0, score_color(HIGH)]]

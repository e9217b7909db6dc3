"""The assessment's fixed numbers, each written once: every module that needs one imports it from here.

- ``SCORE_MIN``/``SCORE_MAX``: the 100-point satisfaction scale residents' answers are scored on.
- ``PASS_LINE``: a city (or community) under 80 points fails the questionnaire part.
- ``TOTAL_POINTS``: the questionnaire part is worth 20 of the assessment's 100 points.
- ``MIN_N``: a community with fewer answers is "small": its sampling variance is smoothed, the
  estimate shown is the shrunk one, and a change between waves is judged on that basis.
"""
from __future__ import annotations

SCORE_MIN = 0.0
SCORE_MAX = 100.0
PASS_LINE = 80.0
TOTAL_POINTS = 20.0
MIN_N = 30

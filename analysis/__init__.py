"""Pure survey statistics: scoring, raking, linearized estimates, small areas, flags and points.

Nothing here imports Flask, SQLAlchemy or the ``survey`` package: functions take arrays or data
frames and return numbers.
"""
from __future__ import annotations

from analysis.errors import AnalysisError
from analysis.estimates import DomainStats, domain_means, domain_stats
from analysis.raking import Design, RakeResult, rake

__all__ = [
    "AnalysisError",
    "Design",
    "DomainStats",
    "FayHerriotResult",
    "RakeResult",
    "assess_communities",
    "city_points",
    "domain_means",
    "domain_stats",
    "fay_herriot",
    "rake",
    "simulate_third_party",
]

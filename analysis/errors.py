"""The one exception type the analysis raises for bad input or failed computations."""
from __future__ import annotations


class AnalysisError(ValueError):
    """Input that the analysis cannot use, with a message fit to show a user as it is."""

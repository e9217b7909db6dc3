"""Item scores, respondent satisfaction scores and yes-type rates from answer choices."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError


def item_scores(answers: pd.DataFrame, choice_scores: Mapping[str, Mapping[str, float | None]]) -> pd.DataFrame:
    """Turn choice codes into scores; a choice without a score ("don't know") becomes NaN.

    >>> a = pd.DataFrame({"q1": ["A", "E", None]})
    >>> item_scores(a, {"q1": {"A": 100, "E": None}})["q1"].tolist()
    [100.0, nan, nan]
    """
    out = {}
    for item, scores in choice_scores.items():
        if item not in answers.columns:
            raise AnalysisError(f"scoring: no answers for item {item}")
        column = answers[item]
        unknown = column.dropna()[~column.dropna().astype(str).isin([str(c) for c in scores])]
        if len(unknown):
            raise AnalysisError(f"scoring: item {item} has an unknown choice {unknown.iloc[0]!r}")
        mapping = {str(code): (np.nan if s is None else float(s)) for code, s in scores.items()}
        out[item] = column.astype("string").map(mapping, na_action="ignore").astype(float)
    return pd.DataFrame(out, index=answers.index, dtype=float)


def respondent_scores(scores: pd.DataFrame) -> pd.Series:
    """Return each respondent's mean over the items they scored; NaN when they scored none.

    >>> respondent_scores(pd.DataFrame({"a": [100, np.nan], "b": [60, np.nan]})).tolist()
    [80.0, nan]
    """
    return scores.mean(axis=1, skipna=True)


def yes_indicators(answers: pd.DataFrame, yes_choices: Mapping[str, set[str]], no_choices: Mapping[str, set[str]]) -> pd.DataFrame:
    """Return 1 for a yes-type answer, 0 for a no-type answer, NaN otherwise (don't know, blank).

    >>> a = pd.DataFrame({"k": ["Y", "N", "U"]})
    >>> yes_indicators(a, {"k": {"Y"}}, {"k": {"N"}})["k"].tolist()
    [1.0, 0.0, nan]
    """
    out = {}
    for item, yes in yes_choices.items():
        column = answers[item].astype("string")
        values = np.where(column.isin(list(yes)).fillna(False), 1.0, np.nan)
        values[column.isin(list(no_choices.get(item, set()))).fillna(False).to_numpy()] = 0.0
        out[item] = values
    return pd.DataFrame(out, index=answers.index)


def choice_cells(choices: pd.DataFrame, values: Mapping[tuple, float], keys: list[str]) -> pd.DataFrame:
    """Turn per-cell choice counts into per-cell item statistics (item, keys, n, total, total_sq).

    ``choices`` has columns version_id, item, choice, n and ``keys``; ``values`` maps
    (version_id, item, choice) to the choice's value (a score, or 1/0 for yes/no). Choices
    without a value (don't know) are left out.

    >>> c = pd.DataFrame({"version_id": [1, 1, 1], "item": ["q", "q", "q"], "choice": ["A", "B", "U"],
    ...                   "area": ["x", "x", "x"], "n": [2, 1, 5]})
    >>> row = choice_cells(c, {(1, "q", "A"): 100.0, (1, "q", "B"): 40.0}, ["area"]).iloc[0]
    >>> int(row["n"]), float(row["total"]), float(row["total_sq"])
    (3, 240.0, 21600.0)
    """
    if choices.empty:
        return pd.DataFrame(columns=["item", *keys, "n", "total", "total_sq"])
    value = np.full(len(choices), np.nan)
    if values:  # one vectorised look-up (a dict look-up per row costs seconds at a million answers' cells)
        known = pd.MultiIndex.from_tuples(list(values))
        found = known.get_indexer(pd.MultiIndex.from_arrays([choices["version_id"], choices["item"], choices["choice"]]))
        value[found >= 0] = np.fromiter(values.values(), dtype=float, count=len(values))[found[found >= 0]]
    value = pd.Series(value, index=choices.index)
    usable = choices.assign(value=value).dropna(subset=["value"])
    usable = usable.assign(total=usable["n"] * usable["value"], total_sq=usable["n"] * usable["value"] ** 2)
    return usable.groupby(["item", *keys], as_index=False)[["n", "total", "total_sq"]].sum()

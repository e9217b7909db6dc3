"""Raking (iterative proportional fitting) of uniform base weights to population margins.

Raking works on weighting cells: the cross-classification of the margin variables. Every
respondent of a cell gets the same weight, so the whole computation runs on per-cell counts,
which a database ``GROUP BY`` can deliver as well as a data frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError

MARGIN_COLUMNS = ("variable", "category", "total")


@dataclass(frozen=True)
class Design:
    """A raked design: weighting cells, their respondent counts and their final weights.

    ``cell_codes[g, k]`` is the category index of cell ``g`` on margin ``variables[k]``;
    ``categories[k][code]`` is its label. ``weights[g]`` is the weight of each respondent of
    cell ``g``. ``respondent_cell`` maps respondents to cells when the design was built from
    respondent rows.
    """

    variables: tuple[str, ...]
    categories: tuple[np.ndarray, ...]
    cell_codes: np.ndarray
    counts: np.ndarray
    weights: np.ndarray
    respondent_cell: np.ndarray | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        """Number of respondents in the design."""
        return int(self.counts.sum())

    def respondent_weights(self) -> np.ndarray:
        """Return the weight of every respondent, in input order."""
        if self.respondent_cell is None:
            raise AnalysisError("this design was built from cell counts, not respondents")
        return self.weights[self.respondent_cell]

    def cell_frame(self) -> pd.DataFrame:
        """Return one row per cell: the margin categories, ``count`` and ``weight``."""
        frame = pd.DataFrame(
            {var: cats[self.cell_codes[:, k]] for k, (var, cats) in enumerate(zip(self.variables, self.categories))}
        )
        frame["count"] = self.counts
        frame["weight"] = self.weights
        return frame


@dataclass(frozen=True)
class RakeResult:
    """Outcome of :func:`rake` with the diagnostics a method note reports."""

    design: Design
    iterations: int
    converged: bool
    max_margin_error: float
    deff: float
    n_eff: float
    trimmed_cells: int = 0


def read_margins(margins: pd.DataFrame) -> dict[str, pd.Series]:
    """Validate a margins table (variable, category, total) and split it by variable.

    Variables keep the order of their first appearance: that is the raking order.

    >>> m = pd.DataFrame({"variable": ["sex", "sex"], "category": ["M", "F"], "total": [48, 52]})
    >>> read_margins(m)["sex"].to_dict()
    {'M': 48.0, 'F': 52.0}
    """
    missing = [c for c in MARGIN_COLUMNS if c not in margins.columns]
    if missing:
        raise AnalysisError(f"margins: missing column(s) {', '.join(missing)}; need variable,category,total")
    if len(margins) == 0:
        raise AnalysisError("margins: the table is empty")
    totals = pd.to_numeric(margins["total"], errors="coerce")
    bad = totals.isna() | ~np.isfinite(totals) | (totals <= 0)
    if bad.any():
        row = margins.index[bad.to_numpy()][0]
        raise AnalysisError(
            f"margins: total {margins.loc[row, 'total']!r} for {margins.loc[row, 'variable']}="
            f"{margins.loc[row, 'category']} is not a positive number"
        )
    out: dict[str, pd.Series] = {}
    for variable in pd.unique(margins["variable"].astype(str)):
        rows = margins["variable"].astype(str) == variable
        cats = margins.loc[rows, "category"].astype(str)
        dup = cats[cats.duplicated()]
        if len(dup):
            raise AnalysisError(f"margins: category {dup.iloc[0]!r} of {variable} appears twice")
        out[variable] = pd.Series(totals[rows].to_numpy(dtype=float), index=cats.to_numpy())
    sums = {v: s.sum() for v, s in out.items()}
    first, first_sum = next(iter(sums.items()))
    for variable, total in sums.items():
        if not np.isclose(total, first_sum, rtol=1e-6, atol=0):
            raise AnalysisError(
                f"margins: totals disagree: {first} sums to {first_sum:g} but {variable} sums to {total:g}"
            )
    return out


def _encode(values: pd.Series, variable: str, categories: pd.Index) -> np.ndarray:
    labels = values.astype(str)
    codes = categories.get_indexer(labels)
    if (codes < 0).any():
        unknown = labels[codes < 0].iloc[0]
        raise AnalysisError(f"respondents: {variable}={unknown!r} has no row in the margins")
    return codes


def build_cells(
    data: pd.DataFrame, margins: dict[str, pd.Series], count_column: str | None = None
) -> tuple[tuple[str, ...], tuple[np.ndarray, ...], np.ndarray, np.ndarray, np.ndarray]:
    """Group rows into weighting cells.

    Returns (variables, categories, cell_codes, counts, row_cell). With ``count_column``
    each row already stands for that many respondents (for per-cell counts from a database).
    """
    variables = tuple(margins)
    absent = [v for v in variables if v not in data.columns]
    if absent:
        raise AnalysisError(f"respondents: no column for margin variable(s) {', '.join(absent)}")
    if len(data) == 0:
        raise AnalysisError("respondents: no rows")
    codes = np.empty((len(data), len(variables)), dtype=np.int64)
    categories = []
    for k, variable in enumerate(variables):
        cats = pd.Index(margins[variable].index)
        col = data[variable]
        if col.isna().any():
            raise AnalysisError(f"respondents: {variable} is blank on {int(col.isna().sum())} row(s)")
        codes[:, k] = _encode(col, variable, cats)
        categories.append(cats.to_numpy())
    sizes = np.array([len(c) for c in categories], dtype=np.int64)
    flat = np.ravel_multi_index(codes.T, sizes) if len(sizes) else np.zeros(len(data), np.int64)
    unique, row_cell = np.unique(flat, return_inverse=True)
    weights = np.ones(len(data)) if count_column is None else data[count_column].to_numpy(dtype=float)
    counts = np.bincount(row_cell, weights=weights, minlength=len(unique))
    cell_codes = np.stack(np.unravel_index(unique, sizes), axis=1) if len(sizes) else np.zeros((1, 0), np.int64)
    return variables, tuple(categories), cell_codes.astype(np.int64), counts, row_cell


def rake(
    data: pd.DataFrame,
    margins: pd.DataFrame,
    *,
    tol: float = 1e-10,
    max_iter: int = 100,
    trim: tuple[float, float] | None = None,
    count_column: str | None = None,
) -> RakeResult:
    """Rake uniform base weights to ``margins`` (columns variable, category, total).

    ``data`` holds one row per respondent with a column per margin variable, or one row per
    cell with its respondent count in ``count_column``. Iteration stops when every margin is met
    and no weight moves by more than ``tol`` (both relative). ``trim=(low, high)`` bounds weights to that
    multiple of the mean weight, keeping the total (margins then hold only approximately).

    >>> d = pd.DataFrame({"sex": ["M", "F", "F", "F"]})
    >>> m = pd.DataFrame({"variable": ["sex", "sex"], "category": ["M", "F"], "total": [50, 50]})
    >>> rake(d, m).design.respondent_weights().round(3).tolist()
    [50.0, 16.667, 16.667, 16.667]
    """
    if tol <= 0 or max_iter < 1:
        raise AnalysisError("raking: tolerance must be positive and the iteration limit at least 1")
    targets = read_margins(margins)
    variables, categories, cell_codes, counts, row_cell = build_cells(data, targets, count_column)
    target_arrays = [targets[v].to_numpy() for v in variables]
    for k, variable in enumerate(variables):
        present = np.bincount(cell_codes[:, k], weights=counts, minlength=len(categories[k]))
        empty = np.flatnonzero(present == 0)
        if len(empty):
            raise AnalysisError(
                f"raking: margin category {variable}={categories[k][empty[0]]} has no respondents"
                + (f" (and {len(empty) - 1} more)" if len(empty) > 1 else "")
            )

    weights = np.full(len(counts), target_arrays[0].sum() / counts.sum())
    iterations, converged = _ipf(weights, counts, cell_codes, target_arrays, tol, max_iter)
    if not converged:
        worst = _margin_errors(weights, counts, cell_codes, target_arrays)
        k = int(np.argmax(worst))
        raise AnalysisError(
            f"raking: no convergence after {max_iter} iterations; margin {variables[k]} is still off "
            f"by {worst[k]:.3g} (relative). Check that the margins fit together."
        )
    trimmed = 0
    if trim is not None:
        trimmed = _trim(weights, counts, trim)
    errors = _margin_errors(weights, counts, cell_codes, target_arrays)
    design = Design(variables, categories, cell_codes, counts, weights, None if count_column else row_cell)
    deff, n_eff = kish(weights, counts)
    return RakeResult(design, iterations, converged, float(errors.max()), deff, n_eff, trimmed)


def _ipf(
    weights: np.ndarray,
    counts: np.ndarray,
    cell_codes: np.ndarray,
    targets: list[np.ndarray],
    tol: float,
    max_iter: int,
) -> tuple[int, bool]:
    """Rake ``weights`` in place; return iterations used and whether they converged.

    Converged means that after a full sweep every margin is met within ``tol`` (relative) and
    no weight moved by more than ``tol`` relative to itself during that sweep.
    """
    for iteration in range(1, max_iter + 1):
        before = weights.copy()
        for k, target in enumerate(targets):
            codes = cell_codes[:, k]
            current = np.bincount(codes, weights=counts * weights, minlength=len(target))
            weights *= (target / current)[codes]
        moved = np.max(np.abs(weights - before) / before)
        if moved < tol and _margin_errors(weights, counts, cell_codes, targets).max() < tol:
            return iteration, True
    return max_iter, False


def _margin_errors(weights, counts, cell_codes, targets) -> np.ndarray:
    out = []
    for k, target in enumerate(targets):
        current = np.bincount(cell_codes[:, k], weights=counts * weights, minlength=len(target))
        out.append(np.max(np.abs(current - target) / target))
    return np.array(out)


def _trim(weights: np.ndarray, counts: np.ndarray, bounds: tuple[float, float], max_iter: int = 100) -> int:
    """Bound weights to ``bounds`` times the mean weight, spreading the excess; keep the total."""
    low, high = bounds
    if not 0 <= low < 1 < high:
        raise AnalysisError(f"trimming: bounds must satisfy 0 <= low < 1 < high, got {bounds}")
    total = float(np.dot(weights, counts))
    mean = total / counts.sum()
    lo, hi = low * mean, high * mean
    touched = np.zeros(len(weights), dtype=bool)
    for _ in range(max_iter):
        outside = (weights < lo * (1 - 1e-12)) | (weights > hi * (1 + 1e-12))
        if not outside.any():
            break
        touched |= outside
        np.clip(weights, lo, hi, out=weights)
        free = (weights > lo) & (weights < hi)
        if not free.any():
            raise AnalysisError("trimming: the bounds leave no weight free to carry the total")
        fixed_total = float(np.dot(weights[~free], counts[~free]))
        weights[free] *= (total - fixed_total) / float(np.dot(weights[free], counts[free]))
    return int(touched.sum())


def kish(weights: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """Return Kish's design effect and effective sample size for per-cell weights.

    >>> kish(np.array([1.0, 3.0]), np.array([1.0, 1.0]))
    (1.25, 1.6)
    """
    s1 = float(np.dot(weights, counts))
    s2 = float(np.dot(weights**2, counts))
    n = float(counts.sum())
    return n * s2 / s1**2, s1**2 / s2


def restrict_margins(margins: pd.DataFrame, variable: str, present: set[str]) -> tuple[pd.DataFrame, list[str]]:
    """Keep only the ``variable`` categories in ``present``; scale the other margins to match.

    A community without a single respondent cannot be weighted. Leaving it out of the
    community margin and scaling the other margins (sex, age band) by the population share of
    the communities that remain assumes those have the city's composition; the caller reports
    the communities left out. Returns (margins, left-out categories).

    >>> m = pd.DataFrame({"variable": ["c", "c", "sex", "sex"], "category": ["a", "b", "M", "F"],
    ...                   "total": [60, 40, 50, 50]})
    >>> kept, dropped = restrict_margins(m, "c", {"a"})
    >>> kept["total"].tolist(), dropped
    ([60.0, 30.0, 30.0], ['b'])
    """
    frame = margins.copy()
    frame["total"] = pd.to_numeric(frame["total"], errors="coerce").astype(float)
    frame["category"] = frame["category"].astype(str)
    rows = frame["variable"] == variable
    dropped = sorted(set(frame.loc[rows, "category"]) - set(present))
    if not dropped:
        return frame, []
    kept_rows = rows & frame["category"].isin(present)
    share = frame.loc[kept_rows, "total"].sum() / frame.loc[rows, "total"].sum()
    if share <= 0:
        raise AnalysisError(f"no {variable} in the margins has respondents")
    frame.loc[~rows, "total"] *= share
    return frame[~rows | kept_rows].reset_index(drop=True), dropped

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
    sampling: SamplingDesign | None = None

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
class SamplingDesign:
    """Strata, one-stage clusters (PSUs) and finite population corrections of a design.

    Weighting cells are then split further by stratum and cluster (a cell holds respondents of
    one stratum and one cluster), so that the variance can be taken within strata over PSUs:
    ``cell_stratum[g]`` and ``cell_psu[g]`` give each cell's stratum and PSU (``cell_psu`` is
    None when every respondent is a PSU). ``fraction[h]`` is stratum ``h``'s sampling fraction
    of PSUs (0 without a finite population correction). ``columns`` names the data columns
    behind the split and ``values[k][g]`` is cell ``g``'s label in ``columns[k]``.
    """

    strata: np.ndarray
    cell_stratum: np.ndarray
    cell_psu: np.ndarray | None
    psu_stratum: np.ndarray | None
    fraction: np.ndarray
    columns: tuple[str, ...]
    values: tuple[np.ndarray, ...]

    def psus(self, counts: np.ndarray) -> np.ndarray:
        """Return the number of PSUs in each stratum (respondents when there are no clusters)."""
        if self.psu_stratum is None:
            return np.bincount(self.cell_stratum, weights=counts, minlength=len(self.strata))
        return np.bincount(self.psu_stratum, minlength=len(self.strata)).astype(float)


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
    data: pd.DataFrame, margins: dict[str, pd.Series], count_column: str | None = None, split_by: tuple[str, ...] = ()
) -> tuple[tuple[str, ...], tuple[np.ndarray, ...], np.ndarray, np.ndarray, np.ndarray]:
    """Group rows into weighting cells.

    Returns (variables, categories, cell_codes, counts, row_cell). With ``count_column``
    each row already stands for that many respondents (for per-cell counts from a database).
    ``split_by`` columns (stratum, cluster) split cells further without being margins; their
    codes (sorted labels) come last in ``cell_codes``, after the margin variables'.
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
    for column in split_by:
        if column not in data.columns:
            raise AnalysisError(f"respondents: no column {column!r} for the design")
        if data[column].isna().any():
            raise AnalysisError(f"respondents: {column} is blank on {int(data[column].isna().sum())} row(s)")
        code, labels = pd.factorize(data[column].astype(str), sort=True)
        codes = np.column_stack([codes, code.astype(np.int64)])
        categories.append(labels.to_numpy())
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
    strata: str | None = None,
    cluster: str | None = None,
    fpc: str | None = None,
) -> RakeResult:
    """Rake uniform base weights to ``margins`` (columns variable, category, total).

    ``data`` holds one row per respondent with a column per margin variable, or one row per
    cell with its respondent count in ``count_column``. Iteration stops when every margin is met
    and no weight moves by more than ``tol`` (both relative). ``trim=(low, high)`` bounds weights to that
    multiple of the mean weight, keeping the total (margins then hold only approximately).

    ``strata``, ``cluster`` and ``fpc`` name columns of the sampling design, as R's
    ``svydesign(ids=~cluster, strata=~strata, fpc=~fpc, weights=~1)`` (see
    :func:`sampling_design`); raking itself does not depend on them.

    >>> d = pd.DataFrame({"sex": ["M", "F", "F", "F"]})
    >>> m = pd.DataFrame({"variable": ["sex", "sex"], "category": ["M", "F"], "total": [50, 50]})
    >>> rake(d, m).design.respondent_weights().round(3).tolist()
    [50.0, 16.667, 16.667, 16.667]
    """
    if tol <= 0 or max_iter < 1:
        raise AnalysisError("raking: tolerance must be positive and the iteration limit at least 1")
    targets = read_margins(margins)
    split_by = tuple(dict.fromkeys(c for c in (strata, cluster, fpc) if c))
    variables, categories, cell_codes, counts, row_cell = build_cells(data, targets, count_column, split_by)
    sampling = None
    if split_by:
        extra = dict(zip(split_by, (categories[len(variables) + k][cell_codes[:, len(variables) + k]] for k in range(len(split_by)))))
        sampling = sampling_design(extra, counts, strata, cluster, fpc)
        cell_codes, categories = cell_codes[:, : len(variables)], categories[: len(variables)]
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
    design = Design(variables, categories, cell_codes, counts, weights, None if count_column else row_cell, sampling)
    deff, n_eff = kish(weights, counts)
    return RakeResult(design, iterations, converged, float(errors.max()), deff, n_eff, trimmed)


def sampling_design(
    cell_values: dict[str, np.ndarray], counts: np.ndarray, strata: str | None, cluster: str | None, fpc: str | None
) -> SamplingDesign:
    """Describe strata, clusters and finite population corrections per weighting cell, as R does.

    R's ``fpc`` semantics: a value of at most 1 is the stratum's sampling fraction; a larger one
    is its population size, counted in PSUs (respondents without clusters, clusters with them),
    and the fraction is the sampled PSUs over it. ``fpc`` must be the same within a stratum
    and, as a size, at least the sampled PSUs. A stratum with a single PSU is refused (R's
    default ``survey.lonely.psu = "fail"``). Cluster labels are taken within strata (R's
    ``nest = TRUE``).
    """
    size = len(counts)
    stratum_labels = cell_values[strata] if strata else np.full(size, "all", dtype=object)
    strata_names, cell_stratum = np.unique(stratum_labels.astype(str), return_inverse=True)
    cell_psu = psu_stratum = None
    if cluster:
        keys = pd.MultiIndex.from_arrays([cell_stratum, cell_values[cluster].astype(str)])
        cell_psu, psu_keys = pd.factorize(keys, sort=True)
        psu_stratum = np.asarray(psu_keys.get_level_values(0), dtype=np.int64)
    n_strata = len(strata_names)
    partial = SamplingDesign(strata_names, cell_stratum, cell_psu, psu_stratum, np.zeros(n_strata), (), ())
    sampled = partial.psus(counts)
    lonely = np.flatnonzero(sampled < 2)
    if len(lonely):
        raise AnalysisError(
            f"design: stratum {strata_names[lonely[0]]} has only one PSU; its variance cannot be estimated "
            "(merge it with a neighbouring stratum)"
        )
    fraction = np.zeros(n_strata)
    if fpc:
        values = pd.to_numeric(pd.Series(cell_values[fpc]), errors="coerce").to_numpy(dtype=float)
        if np.isnan(values).any() or (values <= 0).any():
            raise AnalysisError(f"design: {fpc} must be a positive number on every row")
        low = np.full(n_strata, np.inf)
        high = np.full(n_strata, -np.inf)
        np.minimum.at(low, cell_stratum, values)
        np.maximum.at(high, cell_stratum, values)
        if (high - low > 1e-9 * high).any():
            h = int(np.flatnonzero(high - low > 1e-9 * high)[0])
            raise AnalysisError(f"design: {fpc} differs within stratum {strata_names[h]}; it must be the stratum's size")
        if (high <= 1).all():
            fraction = high
        elif (high > 1).all():
            if (high < sampled).any():
                h = int(np.flatnonzero(high < sampled)[0])
                raise AnalysisError(
                    f"design: {fpc} = {high[h]:g} in stratum {strata_names[h]} is smaller than the "
                    f"{int(sampled[h])} PSUs sampled there"
                )
            fraction = sampled / high
        else:
            raise AnalysisError(f"design: {fpc} mixes sampling fractions (<= 1) and population sizes (> 1)")
    columns = tuple(cell_values)
    return SamplingDesign(strata_names, cell_stratum, cell_psu, psu_stratum, fraction, columns,
                          tuple(np.asarray(cell_values[c]).astype(str) for c in columns))


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

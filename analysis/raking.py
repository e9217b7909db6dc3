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
TOTALS_RTOL = 1e-6  # margins whose totals differ by less (relative) are scaled to the first one's


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


LONELY_PSU = ("fail", "adjust", "certainty")


@dataclass(frozen=True)
class Stage:
    """One sampling stage of a design, on weighting cells.

    ``cell_unit[g]`` is the unit (PSU at stage 1, SSU at stage 2, ...) of cell ``g``;
    ``unit_group[u]`` the group that unit ``u`` was sampled within: its stratum at stage 1, its
    unit of the stage before later on (R's nesting). Per group: ``sampled`` units, ``fraction``
    sampled (0 without a finite population correction) and ``factor``, the product of the
    sampling fractions of the stages above (R's ``multistage`` weighs a stage's variance by them).
    """

    cell_unit: np.ndarray
    unit_group: np.ndarray
    sampled: np.ndarray
    fraction: np.ndarray
    factor: np.ndarray


@dataclass(frozen=True)
class SamplingDesign:
    """Base weights, strata, clusters of one or more stages and finite population corrections.

    Weighting cells are then split further by base weight, stratum and the units of every stage
    (a cell holds respondents of one stratum and one unit per stage, all of one base weight), so
    that the variance can be taken within strata over PSUs, and within PSUs over the units of the
    next stage: ``cell_stratum[g]`` gives each cell's stratum, ``stages`` the units of each stage
    (empty when every respondent is a PSU). ``fraction[h]`` is stratum ``h``'s sampling fraction
    at the first stage (0 without a finite population correction); ``respondent_fraction[h]`` the
    same when respondents are the PSUs. ``lonely_psu`` is R's ``survey.lonely.psu`` option:
    ``fail``, ``adjust`` or ``certainty``. ``columns`` names the data columns behind the split and
    ``values[k][g]`` is cell ``g``'s label in ``columns[k]``.
    """

    strata: np.ndarray
    cell_stratum: np.ndarray
    stages: tuple[Stage, ...]
    fraction: np.ndarray
    columns: tuple[str, ...]
    values: tuple[np.ndarray, ...]
    lonely_psu: str = "fail"
    lonely: tuple[str, ...] = ()

    @property
    def cell_psu(self) -> np.ndarray | None:
        """Return each cell's PSU, or None when every respondent is a PSU."""
        return self.stages[0].cell_unit if self.stages else None

    @property
    def psu_stratum(self) -> np.ndarray | None:
        """Return each PSU's stratum, or None when every respondent is a PSU."""
        return self.stages[0].unit_group if self.stages else None

    def psus(self, counts: np.ndarray) -> np.ndarray:
        """Return the number of PSUs in each stratum (respondents when there are no clusters)."""
        if not self.stages:
            return np.bincount(self.cell_stratum, weights=counts, minlength=len(self.strata))
        return self.stages[0].sampled.astype(float)


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

    Variables keep the order of their first appearance: that is the raking order. Totals of the
    variables may differ by ``TOTALS_RTOL`` (relative): each is then scaled to the first's total.

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
        if not np.isclose(total, first_sum, rtol=TOTALS_RTOL, atol=0):
            raise AnalysisError(
                f"margins: totals disagree: {first} sums to {first_sum:g} but {variable} sums to {total:g}"
            )
    # within the tolerance (rounding): make them agree exactly, or raking could never meet them all
    return {variable: series * (first_sum / sums[variable]) for variable, series in out.items()}


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


def design_columns(spec: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """Split a design argument: ``"dnum+snum"`` (R's ``~dnum + snum``) or a sequence of names.

    >>> design_columns("dnum + snum"), design_columns(None), design_columns(["a"])
    (('dnum', 'snum'), (), ('a',))
    """
    if spec is None:
        return ()
    parts = spec.split("+") if isinstance(spec, str) else list(spec)
    names = tuple(p.strip() for p in parts)
    if not all(names):
        raise AnalysisError(f"design: {spec!r} names an empty column; write columns as A+B")
    return names


def rake(
    data: pd.DataFrame,
    margins: pd.DataFrame,
    *,
    tol: float = 1e-10,
    max_iter: int = 100,
    trim: tuple[float, float] | None = None,
    count_column: str | None = None,
    strata: str | None = None,
    cluster: str | tuple[str, ...] | None = None,
    fpc: str | tuple[str, ...] | None = None,
    weights: str | None = None,
    lonely_psu: str = "fail",
) -> RakeResult:
    """Rake base weights to ``margins`` (columns variable, category, total).

    ``data`` holds one row per respondent with a column per margin variable, or one row per
    cell with its respondent count in ``count_column``. Iteration stops when every margin is met
    and no weight moves by more than ``tol`` (both relative). ``trim=(low, high)`` bounds weights to that
    multiple of the mean weight, keeping the total (margins then hold only approximately).

    ``weights`` names a column of base weights (inverse selection probabilities): they are
    raked from, not replaced, as R's ``rake`` does with ``svydesign(weights=~W)``; without it the
    base weights are uniform (``weights=~1``). ``strata``, ``cluster`` and ``fpc`` name columns of
    the sampling design, as R's ``svydesign(ids=~A+B, strata=~S, fpc=~F1+F2, weights=~W,
    nest=TRUE)`` (see :func:`sampling_design`): ``cluster`` and ``fpc`` take one column per stage,
    as ``"A+B"`` or a tuple. ``lonely_psu`` is R's ``options(survey.lonely.psu=)``: ``fail``
    (default), ``adjust`` or ``certainty``. Raking itself depends only on the base weights.

    Margin totals may disagree by a relative 1e-6 (rounding, one person in a million): each
    margin is then scaled to the first margin's total before raking, so that the iteration can
    converge; larger disagreements are refused.

    >>> d = pd.DataFrame({"sex": ["M", "F", "F", "F"]})
    >>> m = pd.DataFrame({"variable": ["sex", "sex"], "category": ["M", "F"], "total": [50, 50]})
    >>> rake(d, m).design.respondent_weights().round(3).tolist()
    [50.0, 16.667, 16.667, 16.667]
    >>> rake(d.assign(w=[1.0, 1.0, 1.0, 2.0]), m, weights="w").design.respondent_weights().round(3).tolist()
    [50.0, 12.5, 12.5, 25.0]
    """
    if tol <= 0 or max_iter < 1:
        raise AnalysisError("raking: tolerance must be positive and the iteration limit at least 1")
    if lonely_psu not in LONELY_PSU:
        raise AnalysisError(f"design: lonely PSU handling must be one of {', '.join(LONELY_PSU)}, not {lonely_psu!r}")
    targets = read_margins(margins)
    stages = design_columns(cluster)
    fpcs = design_columns(fpc)
    if fpcs and len(fpcs) != max(len(stages), 1):
        raise AnalysisError(
            f"design: {len(fpcs)} fpc column(s) for {max(len(stages), 1)} stage(s); give one per stage (--fpc F1+F2)"
        )
    if not fpcs:
        stages = stages[:1]  # R: without population sizes only the first stage enters the variance
    if weights:
        _check_base_weights(data, weights)
    split_by = tuple(dict.fromkeys(c for c in (weights, strata, *stages, *fpcs) if c))
    variables, categories, cell_codes, counts, row_cell = build_cells(data, targets, count_column, split_by)
    sampling = None
    if split_by:
        extra = dict(zip(split_by, (categories[len(variables) + k][cell_codes[:, len(variables) + k]] for k in range(len(split_by)))))
        sampling = sampling_design(extra, counts, strata, stages, fpcs, lonely_psu)
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

    if weights:
        base = np.zeros(len(counts))
        base[row_cell] = pd.to_numeric(data[weights]).to_numpy(dtype=float)
        cell_weights = base
    else:
        cell_weights = np.full(len(counts), target_arrays[0].sum() / counts.sum())
    iterations, converged = _ipf(cell_weights, counts, cell_codes, target_arrays, tol, max_iter)
    if not converged:
        worst = _margin_errors(cell_weights, counts, cell_codes, target_arrays)
        k = int(np.argmax(worst))
        raise AnalysisError(
            f"raking: no convergence after {max_iter} iterations; margin {variables[k]} is still off "
            f"by {worst[k]:.3g} (relative). Check that the margins fit together."
        )
    trimmed = 0
    if trim is not None:
        trimmed = _trim(cell_weights, counts, trim)
    errors = _margin_errors(cell_weights, counts, cell_codes, target_arrays)
    design = Design(variables, categories, cell_codes, counts, cell_weights, None if count_column else row_cell, sampling)
    deff, n_eff = kish(cell_weights, counts)
    return RakeResult(design, iterations, converged, float(errors.max()), deff, n_eff, trimmed)


def _check_base_weights(data: pd.DataFrame, column: str) -> None:
    """Refuse base weights that are missing, not numbers, or not positive, naming the line."""
    if column not in data.columns:
        raise AnalysisError(f"respondents: no column {column!r} for the base weights")
    values = pd.to_numeric(data[column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise AnalysisError(
            f"respondents: base weight {column} = {data[column].iloc[row]!r} on row {row + 1} is not a positive number"
        )


def _group_fraction(
    values: np.ndarray, group: np.ndarray, n_groups: int, sampled: np.ndarray, column: str, names, as_size: bool
) -> np.ndarray:
    """Return each group's sampling fraction from an fpc column (R's ``as.fpc``): sizes or fractions."""
    low = np.full(n_groups, np.inf)
    high = np.full(n_groups, -np.inf)
    np.minimum.at(low, group, values)
    np.maximum.at(high, group, values)
    varies = high - low > 1e-9 * high
    if varies.any():
        h = int(np.flatnonzero(varies)[0])
        raise AnalysisError(f"design: {column} differs within {names(h)}; it must be the population size there")
    if not as_size:
        return high
    if (high < sampled).any():
        h = int(np.flatnonzero(high < sampled)[0])
        raise AnalysisError(
            f"design: {column} = {high[h]:g} in {names(h)} is smaller than the {int(sampled[h])} units sampled there"
        )
    return sampled / high


def sampling_design(
    cell_values: dict[str, np.ndarray],
    counts: np.ndarray,
    strata: str | None,
    cluster: str | tuple[str, ...] | None,
    fpc: str | tuple[str, ...] | None,
    lonely_psu: str = "fail",
) -> SamplingDesign:
    """Describe strata, the stages' units and finite population corrections per weighting cell, as R does.

    R's ``fpc`` semantics, per stage: a value of at most 1 is the sampling fraction; a larger one
    is the population size, counted in that stage's units (respondents without clusters), and the
    fraction is the sampled units over it. ``fpc`` must be the same within a stratum (within a
    unit of the stage above, later on) and, as a size, at least the sampled units. Unit labels are
    taken within strata and within the units above (R's ``nest = TRUE``). The variance then follows
    R's ``multistage``: the first stage's between-PSU variance within strata, plus, with population
    sizes, each later stage's variance within the units above weighted by their sampling fractions.

    A stratum (or a unit, at a later stage) with a single sampled unit is handled by
    ``lonely_psu`` as R's ``survey.lonely.psu``: ``fail`` refuses it, ``adjust`` centres its unit at
    zero instead of the stratum mean, ``certainty`` gives it no variance. A stage fully sampled
    (population size = sampled units) has no variance and is never lonely.
    """
    stage_columns = design_columns(cluster)
    fpcs = design_columns(fpc)
    size = len(counts)
    stratum_labels = cell_values[strata] if strata else np.full(size, "all", dtype=object)
    strata_names, cell_stratum = np.unique(stratum_labels.astype(str), return_inverse=True)
    n_strata = len(strata_names)
    lonely: list[str] = []
    stages: list[Stage] = []
    group, n_groups = cell_stratum, n_strata
    factor = np.ones(n_strata)
    fraction = np.zeros(n_strata)
    path: list[np.ndarray] = [cell_stratum]

    def describe(k: int, labels: np.ndarray):
        return lambda h: f"stratum {strata_names[h]}" if k == 0 else f"stage-{k} unit {labels[h]}"

    fpc_values = [_fpc_values(cell_values[column], column) for column in fpcs]
    # R's as.fpc: population sizes when any value (of any stage) is over 1, else sampling fractions
    as_size = any((v > 1).any() for v in fpc_values)
    if as_size and any((v < 1).any() for v in fpc_values):
        raise AnalysisError(f"design: {'+'.join(fpcs)} mixes sampling fractions (< 1) and population sizes (> 1)")
    group_labels = strata_names
    if not stage_columns:  # respondents are the PSUs
        sampled = np.bincount(cell_stratum, weights=counts, minlength=n_strata)
        if fpcs:
            fraction = _group_fraction(fpc_values[0], cell_stratum, n_strata, sampled, fpcs[0],
                                       describe(0, strata_names), as_size)
        lonely += _lonely_groups(sampled, fraction, lonely_psu, describe(0, strata_names), 1)
    for k, column in enumerate(stage_columns):
        path.append(np.asarray(cell_values[column]).astype(str))
        keys = pd.MultiIndex.from_arrays(path)
        cell_unit, unit_keys = pd.factorize(keys, sort=True)
        unit_group = np.zeros(len(unit_keys), dtype=np.int64)
        unit_group[cell_unit] = group
        sampled = np.bincount(unit_group, minlength=n_groups).astype(float)
        stage_fraction = np.zeros(n_groups)
        if fpcs:
            stage_fraction = _group_fraction(fpc_values[k], group, n_groups, sampled, fpcs[k],
                                             describe(k, group_labels), as_size)
        lonely += _lonely_groups(sampled, stage_fraction, lonely_psu, describe(k, group_labels), k + 1)
        stages.append(Stage(cell_unit.astype(np.int64), unit_group, sampled, stage_fraction, factor))
        if k == 0:
            fraction = stage_fraction
        # the next stage is sampled within this stage's units, weighted by their group's fraction
        factor = (factor * stage_fraction)[unit_group]
        group, n_groups = cell_unit.astype(np.int64), len(unit_keys)
        group_labels = np.array(["/".join(map(str, key[1:])) for key in unit_keys], dtype=object)
    columns = tuple(cell_values)
    return SamplingDesign(strata_names, cell_stratum, tuple(stages), fraction, columns,
                          tuple(np.asarray(cell_values[c]).astype(str) for c in columns), lonely_psu, tuple(lonely))


def _fpc_values(raw: np.ndarray, column: str) -> np.ndarray:
    values = pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(dtype=float)
    if np.isnan(values).any() or (values <= 0).any():
        raise AnalysisError(f"design: {column} must be a positive number on every row")
    return values


def _lonely_groups(sampled: np.ndarray, fraction: np.ndarray, lonely_psu: str, name, stage: int) -> list[str]:
    """Return the groups with one sampled unit (and variance to estimate); refuse them under ``fail``."""
    lonely = np.flatnonzero((sampled < 2) & (1 - fraction >= 1e-7))
    if len(lonely) and lonely_psu == "fail":
        raise AnalysisError(
            f"design: {name(lonely[0])} has only one PSU at stage {stage}; its variance cannot be "
            "estimated (merge it with a neighbouring stratum, or choose --lonely-psu adjust or certainty)"
        )
    return [f"{name(h)} (stage {stage})" for h in lonely]


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

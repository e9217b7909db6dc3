"""Domain means of a raked design with Taylor-linearized standard errors.

The numbers equal R's ``svyby(~y, ~domain, rake(svydesign(ids=~1, weights=~1, data=d), ...),
svymean, na.rm=TRUE)``. R linearizes the ratio ``sum(w*y)/sum(w)`` of a domain, then replaces
the influence values ``x`` by calibration residuals: ten sweeps over the margins of
``x <- x - w * ave(x / w, margin)``, and finally takes the with-replacement one-stage variance
``n/(n-1) * sum((x - mean(x))^2)`` over every respondent of the design.

Written with ``u = x / w`` each sweep step subtracts a per-category mean, so after any number of
sweeps ``u = u0 - sum_k coef_k[category_k]``: an additive function of the weighting cell. This
module therefore tracks the coefficients per domain and needs only per (domain, cell) sufficient
statistics: respondent count, sum and sum of squares. Cost grows with domains x cells, not with
respondents, and the same statistics come from one SQL ``GROUP BY``.

Estimates are rounded to ``DECIMALS`` (9) decimals, far below anything shown, so that a domain
whose answers are all 80 has the estimate 80 exactly (not 79.99999999999999) and a standard error
of exactly 0.

Quality figures per domain. ``deff`` is R's ``svyby(..., svymean, deff = TRUE)``: the design
variance over the variance of simple random sampling without replacement of the domain's ``n``
respondents from a population of its weight sum ``W``, ``svyvar * (W - n) / (W n)`` with
``svyvar = n / (n - 1) * sum(w (y - ybar)^2) / W`` (NaN when ``W <= n`` or ``n < 2``, where R
gives NA). ``deff_kish = n sum(w^2) / sum(w)^2`` is Kish's design effect of the weights alone,
``n_eff = sum(w)^2 / sum(w^2)`` the effective sample size, ``weight_cv`` the coefficient of
variation of the respondents' weights (population SD over mean, so ``deff_kish = 1 + cv^2``).

Proportions (0/1 items: awareness, support, participation) get the interval of R's
``svyciprop(~y, subset(design, domain == d), method = "logit")`` (see
:func:`proportion_interval`): R fits ``svyglm(y ~ 1, family = quasibinomial)`` on the domain,
whose coefficient is ``logit(p)`` with ``p`` the weighted mean and whose sandwich standard error
is the linearized standard error of ``p`` divided by ``p (1 - p)`` (delta method, same
calibrated influence values); ``confint(..., ddf = degf(domain design))`` then uses a Student t
quantile. For a subset of a raked design ``degf`` counts the respondents of the domain with a
non-zero weight, all of them, including those who left this item blank, minus one. So::

    q = qt(0.975, respondents_of_domain - 1)
    interval = expit(logit(p) -/+ q * se / (p (1 - p)))

which always lies in [0, 1]. Where the logit is undefined R's answers are erratic (NaN, [1, 1]
or [0, NaN]); here ``p = 0`` gives ``[0, 1 - 0.025 ** (1 / n_eff)]`` and ``p = 1`` gives
``[0.025 ** (1 / n_eff), 1]``: the one-sided Clopper-Pearson bound for 0 (or all) of ``n_eff``
(the domain's Kish effective sample size, at least 1) at the 2.5% level.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import expit, logit
from scipy.stats import norm, t

from analysis.errors import AnalysisError
from analysis.raking import Design
from analysis.rules import SCORE_MAX, SCORE_MIN

DECIMALS = 9  # estimates are rounded to this many decimals (module docstring)
CALIBRATION_SWEEPS = 10  # what R's survey package does for raked designs (svyrecvar)
Z95 = float(norm.ppf(0.975))
MIN_INTERVAL_N = 3  # fewer answers carry no interval of a mean
ZERO_SE = 1e-9  # a standard error this small is a variance of zero (every answer alike)


@dataclass(frozen=True)
class DomainStats:
    """Sufficient statistics of one variable per (domain, weighting cell).

    ``domains`` holds the domain labels; entry ``i`` says that ``n[i]`` respondents of domain
    ``domain[i]`` in cell ``cell[i]`` answered with sum ``total[i]`` and sum of squares
    ``total_sq[i]``.
    """

    domains: np.ndarray
    domain: np.ndarray
    cell: np.ndarray
    n: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray


def domain_stats(design: Design, labels: np.ndarray | pd.Series, values: np.ndarray | pd.Series) -> DomainStats:
    """Aggregate respondent values (NaN = no answer) by domain label and weighting cell.

    ``labels`` and ``values`` are per respondent, in the order the design was built from.
    """
    if design.respondent_cell is None:
        raise AnalysisError("domain_stats needs a design built from respondent rows")
    values = np.asarray(values, dtype=float)
    labels = np.asarray(labels)
    if len(values) != len(design.respondent_cell) or len(labels) != len(values):
        raise AnalysisError("domain_stats: labels, values and design must have one entry per respondent")
    answered = ~np.isnan(values)
    domains, dom = np.unique(labels[answered].astype(str), return_inverse=True)
    return stats_from_groups(domains, dom, design.respondent_cell[answered], values[answered])


def stats_from_groups(
    domains: np.ndarray, dom: np.ndarray, cell: np.ndarray, values: np.ndarray
) -> DomainStats:
    """Sum respondent values into (domain, cell) entries."""
    n_cells = int(cell.max()) + 1 if len(cell) else 1
    key = dom.astype(np.int64) * n_cells + cell
    unique, inverse = np.unique(key, return_inverse=True)
    present, domain = np.unique(unique // n_cells, return_inverse=True)  # drop domains with no entry
    return DomainStats(
        domains=np.asarray(domains)[present],
        domain=domain.astype(np.int64),
        cell=(unique % n_cells).astype(np.int64),
        n=np.bincount(inverse, minlength=len(unique)).astype(float),
        total=np.bincount(inverse, weights=values, minlength=len(unique)),
        total_sq=np.bincount(inverse, weights=values * values, minlength=len(unique)),
    )


def stats_from_frame(design: Design, frame: pd.DataFrame, domain_column: str = "domain") -> DomainStats:
    """Build statistics from aggregated rows: domain, the margin variables, n, total, total_sq.

    This is the shape a database ``GROUP BY domain, <margin variables>`` returns.
    """
    needed = [domain_column, *design.variables, "n", "total", "total_sq"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise AnalysisError(f"aggregated statistics lack column(s) {', '.join(missing)}")
    sizes = [len(c) for c in design.categories]
    codes = np.empty((len(frame), len(sizes)), dtype=np.int64)
    for k, (variable, cats) in enumerate(zip(design.variables, design.categories)):
        codes[:, k] = pd.Index(cats).get_indexer(frame[variable].astype(str))
        if (codes[:, k] < 0).any():
            raise AnalysisError(f"aggregated statistics: unknown {variable} category")
    if design.sampling is None:
        lookup = pd.Index(np.ravel_multi_index(design.cell_codes.T, sizes))
        cell = lookup.get_indexer(np.ravel_multi_index(codes.T, sizes))
    else:  # cells are split by stratum / cluster: match those columns too
        columns = design.sampling.columns
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise AnalysisError(f"aggregated statistics lack design column(s) {', '.join(absent)}")
        lookup = pd.MultiIndex.from_arrays([*design.cell_codes.T, *design.sampling.values])
        cell = lookup.get_indexer(pd.MultiIndex.from_arrays([*codes.T, *(frame[c].astype(str).to_numpy() for c in columns)]))
    if (cell < 0).any():
        raise AnalysisError("aggregated statistics name a weighting cell with no respondents in the design")
    domains, dom = np.unique(frame[domain_column].astype(str).to_numpy(), return_inverse=True)
    return DomainStats(
        domains=domains,
        domain=dom.astype(np.int64),
        cell=cell.astype(np.int64),
        n=frame["n"].to_numpy(dtype=float),
        total=frame["total"].to_numpy(dtype=float),
        total_sq=frame["total_sq"].to_numpy(dtype=float),
    )


def domain_means(
    design: Design,
    stats: DomainStats,
    *,
    chunk_cells: int = 250_000,
    bounds: tuple[float, float] | None = (SCORE_MIN, SCORE_MAX),
) -> pd.DataFrame:
    """Estimate each domain's weighted mean with its linearized standard error.

    Returns one row per domain: domain, n, weight_sum, estimate, se, df, ci_low, ci_high,
    variance_warning, n_eff and the quality figures of the module docstring: deff (R's variance
    design effect), deff_kish, weight_min, weight_max, weight_cv. ``df`` are the design's degrees
    of freedom of the domain (:func:`domain_df`); the 95% interval is :func:`bounded_interval` on
    ``bounds`` (the 0-100 score scale; ``None``: the plain t interval), empty where the domain
    cannot carry one (see that function). ``variance_warning`` says why a variance is not to be
    trusted: ``single_psu`` (the domain lies within as many PSUs as strata: ``df < 1``, R's NaN)
    or ``zero_variance`` (every answer alike, SE 0); empty otherwise.
    Domains are processed in chunks so that the dense per-domain coefficient arrays stay near
    ``chunk_cells`` numbers (a chunk of 2 MB stays in the processor's cache, and its products stay
    below the size at which BLAS starts threads: a quarter of the CPU time of 32 MB chunks, the same
    numbers to the last bit).
    """
    w = design.weights
    counts = design.counts
    n_total = float(counts.sum())
    if n_total < 2:
        raise AnalysisError("estimates need at least two respondents in the design")
    ops = _CalibrationOperator(design)

    n_domains = len(stats.domains)
    weight_entry = w[stats.cell]
    weight_sum = np.bincount(stats.domain, weights=weight_entry * stats.n, minlength=n_domains)
    weighted_total = np.bincount(stats.domain, weights=weight_entry * stats.total, minlength=n_domains)
    weight_sq = np.bincount(stats.domain, weights=weight_entry**2 * stats.n, minlength=n_domains)
    n = np.bincount(stats.domain, weights=stats.n, minlength=n_domains)
    estimate = np.round(weighted_total / weight_sum, DECIMALS)

    # u0 = (y - ybar_d) / W_d summed, and summed squared, per (domain, cell) entry.
    ybar = estimate[stats.domain]
    scale = weight_sum[stats.domain]
    cell_mean = stats.total / stats.n
    within = np.maximum(stats.total_sq - stats.total * cell_mean, 0.0)
    u0_sum = (stats.total - stats.n * ybar) / scale
    u0_sq = (within + stats.n * (cell_mean - ybar) ** 2) / scale**2

    variance = np.empty(n_domains)
    sampling = design.sampling
    chunk = max(1, chunk_cells // max(ops.max_levels, len(counts) if sampling is not None else 1, 1))
    order = np.argsort(stats.domain, kind="stable")
    edges = np.searchsorted(stats.domain[order], np.arange(0, n_domains + chunk, chunk))
    for start_domain, (lo, hi) in zip(range(0, n_domains, chunk), zip(edges[:-1], edges[1:])):
        rows = order[lo:hi]
        size = min(chunk, n_domains - start_domain)
        args = (stats.domain[rows] - start_domain, stats.cell[rows], u0_sum[rows], u0_sq[rows], size)
        variance[start_domain : start_domain + size] = (
            ops.variance(*args, n_total) if sampling is None else ops.design_variance(sampling, *args)
        )
    se = np.sqrt(np.maximum(variance, 0.0))
    df = domain_df(design, stats)
    if bounds is None:
        half_width = ci_quantile(df + 1) * se
        ci_low, ci_high = estimate - half_width, estimate + half_width
    else:
        ci_low, ci_high = bounded_interval(estimate, se, df, n, weight_sum**2 / weight_sq, bounds)
    warning = np.where(df < 1, "single_psu", np.where(se <= ZERO_SE, "zero_variance", ""))
    # R's svymean(deff = TRUE) on the domain: variance over that of simple random sampling without
    # replacement of the domain's n from a population of its weight sum W, with R's svyvar.
    spread = weight_sum**2 * np.bincount(stats.domain, weights=weight_entry * u0_sq, minlength=n_domains)
    with np.errstate(divide="ignore", invalid="ignore"):
        srs = n / (n - 1) * spread / weight_sum * (weight_sum - n) / (weight_sum * n)
        deff = np.where((n >= 2) & (weight_sum > n) & (srs > 0), variance / srs, np.nan)
    weight_min = np.full(n_domains, np.inf)
    weight_max = np.full(n_domains, -np.inf)
    np.minimum.at(weight_min, stats.domain, weight_entry)
    np.maximum.at(weight_max, stats.domain, weight_entry)
    kish_deff = n * weight_sq / weight_sum**2
    return pd.DataFrame(
        {
            "domain": stats.domains,
            "n": n.astype(np.int64),
            "weight_sum": weight_sum,
            "estimate": estimate,
            "se": se,
            "df": df,
            "ci_low": ci_low,
            "ci_high": ci_high,
            "variance_warning": warning,
            "n_eff": weight_sum**2 / weight_sq,
            "deff": deff,
            "deff_kish": kish_deff,
            "weight_min": weight_min,
            "weight_max": weight_max,
            "weight_cv": np.sqrt(np.maximum(kish_deff - 1, 0.0)),
        }
    )


def ci_quantile(n: np.ndarray) -> np.ndarray:
    """Return the 97.5% quantile for a 95% interval: Student t with n - 1 degrees of freedom.

    R's ``confint`` uses the normal quantile; in communities of a handful of respondents that
    covers the truth far less than 95% of the time (68% at n <= 5 in ``analysis.simulate``).
    With one respondent there is no interval (NaN).

    >>> ci_quantile(np.array([1, 3, 100000])).round(3).tolist()
    [nan, 4.303, 1.96]
    """
    n = np.asarray(n, dtype=float)
    out = np.full(n.shape, np.nan)
    ok = n >= 2
    out[ok] = t.ppf(0.975, n[ok] - 1)
    return out


def domain_df(design: Design, stats: DomainStats) -> np.ndarray:
    """Return each domain's design degrees of freedom, R's ``degf`` of the domain's design.

    R's ``degf(subset(design, domain))`` counts the PSUs holding members of the domain minus the
    strata holding them: respondents minus one in a simple design, respondents minus strata when
    respondents are the PSUs, first-stage clusters minus strata otherwise. A domain inside one
    PSU (or one PSU per stratum) gets 0: R's intervals are NaN there. The members are the
    respondents in ``stats`` (those who answered); for R's rate intervals pass statistics of
    every respondent of the domain (:func:`domain_stats` with any non-blank values).
    """
    n_domains = len(stats.domains)
    n = np.bincount(stats.domain, weights=stats.n, minlength=n_domains)
    sampling = design.sampling
    if sampling is None:
        return n - 1

    def distinct(per_cell: np.ndarray) -> np.ndarray:
        pairs = np.unique(stats.domain.astype(np.int64) * (int(per_cell.max()) + 1) + per_cell[stats.cell])
        return np.bincount(pairs // (int(per_cell.max()) + 1), minlength=n_domains).astype(float)

    strata = distinct(sampling.cell_stratum)
    psus = n if sampling.cell_psu is None else distinct(sampling.cell_psu)
    return psus - strata


def bounded_interval(
    estimate: np.ndarray,
    se: np.ndarray,
    df: np.ndarray,
    n: np.ndarray,
    n_eff: np.ndarray,
    bounds: tuple[float, float] = (SCORE_MIN, SCORE_MAX),
    level: float = 0.95,
    *,
    strict: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Return a 95% interval that stays within ``bounds``: the logit interval of the rescaled mean.

    The mean is rescaled to ``p = (estimate - low) / (high - low)`` and given the interval of
    :func:`proportion_interval` (``logit(p) -/+ t(df) se_p / (p (1 - p))``, then back), which
    cannot leave the scale; at the bounds themselves it is the one-sided Clopper-Pearson bound.
    No interval (NaN) where the domain cannot carry one: ``df < 1`` (R's NaN), fewer than
    ``MIN_INTERVAL_N`` answers, or an SE of 0 strictly inside the scale (every answer alike).
    An estimate outside ``bounds`` gets the plain t interval. ``strict=False`` drops only where R
    has none (``df < 1``): what the whole sample's row shows.

    >>> low, high = bounded_interval(np.array([95.0, 80.0, 80.0]), np.array([4.0, 0.0, 2.0]),
    ...                              np.array([9.0, 9.0, 1.0]), np.array([10, 10, 2]), np.array([10.0, 10.0, 2.0]))
    >>> low.round(2).tolist(), high.round(2).tolist()
    ([73.87, nan, nan], [99.22, nan, nan])
    """
    low, high = bounds
    estimate, se, df, n = (np.asarray(a, dtype=float) for a in (estimate, se, df, n))
    width = high - low
    lo, hi = proportion_interval((estimate - low) / width, se / width, df + 1, n_eff, level)
    lo, hi = low + width * lo, low + width * hi
    outside = (estimate < low) | (estimate > high)
    if outside.any():
        half = ci_quantile(df[outside] + 1) * se[outside]
        lo[outside], hi[outside] = estimate[outside] - half, estimate[outside] + half
    p = np.round((estimate - low) / width, DECIMALS)
    none = (df < 1) | (strict & ((n < MIN_INTERVAL_N) | ((se <= ZERO_SE) & (p > 0) & (p < 1))))
    return np.where(none, np.nan, lo), np.where(none, np.nan, hi)


def proportion_interval(
    estimate: np.ndarray, se: np.ndarray, respondents: np.ndarray, n_eff: np.ndarray, level: float = 0.95,
    *, df: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the (low, high) logit interval of proportions, always within [0, 1].

    ``respondents`` counts each domain's respondents in the design (answered this item or not):
    R's degrees of freedom are that minus one in a simple design; under strata and clusters pass
    the design's ``df`` (:func:`domain_df` over the domain's respondents). Where ``df < 1`` R
    gives NaN and so does this: no interval (数据不足). The rule, and what happens at 0 and 1, is
    in the module docstring.

    >>> low, high = proportion_interval(np.array([0.9, 0.0, 1.0]), np.array([0.1, 0.0, 0.0]),
    ...                                 np.array([30, 10, 10]), np.array([25.0, 10.0, 10.0]))
    >>> low.round(4).tolist(), high.round(4).tolist()
    ([0.4812, 0.0, 0.6915], [0.9887, 0.3085, 1.0])
    """
    p = np.round(np.asarray(estimate, dtype=float), DECIMALS)
    se = np.asarray(se, dtype=float)
    df = np.asarray(respondents, dtype=float) - 1 if df is None else np.asarray(df, dtype=float)
    tail = (1 - level) / 2
    inside = (p > 0) & (p < 1) & (df >= 1)
    low = np.zeros(p.shape)
    high = np.ones(p.shape)
    if inside.any():
        q = t.ppf(1 - tail, df[inside])
        centre = logit(p[inside])
        half = q * se[inside] / (p[inside] * (1 - p[inside]))
        low[inside] = expit(centre - half)
        high[inside] = expit(centre + half)
    bound = tail ** (1 / np.maximum(np.asarray(n_eff, dtype=float), 1.0))
    high = np.where(p <= 0, 1 - bound, high)
    low = np.where(p >= 1, bound, low)
    undefined = ~(df >= 1)
    return np.where(undefined, np.nan, low), np.where(undefined, np.nan, high)


def _stage_scales(
    sampled: np.ndarray, fraction: np.ndarray, factor: np.ndarray, lonely_psu: str
) -> tuple[np.ndarray, np.ndarray]:
    """Return per group the scale of squares about the group mean and of squares about zero.

    R's ``onestrat``: ``(1 - f) m / (m - 1)`` about the mean; a group of one unit (``m = 1``) gets
    ``1 - f`` about zero under ``adjust`` and nothing under ``certainty``; a group with
    ``1 - f < 1e-7`` (fully sampled) nothing at all.
    """
    keep = (1 - fraction) >= 1e-7
    with np.errstate(divide="ignore", invalid="ignore"):
        centred = np.where(keep & (sampled >= 2), factor * (1 - fraction) * sampled / (sampled - 1), 0.0)
    raw = np.where(keep & (sampled < 2) & (lonely_psu == "adjust"), factor * (1 - fraction), 0.0)
    return centred, raw


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if sparse.issparse(matrix) else np.asarray(matrix)


def _scale_columns(table, factors: np.ndarray):
    """Return ``table`` with each column multiplied by its factor (dense or sparse)."""
    if sparse.issparse(table):
        return table @ sparse.diags(factors)
    if table.ndim == 1:
        return np.diag(table * factors)
    return table * factors


class _CalibrationOperator:
    """Precomputed cross-tabulations of the margins that R's residual sweeps need."""

    def __init__(self, design: Design) -> None:
        self.codes = [design.cell_codes[:, k] for k in range(len(design.variables))]
        self.levels = [len(c) for c in design.categories]
        self.max_levels = max(self.levels) if self.levels else 1
        counts, w = design.counts, design.weights
        self.w = w
        self.counts = counts
        self.category_counts = [np.bincount(c, weights=counts, minlength=L) for c, L in zip(self.codes, self.levels)]
        self.cross = [[self._crosstab(k, m, counts) for m in range(len(self.codes))] for k in range(len(self.codes))]
        self.quad = [[self._crosstab(k, m, w * w * counts) for m in range(len(self.codes))] for k in range(len(self.codes))]
        self.linear = [np.bincount(c, weights=w * counts, minlength=L) for c, L in zip(self.codes, self.levels)]

    def design_variance(self, sampling, dom, cell, u0_sum, u0_sq, n_domains: int) -> np.ndarray:
        """Return the calibrated variance within strata over PSUs (and later stages), as R's ``multistage``.

        The calibrated residual of a respondent of cell ``g`` is ``w_g (u - delta[d, g])`` with
        ``delta`` the domain's sum of margin coefficients; it is needed on every cell, so this
        costs domains x cells (chunked by the caller). Each stage adds, per group its units were
        sampled in (strata, then the units of the stage above), ``factor (1 - f) m / (m - 1)`` times
        the sum of squares of the unit totals about their group mean (``m`` units sampled, ``f`` the
        sampling fraction, ``factor`` the fractions of the stages above). A group with one unit
        follows ``sampling.lonely_psu``: ``adjust`` takes its total about zero, ``certainty`` adds 0.
        """
        coef = self.coefficients(dom, cell, u0_sum, n_domains)
        delta = np.zeros((n_domains, len(self.w)))
        for k in range(len(self.codes)):
            delta += coef[k][:, self.codes[k]]
        w, counts = self.w, self.counts
        entry_delta = delta[dom, cell]
        stratum = sampling.cell_stratum
        n_strata = len(sampling.strata)
        stages = sampling.stages
        if not stages:  # every respondent is a PSU: sums and sums of squares per stratum
            group, n_groups = stratum, n_strata
        else:
            group, n_groups = stages[-1].cell_unit, len(stages[-1].unit_group)
        to_group = sparse.csr_matrix((np.ones(len(w)), (np.arange(len(w)), group)), shape=(len(w), n_groups))
        linear = sparse.coo_matrix(
            (w[cell] * u0_sum, (dom, group[cell])), shape=(n_domains, n_groups)
        ).toarray() - np.asarray(to_group.T @ (delta * (w * counts)).T).T
        if not stages:
            sampled = sampling.psus(counts)
            centred, raw = _stage_scales(sampled, sampling.fraction, np.ones(n_strata), sampling.lonely_psu)
            square = sparse.coo_matrix(
                (w[cell] ** 2 * (u0_sq - 2 * entry_delta * u0_sum), (dom, group[cell])), shape=(n_domains, n_groups)
            ).toarray() + np.asarray(to_group.T @ (delta**2 * (w**2 * counts)).T).T
            with np.errstate(divide="ignore", invalid="ignore"):
                between = np.where(sampled > 0, linear**2 / np.maximum(sampled, 1), 0.0)
            return (square - between) @ centred + square @ raw
        variance = np.zeros(n_domains)
        for stage in stages:
            to_unit = np.zeros(n_groups, dtype=np.int64)
            to_unit[stages[-1].cell_unit] = stage.cell_unit
            n_units = len(stage.unit_group)
            totals = linear if stage is stages[-1] else np.asarray(
                sparse.csr_matrix((np.ones(n_groups), (np.arange(n_groups), to_unit)), shape=(n_groups, n_units)).T
                @ linear.T
            ).T
            members = sparse.csr_matrix(
                (np.ones(n_units), (np.arange(n_units), stage.unit_group)), shape=(n_units, len(stage.sampled))
            )
            means = np.asarray(members.T @ totals.T).T / np.maximum(stage.sampled, 1)
            centred, raw = _stage_scales(stage.sampled, stage.fraction, stage.factor, sampling.lonely_psu)
            deviation = totals - means[:, stage.unit_group]
            variance += (deviation**2) @ centred[stage.unit_group] + (totals**2) @ raw[stage.unit_group]
        return variance

    def _crosstab(self, k: int, m: int, values: np.ndarray):
        """Return the (k, m) cross-tabulation of ``values``.

        On the diagonal it is a diagonal matrix, kept as its vector; small off-diagonal tables
        are dense (faster to multiply), large ones sparse.
        """
        if k == m:
            return np.bincount(self.codes[k], weights=values, minlength=self.levels[k])
        shape = (self.levels[k], self.levels[m])
        table = sparse.coo_matrix((values, (self.codes[k], self.codes[m])), shape=shape).tocsr()
        return table.toarray() if shape[0] * shape[1] <= 1_000_000 else table

    @staticmethod
    def _times(coef: np.ndarray, table) -> np.ndarray:
        return coef * table if isinstance(table, np.ndarray) and table.ndim == 1 else coef @ table

    def coefficients(self, dom, cell, u0_sum, n_domains: int) -> list[np.ndarray]:
        """Return each margin's per-category coefficients after R's ten sweeps, per domain.

        Each sweep updates the margins in order (Gauss-Seidel), margin m by
        ``coef_m += (start_m - sum_k coef_k x cross_km) / counts_m``. The first margin's own table is
        diagonal, so its update sets ``coef_0 = (start_0 - sum_{k>0} coef_k x cross_k0) / counts_0`` from
        the other margins' coefficients as the sweep begins. That is folded into the other margins'
        updates: ``coef_0 x cross_0m = start_0 / counts_0 x cross_0m - sum_k coef_k x (cross_k0 / counts_0 x cross_0m)``,
        with the products of the cross tables made once. The sweeps then work on the other, small margins
        only and ``coef_0`` (typically the communities: domains x 1,000) is made once, after the last one,
        instead of in every sweep: the same numbers up to rounding (a few units in the last digit).
        """
        margins = range(len(self.codes))
        start = [
            sparse.coo_matrix((u0_sum, (dom, self.codes[m][cell])), shape=(n_domains, self.levels[m])).toarray()
            for m in margins
        ]
        first = 1.0 / self.category_counts[0]
        others = range(1, len(self.codes))
        # margin 0's part of each other margin's update: from its start, and through each margin k's coefficients
        from_first = {m: _dense(sparse.csr_matrix(start[0] * first) @ self.cross[0][m]) for m in others}
        through_first = {(k, m): _dense(_scale_columns(self.cross[k][0], first) @ self.cross[0][m])
                         for k in others for m in others}
        coef = [np.zeros((n_domains, L)) for L in self.levels]
        for _ in range(CALIBRATION_SWEEPS):
            at_first = [None] + [coef[k].copy() for k in others]  # what margin 0's update of this sweep sees
            for m in others:
                current = start[m] - from_first[m]
                for k in others:
                    current += at_first[k] @ through_first[k, m]
                    current -= self._times(coef[k], self.cross[k][m])
                current /= self.category_counts[m]
                coef[m] += current
        coef[0] = start[0].copy()
        for k in others:
            coef[0] -= _dense(at_first[k] @ self.cross[k][0])
        coef[0] *= first
        return coef

    def variance(self, dom, cell, u0_sum, u0_sq, n_domains: int, n_total: float) -> np.ndarray:
        """Return the calibrated variance of each of ``n_domains`` domains in this chunk."""
        margins = range(len(self.codes))
        coef = self.coefficients(dom, cell, u0_sum, n_domains)
        w_entry = self.w[cell]
        delta_entry = np.zeros(len(cell))
        for k in margins:
            delta_entry += coef[k][dom, self.codes[k][cell]]
        sum_e = np.bincount(dom, weights=w_entry * u0_sum, minlength=n_domains)
        sum_e2 = np.bincount(dom, weights=w_entry**2 * (u0_sq - 2 * delta_entry * u0_sum), minlength=n_domains)
        for k in margins:
            sum_e -= coef[k] @ self.linear[k]
            for m in margins:
                sum_e2 += np.einsum("ij,ij->i", self._times(coef[k], self.quad[k][m]), coef[m])
        return n_total / (n_total - 1) * (sum_e2 - sum_e**2 / n_total)

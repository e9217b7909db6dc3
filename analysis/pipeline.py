"""The whole analysis of one survey wave: rake, estimate, shrink, flag and count points.

Used by the ``survey-analysis`` command line and by the server's stored analysis alike.

The whole sample is the domain ``ALL``; a domain of the data with that name (in any case) is
refused rather than let it be confused with, or overwrite, the city row. Rate items (0/1) get
the logit interval of :func:`analysis.estimates.proportion_interval`.

Method notes.

* Respondents with no scored answer are left out *before* raking, as the reference R code does
  (``r <- r[!is.nan(r$score), ]`` then ``rake``). Raking everybody and taking the scored ones
  afterwards gives other weights and other numbers.
* R's ``rake()`` stops by default at ``epsilon = 1``: a margin within one person of its total.
  That is far from converged, and its numbers differ from these in the second or third
  decimal. Compare with R raked to convergence, e.g. ``control = list(maxit = 100, epsilon = 1e-9)``.
* Quality per domain: ``deff`` (R's variance design effect, ``svymean(deff = TRUE)``),
  ``deff_kish``, ``n_eff``, ``weight_min``, ``weight_max``, ``weight_cv`` (see
  :mod:`analysis.estimates`). ``weight_warning`` marks extreme weights: the largest weight more
  than ``EXTREME_WEIGHT_RATIO`` (10) times the smallest within the domain, or Kish's design
  effect above ``EXTREME_KISH_DEFF`` (2: the weights alone halve the effective sample). Trim
  (``--trim``) or collapse sparse weighting cells when many domains carry it.
* Shrunk (EB) estimates carry a 95% interval ``eb_estimate -/+ 1.96 sqrt(eb_mse)``.
* Flags (``status``, ``answers_needed``) follow :mod:`analysis.points`.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from analysis.errors import AnalysisError
from analysis.estimates import (
    Z95,
    DomainStats,
    bounded_interval,
    domain_df,
    domain_means,
    domain_stats,
    proportion_interval,
    stats_from_frame,
)
from analysis.points import assess_communities, city_points, simulate_third_party
from analysis.raking import RakeResult, rake
from analysis.raking import design_columns as split_columns
from analysis.rules import MIN_N
from analysis.smallarea import fay_herriot, smooth_sampling_variances

ALL = "ALL"
EXTREME_WEIGHT_RATIO = 10.0  # largest / smallest weight within a domain
EXTREME_KISH_DEFF = 2.0  # Kish's weight design effect: the weights alone halve the sample


Analysis = TypeVar("Analysis", bound=Callable[..., Any])
_blas: list[ThreadpoolController] = []
_blas_lock = threading.Lock()


def one_blas_thread(function: Analysis) -> Analysis:
    """Run ``function`` with the BLAS library (numpy's matrix products) on one thread.

    The standard errors' products are many small ones (a chunk of domains times a margin's
    categories): OpenBLAS's threads add nothing to them but the time they spend waiting for each
    other, which on a machine whose cores are busy (web workers, the database) is most of it. The
    analysis of 1M responses in 8,000 cells took 2.2 to 6.2 s wall and 1.1 to 2.1 s CPU with the
    default threads on a loaded two-core machine, 0.4 to 0.75 s and 0.35 s on one thread.
    """
    @wraps(function)
    def limited(*args, **kwargs):
        with _blas_lock:
            if not _blas:
                _blas.append(ThreadpoolController())  # finds the loaded BLAS libraries once
        with _blas[0].limit(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return limited  # type: ignore[return-value]


@dataclass
class WaveAnalysis:
    """Results of :func:`analyze`: per-domain table, item matrix and city-wide figures."""

    domains: pd.DataFrame
    items: pd.DataFrame
    city: dict[str, Any]  # numbers, and variance_warning ("" or why the city's variance is unusable)
    rake: RakeResult
    timings: dict[str, float] = field(default_factory=dict)


def many_domain_stats(design, labels: np.ndarray, values: pd.DataFrame) -> DomainStats:
    """Stack (variable, domain) pairs of several value columns into one set of statistics.

    The returned domain labels are ``"<column>\x1f<domain>"``; :func:`split_keys` undoes that.
    Respondents are grouped into (domain, cell) once; each column then costs three bincounts.
    """
    domain_codes, domains = pd.factorize(np.asarray(labels).astype(str), sort=True)
    cells = design.respondent_cell
    n_cells = len(design.counts)
    group, keys = pd.factorize(domain_codes.astype(np.int64) * n_cells + cells, sort=True)
    n_groups = len(keys)
    group_domain, group_cell = keys // n_cells, keys % n_cells
    parts: list[tuple[np.ndarray, ...]] = []
    for j, column in enumerate(values.columns):
        v = values[column].to_numpy(dtype=float)
        answered = ~np.isnan(v)
        filled = np.where(answered, v, 0.0)
        n = np.bincount(group, weights=answered, minlength=n_groups)
        keep = n > 0
        parts.append(
            (
                group_domain[keep] + j * len(domains),
                group_cell[keep],
                n[keep],
                np.bincount(group, weights=filled, minlength=n_groups)[keep],
                np.bincount(group, weights=filled * filled, minlength=n_groups)[keep],
            )
        )
    dom, cell, n, total, total_sq = (np.concatenate(p) for p in zip(*parts))
    present, dom = np.unique(dom, return_inverse=True)
    names = np.array([f"{column}\x1f{d}" for column in values.columns for d in domains], dtype=object)
    return DomainStats(names[present], dom.astype(np.int64), cell.astype(np.int64), n, total, total_sq)


def refuse_reserved(labels, column: str) -> None:
    """Refuse a domain named ``ALL``: that is the whole sample's row in every output."""
    values = pd.unique(pd.Series(np.asarray(labels)).astype(str))
    clash = [v for v in values if v.strip().upper() == ALL]
    if clash:
        raise AnalysisError(
            f"responses: column {column} has a domain named {clash[0]!r}, the name of the whole-city row; "
            f"rename that domain (e.g. to {clash[0].strip()}_1) and run again"
        )


def rate_intervals(items: pd.DataFrame, rates, respondents: pd.Series, df: pd.Series | None = None) -> pd.DataFrame:
    """Give the rows of rate items (0/1) the logit interval instead of the mean's interval.

    ``items`` has columns item, domain, estimate, se, n_eff, ci_low, ci_high; ``respondents``
    counts the design's respondents per domain. The degrees of freedom are ``df`` per domain
    (R's ``degf`` of the domain's design over all its respondents, :func:`respondent_df`), or
    without it respondents minus one (the simple design); the rows' ``df`` column says which.
    """
    rows = items["item"].isin(list(rates or []))
    if not rows.any():
        return items
    items = items.copy()
    part = items[rows]
    size = respondents.reindex(part["domain"].astype(str)).to_numpy(dtype=float)
    size = np.where(np.isnan(size), part["n"].to_numpy(dtype=float), size)
    freedom = size - 1 if df is None else df.reindex(part["domain"].astype(str)).to_numpy(dtype=float)
    freedom = np.where(np.isnan(freedom), size - 1, freedom)
    low, high = proportion_interval(part["estimate"].to_numpy(), part["se"].to_numpy(), size, part["n_eff"].to_numpy(),
                                    df=freedom)
    items.loc[rows, "ci_low"] = low
    items.loc[rows, "ci_high"] = high
    if "df" in items.columns:
        items.loc[rows, "df"] = freedom
    return items


def respondent_df(design, stats: DomainStats) -> pd.Series:
    """Return each domain's design degrees of freedom over all its respondents, indexed by domain."""
    return pd.Series(domain_df(design, stats), index=pd.Index(stats.domains).astype(str))


def split_keys(frame: pd.DataFrame, first: str = "variable") -> pd.DataFrame:
    """Split stacked ``variable\\x1fdomain`` labels into two columns."""
    # str.partition per label: pandas' str.split(expand=True) costs ten times as much on 10,000 labels.
    parts = [str(label).partition("\x1f") for label in frame["domain"].to_numpy(dtype=object)]
    heads = np.empty(len(parts), dtype=object)
    tails = np.empty(len(parts), dtype=object)
    heads[:] = [head for head, _, _ in parts]
    tails[:] = [tail if sep else None for _, sep, tail in parts]
    out = frame.drop(columns="domain")
    out.insert(0, "domain", tails)
    out.insert(0, first, heads)
    return out


@dataclass(frozen=True)
class Settings:
    """Choices of an analysis run that both entry points share."""

    tol: float = 1e-10
    max_iter: int = 100
    trim: tuple[float, float] | None = None
    min_n: int = MIN_N
    third_party_respondents: int = 1000
    simulations: int = 2000
    seed: int | None = 0


@one_blas_thread
def analyze(
    respondents: pd.DataFrame,
    margins: pd.DataFrame,
    *,
    by: str,
    items: list[str],
    rates: list[str] | None = None,
    quota_by: str | None = None,
    model_by: str | None = None,
    strata: str | None = None,
    cluster: str | None = None,
    fpc: str | None = None,
    weights: str | None = None,
    lonely_psu: str = "fail",
    item_matrix: bool = True,
    progress: Callable[[str], None] | None = None,
    **settings,
) -> WaveAnalysis:
    """Analyse respondents (one row each; item scores numeric, NaN = don't know).

    Respondents without any scored item are left out, as in R. ``rates`` are 0/1 columns
    (awareness, support, participation) estimated the same way. ``quota_by`` names the column
    (e.g. district) of the quotas of the simulated third-party survey; ``model_by`` the column
    whose groups get their own mean in the small-area model. ``strata``, ``cluster`` and ``fpc``
    give the sampling design of the variance (R's ``svydesign(ids=~cluster, strata=~strata,
    fpc=~fpc, weights=~weights, nest=TRUE)`` then ``rake``): ``cluster`` and ``fpc`` take one
    column per stage as ``"A+B"``; ``weights`` names base weights raked from (uniform without);
    ``lonely_psu`` is R's ``survey.lonely.psu`` (``fail``, ``adjust``, ``certainty``). Intervals use
    the design's degrees of freedom per domain (``df``). ``settings`` are the fields of
    :class:`Settings`.
    """
    config = Settings(**settings)
    say = progress or (lambda message: None)
    timings: dict[str, float] = {}
    extra = [c for c in (quota_by, model_by) if c]
    design_columns = [c for c in (strata, weights, *split_columns(cluster), *split_columns(fpc)) if c]
    missing = [c for c in [by, *items, *(rates or []), *extra, *design_columns] if c not in respondents.columns]
    if missing:
        raise AnalysisError(f"responses: missing column(s) {', '.join(missing)}")
    if not items:
        raise AnalysisError("no items given to score")
    clock = time.perf_counter()
    scores = respondents[items]
    score = scores.mean(axis=1, skipna=True)
    keep = score.notna().to_numpy()
    if not keep.any():
        raise AnalysisError("responses: no respondent answered any scored item")
    data = respondents.loc[keep].reset_index(drop=True)
    score = score[keep].reset_index(drop=True)
    if data[by].isna().any():
        raise AnalysisError(f"responses: {by} is blank on {int(data[by].isna().sum())} row(s)")
    refuse_reserved(data[by], by)

    result = rake(data, margins, tol=config.tol, max_iter=config.max_iter, trim=config.trim,
                  strata=strata, cluster=cluster, fpc=fpc, weights=weights, lonely_psu=lonely_psu)
    design = result.design
    timings["rake"] = time.perf_counter() - clock
    say(f"raked {design.n:,} respondents in {result.iterations} iterations (design effect {result.deff:.2f})")

    clock = time.perf_counter()
    labels = data[by].astype(str).to_numpy()
    stacked = _two_level_stats(design, labels, score.to_numpy())
    direct = split_keys(domain_means(design, stacked)).drop(columns="variable")
    timings["estimates"] = time.perf_counter() - clock
    say(f"estimated {len(direct) - 1:,} domains with linearized standard errors")

    item_table = pd.DataFrame(columns=["item", "domain", "n", "estimate", "se"])
    if item_matrix:
        clock = time.perf_counter()
        item_frame = pd.concat([scores.loc[keep].reset_index(drop=True), data[rates or []]], axis=1)
        item_table = split_keys(domain_means(design, many_domain_stats(design, labels, item_frame)), first="item")
        everyone = respondent_df(design, domain_stats(design, labels, np.zeros(len(labels))))
        item_table = rate_intervals(item_table, rates, pd.Series(labels).value_counts(), everyone)
        timings["items"] = time.perf_counter() - clock
        say(f"estimated {len(item_frame.columns)} items x domains")

    attributes = pd.DataFrame(index=pd.Index(np.unique(labels), name="domain"))
    for column in extra:
        attributes[column] = _domain_attribute(data, by, column, attributes.index.to_series())
    within = score.groupby(labels).transform("mean")
    residual_sd = _pooled_sd(float(np.sum((score - within) ** 2)), len(score), attributes.shape[0])
    return _complete(result, direct, item_table, attributes, quota_by, model_by, residual_sd, config, timings)


@one_blas_thread
def analyze_aggregates(
    cells: pd.DataFrame,
    margins: pd.DataFrame,
    *,
    by: str,
    item_cells: pd.DataFrame | None = None,
    attributes: pd.DataFrame | None = None,
    quota_by: str | None = None,
    model_by: str | None = None,
    rates: list[str] | None = None,
    strata: str | None = None,
    cluster: str | None = None,
    fpc: str | None = None,
    weights: str | None = None,
    lonely_psu: str = "fail",
    **settings,
) -> WaveAnalysis:
    """Analyse per-cell sufficient statistics, as one SQL ``GROUP BY`` returns them.

    ``cells`` has a column ``by``, a column per margin variable, and ``n``, ``total``,
    ``total_sq`` of respondent scores. ``item_cells`` has the same plus ``item``; the items named
    in ``rates`` are 0/1 and get the logit interval.
    ``attributes`` is indexed by domain with the ``quota_by`` / ``model_by`` columns. The numbers
    are the same as :func:`analyze` gives for the respondents behind the cells.

    A designed sample: ``strata``, ``cluster`` (``"A+B"``), ``fpc`` (``"F1+F2"``), ``weights`` and
    ``lonely_psu`` as for :func:`analyze`; the cells (and item cells) are then grouped by those
    columns too (a cell lies within one stratum, cluster and base weight). Where the respondents
    are the PSUs (no ``cluster``) the variance needs each respondent: give one cell per respondent
    (e.g. group by a respondent id) or a cluster.
    """
    config = Settings(**settings)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    cells = cells[cells["n"] > 0]
    if cells.empty:
        raise AnalysisError("no respondent answered any scored item")
    design_columns = [c for c in (strata, weights, *split_columns(cluster), *split_columns(fpc)) if c]
    missing = [c for c in design_columns if c not in cells.columns]
    if missing:
        raise AnalysisError(f"aggregated statistics lack design column(s) {', '.join(missing)}")
    result = rake(cells, margins, tol=config.tol, max_iter=config.max_iter, trim=config.trim, count_column="n",
                  strata=strata, cluster=cluster, fpc=fpc, weights=weights, lonely_psu=lonely_psu)
    design = result.design
    timings["rake"] = time.perf_counter() - clock
    clock = time.perf_counter()
    labels = cells[by].astype(str)
    refuse_reserved(labels, by)
    both = pd.concat([cells.assign(domain=labels), cells.assign(domain=ALL)], ignore_index=True)
    direct = domain_means(design, stats_from_frame(design, both))
    timings["estimates"] = time.perf_counter() - clock
    item_table = pd.DataFrame(columns=["item", "domain", "n", "estimate", "se"])
    if item_cells is not None and not item_cells.empty:
        clock = time.perf_counter()
        keyed = item_cells.assign(domain=item_cells["item"].astype(str) + "\x1f" + item_cells[by].astype(str))
        item_table = split_keys(domain_means(design, stats_from_frame(design, keyed)), first="item")
        everyone = respondent_df(design, stats_from_frame(design, cells.assign(domain=labels)))
        item_table = rate_intervals(item_table, rates, cells.groupby(labels)["n"].sum(), everyone)
        timings["items"] = time.perf_counter() - clock
    domains = pd.Index(np.unique(labels), name="domain")
    attributes = pd.DataFrame(index=domains) if attributes is None else attributes.reindex(domains)
    per_domain = cells.groupby(labels)[["n", "total", "total_sq"]].sum()
    within_ss = float((per_domain["total_sq"] - per_domain["total"] ** 2 / per_domain["n"]).clip(lower=0).sum())
    residual_sd = _pooled_sd(within_ss, int(per_domain["n"].sum()), len(per_domain))
    return _complete(result, direct, item_table, attributes, quota_by, model_by, residual_sd, config, timings)


def _pooled_sd(within_ss: float, n: int, groups: int) -> float:
    return float(np.sqrt(within_ss / max(n - groups, 1)))


def _complete(
    result: RakeResult,
    direct: pd.DataFrame,
    item_table: pd.DataFrame,
    attributes: pd.DataFrame,
    quota_by: str | None,
    model_by: str | None,
    residual_sd: float,
    config: Settings,
    timings: dict[str, float],
) -> WaveAnalysis:
    """Shrink, flag and count points for the domains; simulate the third-party survey."""
    clock = time.perf_counter()
    city_row = direct[direct["domain"] == ALL].iloc[0].copy()
    # the whole sample keeps R's interval wherever R has one (df >= 1), however small or uniform
    estimate, se, df, n, n_eff = (np.array([city_row[c]], dtype=float) for c in ("estimate", "se", "df", "n", "n_eff"))
    low, high = bounded_interval(estimate, se, df, n, n_eff, strict=False)
    city_row["ci_low"], city_row["ci_high"] = float(low[0]), float(high[0])
    table = direct[direct["domain"] != ALL].reset_index(drop=True)
    table["population"] = table["weight_sum"]
    groups = attributes[model_by].reindex(table["domain"]).to_numpy() if model_by else None
    table, between = shrink(table, config.min_n, groups)
    table = assess_communities(table)
    table["weight_warning"] = weight_warnings(table)
    timings["small_areas"] = time.perf_counter() - clock

    clock = time.perf_counter()
    sim = simulate_third_party(
        table["eb_estimate"].to_numpy(),
        table["eb_mse"].to_numpy(),
        table["population"].to_numpy(),
        residual_sd,
        strata=attributes[quota_by].reindex(table["domain"]).to_numpy() if quota_by else None,
        respondents=config.third_party_respondents,
        simulations=config.simulations,
        seed=config.seed,
    )
    timings["third_party"] = time.perf_counter() - clock
    city = {
        "n": int(city_row["n"]),
        "estimate": float(city_row["estimate"]),
        "se": float(city_row["se"]),
        "ci_low": float(city_row["ci_low"]),
        "ci_high": float(city_row["ci_high"]),
        "df": float(city_row["df"]),
        "variance_warning": str(city_row["variance_warning"]),
        "n_eff": float(city_row["n_eff"]),
        **city_points(float(city_row["estimate"]), float(city_row["se"])),
        "rake_iterations": result.iterations,
        "deff": result.deff,
        "deff_variance": float(city_row["deff"]),
        "weight_min": float(city_row["weight_min"]),
        "weight_max": float(city_row["weight_max"]),
        "weight_cv": float(city_row["weight_cv"]),
        "weight_warnings": int(table["weight_warning"].sum()),
        "between_area_variance": between,
        "residual_sd": residual_sd,
        **{f"third_party_{k}": v for k, v in sim.summary().items()},
    }
    return WaveAnalysis(table, item_table, city, result, timings)


def shrink(table: pd.DataFrame, min_n: int = MIN_N, groups: np.ndarray | None = None) -> tuple[pd.DataFrame, float]:
    """Add sampling_variance, shrinkage, eb_estimate and eb_mse columns to a domain table.

    Fay-Herriot with group means when ``groups`` is given; fewer than three domains (or no
    usable variance) leave the direct estimates as they are. Returns the table and the
    between-area variance (NaN when not fitted).
    """
    table = table.copy()
    fitted = False
    if len(table) >= 3:
        try:
            psi = smooth_sampling_variances(table["se"].to_numpy(), table["n"].to_numpy(), table["n_eff"].to_numpy(),
                                            min_n, usable=_usable(table))
            fh = fay_herriot(table["estimate"].to_numpy(), psi, _group_matrix(groups))
            fitted = True
        except AnalysisError:
            pass
    if fitted:
        table["sampling_variance"] = psi
        table["shrinkage"] = fh.shrinkage
        table["eb_estimate"] = fh.estimate
        table["eb_mse"] = fh.mse
        return _eb_interval(table), fh.between_variance
    # no usable variance (inside one PSU per stratum, or every answer alike) and nothing to smooth from: 数据不足
    table["sampling_variance"] = np.where(_usable(table), table["se"] ** 2, np.nan)
    table["shrinkage"] = 1.0
    table["eb_estimate"] = table["estimate"]
    table["eb_mse"] = table["sampling_variance"]
    return _eb_interval(table), float("nan")


def _usable(table: pd.DataFrame) -> np.ndarray:
    """Return True where a domain's own variance can be used (no ``variance_warning``)."""
    if "variance_warning" not in table.columns:
        return np.ones(len(table), dtype=bool)
    return (table["variance_warning"].fillna("") == "").to_numpy()


def _eb_interval(table: pd.DataFrame) -> pd.DataFrame:
    """Add eb_ci_low / eb_ci_high: the shrunk estimate -/+ 1.96 root MSE."""
    half = Z95 * np.sqrt(table["eb_mse"])
    table["eb_ci_low"] = table["eb_estimate"] - half
    table["eb_ci_high"] = table["eb_estimate"] + half
    return table


def weight_warnings(table: pd.DataFrame) -> pd.Series:
    """Return True for domains whose weights are extreme (the rule is in the module docstring)."""
    ratio = table["weight_max"] / table["weight_min"]
    return (ratio > EXTREME_WEIGHT_RATIO) | (table["deff_kish"] > EXTREME_KISH_DEFF)


def _domain_attribute(data: pd.DataFrame, by: str, column: str, domains: pd.Series) -> np.ndarray:
    """Return the value of ``column`` for each domain (its most frequent one)."""
    frame = pd.DataFrame({"domain": data[by].astype(str), "value": data[column].astype(str)})
    top = frame.groupby("domain")["value"].agg(lambda s: s.value_counts().index[0])
    return top.reindex(domains).to_numpy()


def _group_matrix(groups: np.ndarray | None) -> np.ndarray | None:
    """Return group indicator covariates for the small-area model, or None for intercept only."""
    if groups is None:
        return None
    names = pd.Series(groups).astype(str)
    if names.nunique() < 2 or len(names) <= names.nunique() + 1:
        return None
    return pd.get_dummies(names).to_numpy(dtype=float)


def _two_level_stats(design, labels: np.ndarray, score: np.ndarray) -> DomainStats:
    """Statistics for every domain and for the whole sample (domain ``ALL``) in one set."""
    frame = pd.DataFrame({"score": score})
    domain_part = many_domain_stats(design, labels, frame)
    city_part = many_domain_stats(design, np.full(len(labels), ALL), frame)
    offset = len(domain_part.domains)
    return DomainStats(
        domains=np.concatenate([domain_part.domains, city_part.domains]),
        domain=np.concatenate([domain_part.domain, city_part.domain + offset]),
        cell=np.concatenate([domain_part.cell, city_part.cell]),
        n=np.concatenate([domain_part.n, city_part.n]),
        total=np.concatenate([domain_part.total, city_part.total]),
        total_sq=np.concatenate([domain_part.total_sq, city_part.total_sq]),
    )


def output_table(analysis: WaveAnalysis) -> pd.DataFrame:
    """Return the CLI's table: one row per domain, then the ``ALL`` row for the whole sample."""
    table = analysis.domains.copy()
    city = analysis.city
    all_row = {
        "domain": ALL,
        "n": city["n"],
        "estimate": city["estimate"],
        "se": city["se"],
        "ci_low": city["ci_low"],
        "ci_high": city["ci_high"],
        "df": city["df"],
        "variance_warning": city["variance_warning"],
        "n_eff": city["n_eff"],
        "deff": city["deff_variance"],
        "deff_kish": city["deff"],
        "weight_min": city["weight_min"],
        "weight_max": city["weight_max"],
        "weight_cv": city["weight_cv"],
        "weight_warning": bool(city["weight_max"] / city["weight_min"] > EXTREME_WEIGHT_RATIO or city["deff"] > EXTREME_KISH_DEFF),
        "weight_sum": table["weight_sum"].sum(),
        "population": table["population"].sum(),
        "eb_estimate": city["estimate"],
        "eb_mse": city["se"] ** 2,
        "eb_ci_low": city["estimate"] - 1.959963984540054 * city["se"],
        "eb_ci_high": city["estimate"] + 1.959963984540054 * city["se"],
        "points": city["points"],
        "points_ci_low": city["points_ci_low"],
        "points_ci_high": city["points_ci_high"],
        "prob_pass_third_party": city["third_party_prob_pass"],
    }
    ordered = [
        "domain", "n", "estimate", "se", "df", "ci_low", "ci_high", "variance_warning", "n_eff", "weight_sum", "population",
        "sampling_variance", "shrinkage", "eb_estimate", "eb_mse", "eb_ci_low", "eb_ci_high", "prob_below_80", "status",
        "answers_needed", "answers_to_decide", "points_at_stake", "share_of_lost", "rank_by_cost",
        "deff", "deff_kish", "weight_min", "weight_max", "weight_cv", "weight_warning",
        "points", "points_ci_low", "points_ci_high", "prob_pass_third_party",
    ]
    table = table.sort_values("domain", kind="stable")
    full = pd.concat([table, pd.DataFrame([all_row])], ignore_index=True)
    city_mse = city["se"] ** 2 if not city.get("variance_warning") else float("nan")
    city_flag = assess_communities(
        pd.DataFrame({"eb_estimate": [city["estimate"]], "eb_mse": [city_mse], "population": [1.0], "n": [city["n"]]})
    ).iloc[0]
    full.loc[full.index[-1], ["prob_below_80", "status", "answers_needed", "answers_to_decide", "points_at_stake",
                              "share_of_lost"]] = [
        city_flag["prob_below_80"], city_flag["status"], city_flag["answers_needed"], city_flag["answers_to_decide"],
        city_flag["points_at_stake"], 1.0,
    ]
    return full[ordered]

"""The fieldwork monitor: where more answers are needed during a wave, and from whom.

Per community, from its answers so far and its estimate with that estimate's variance:

* ``answers_to_decide`` - further answers that decide its flag with probability
  ``DECIDE_PROBABILITY`` (80%) (the 数据不足 rule of :mod:`analysis.points`, whose
  :func:`~analysis.points.answers_to_decide` this module calls: closed form over the predictive
  distribution of the future estimate, not the estimate held still): 0 for a decided community
  (below, at risk or ok), NaN without an estimate (or a usable variance) yet.
* ``answers_for_precision`` - further answers that bring the 95% interval of its direct estimate
  down to +/- ``half_width`` points (default 3): with ``u = deff * s^2`` the variance per answer
  (design effect included; ``u = n * SE^2`` for an estimate from ``n`` answers),
  ``ceil(u * z^2 / h^2) - answers``, clipped at 0.
* per respondent attribute of the weighting (sex, age band, or whatever the margins hold besides
  the community) and each of its categories: the share of the community's answers against the
  population share, and how many answers from that group would bring it up to its share.

The variance per answer ``u``: ``n * sampling_variance``, the sampling variance the analysis
used (direct ``se^2`` from ``min_n`` answers up, smoothed below: see
:func:`analysis.smallarea.smooth_sampling_variances`); a community without a usable variance
(no answers yet) takes the median ``u`` of the communities that have one.

Population shares of groups. The margins are marginal (city totals by sex, by age band, and each
community's adult population), not per community. The analysis rakes every community to those
city totals as if each had the city's composition (:func:`analysis.raking.restrict_margins`
scales them by the communities present, which leaves the shares unchanged), so a group's
population share within a community is its city share: ``total(category) / total(variable)``.
A margin variable that is itself a cross-classification (e.g. ``sex_age`` with categories
``M_18-29``) is compared cell by cell in the same way.

Priority. The page and the CSV sort communities by what one more answer there does for the
city's estimate. The community margin fixes each community's weight to its population share
``W_d``, so the city mean is close to ``sum_d W_d * mean_d`` and its variance to
``sum_d W_d^2 * u_d / n_d`` (an upper bound rather than the city's SE: raking to sex and age
removes part of it, and small communities' variances are smoothed upwards; on the test data the
bound is about twice the SE). One more answer in community ``d`` lowers that by exactly
``W_d^2 * u_d / (n_d * (n_d + 1))`` (points^2): that is ``priority``. Giving each next answer to
the community with the highest priority is the greedy allocation that minimises the city's
variance for the answers spent, and it tends to Neyman allocation (``n_d`` proportional to
``W_d * sqrt(u_d)``). Communities without any answer come first (infinite priority, the larger
first): they are left out of the weighting altogether, and the analysis assumes they are like
the rest. Ranking by points at stake instead was rejected: more answers in a low-scoring
community sharpen its score but do not raise it, and they help the city's estimate little when
that community is small. Undecided flags are not lost: ``answers_to_decide`` is beside the
priority on every row.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.estimates import Z95
from analysis.points import DECIDE_PROBABILITY, prob_below, status
from analysis.points import answers_to_decide as planned_answers
from analysis.rules import MIN_N
from analysis.smallarea import smooth_sampling_variances

TARGET_HALF_WIDTH = 3.0
NO_DATA = "no_data"  # a community without any answer (or without an estimate yet)
_EPS = 1e-9  # ceil(x - _EPS): a need that is a whole number up to floating-point noise stays that number


def _ceil(x):
    return np.ceil(np.asarray(x, dtype=float) - _EPS)


def unit_variance(n, variance=None, *, sd=None, deff=1.0) -> np.ndarray:
    """Return the variance per answer, design effect included: ``n * variance`` or ``deff * sd^2``.

    ``variance`` is the sampling variance of an estimate from ``n`` answers (its SE squared).

    >>> unit_variance(np.array([100, 25]), np.array([4.0, 9.0])).tolist()
    [400.0, 225.0]
    >>> unit_variance(np.array([10]), sd=np.array([15.0]), deff=1.5).tolist()
    [337.5]
    """
    if variance is not None:
        return np.asarray(n, dtype=float) * np.asarray(variance, dtype=float)
    if sd is None:
        raise AnalysisError("unit variance: give the estimate's variance, or the answers' SD and the design effect")
    return np.asarray(deff, dtype=float) * np.asarray(sd, dtype=float) ** 2 * np.ones(np.shape(n))


def answers_for_precision(answers, unit_var, half_width: float = TARGET_HALF_WIDTH, z: float = Z95) -> np.ndarray:
    """Return further answers that make the 95% half-width at most ``half_width``: ceil(u z^2/h^2) - answers, >= 0.

    NaN where the variance per answer is unknown.

    >>> answers_for_precision(np.array([100, 400, 0]), np.array([400.0, 400.0, 225.0])).tolist()
    [71.0, 0.0, 97.0]
    """
    if not half_width > 0:
        raise AnalysisError("fieldwork: the target half-width must be a positive number of points")
    u = np.asarray(unit_var, dtype=float)
    total = _ceil(u * z**2 / half_width**2)
    return np.where(np.isfinite(total), np.maximum(total - np.asarray(answers, dtype=float), 0.0), np.nan)


def half_width_now(answers, unit_var, z: float = Z95) -> np.ndarray:
    """Return the current 95% half-width z * sqrt(u / answers) (NaN without answers).

    >>> half_width_now(np.array([100, 0]), np.array([400.0, 400.0])).round(3).tolist()
    [3.92, nan]
    """
    a = np.asarray(answers, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a > 0, z * np.sqrt(np.asarray(unit_var, dtype=float) / a), np.nan)


def answers_to_decide(answers, estimate, unit_var, mse=None, n_estimate=None,
                      probability: float = DECIDE_PROBABILITY) -> np.ndarray:
    """Return further answers that decide the flag with ``probability`` (80%): 0 when decided, NaN without an estimate.

    The estimate (and its MSE) may rest on ``n_estimate`` answers, fewer than the ``answers`` so
    far (the counts are newer than the analysis): the answers since are added to the precision
    as :mod:`analysis.points` adds further ones, ``1/MSE_now = 1/MSE + (answers - n_estimate) / u``,
    and :func:`analysis.points.answers_to_decide` is asked at the current count. Without ``mse``
    the estimate is direct (``MSE = u / n_estimate``).

    >>> answers_to_decide(np.array([20, 30, 20, 0]), np.array([81.0, 81.0, 70.0, np.nan]), np.array([80.0] * 4),
    ...                   mse=np.array([4.0] * 4), n_estimate=np.array([20, 20, 20, 0])).tolist()
    [167.0, 217.0, 0.0, nan]
    """
    a = np.asarray(answers, dtype=float)
    u = np.asarray(unit_var, dtype=float)
    n_est = a if n_estimate is None else np.asarray(n_estimate, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mse0 = u / n_est if mse is None else np.asarray(mse, dtype=float)
        mse_now = 1.0 / (1.0 / mse0 + np.maximum(a - n_est, 0.0) / u)
        psi_now = u / a
    estimate = np.asarray(estimate, dtype=float)
    known = (a > 0) & np.isfinite(estimate) & np.isfinite(mse_now) & (u > 0)
    safe = lambda x, fill: np.where(known, x, fill)  # noqa: E731
    needed = planned_answers(safe(estimate, 90.0), safe(mse_now, 1.0), safe(psi_now, 1.0), safe(a, 1.0), probability)
    decided = current_status(safe(estimate, 90.0), safe(mse_now, 1.0)) != "undecided"
    return np.where(known, np.where(decided, 0.0, needed), np.nan)


def current_status(estimate, mse) -> np.ndarray:
    """Return the :mod:`analysis.points` status of estimates with the given MSE.

    >>> current_status(np.array([70.0, 81.0]), np.array([4.0, 4.0])).tolist()
    ['below', 'undecided']
    """
    estimate = np.asarray(estimate, dtype=float)
    return status(estimate, prob_below(estimate, np.sqrt(np.asarray(mse, dtype=float))))


def priority(answers, unit_var, population) -> np.ndarray:
    """Return the fall in the city mean's variance from one more answer: W^2 u / (n (n + 1)); inf without answers.

    ``W`` is the community's share of the population (the reasoning is in the module docstring).

    >>> priority(np.array([10, 40, 0]), np.array([200.0, 200.0, 200.0]), np.array([1.0, 1.0, 2.0])).round(5).tolist()
    [0.11364, 0.00762, inf]
    """
    a = np.asarray(answers, dtype=float)
    population = np.asarray(population, dtype=float)
    if not population.sum() > 0:
        raise AnalysisError("fieldwork: the communities' population must be positive")
    w = population / population.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = w**2 * np.asarray(unit_var, dtype=float) / (a * (a + 1))
    return np.where(a > 0, gain, np.inf)


def answers_to_share(group_answers, answers, share) -> np.ndarray:
    """Return the fewest answers from a group that bring its share of the answers up to ``share``.

    The smallest ``m >= 0`` with ``(k + m) / (n + m) >= p``: ``ceil((p n - k) / (1 - p))``.

    >>> answers_to_share(np.array([2, 6, 0]), np.array([10, 10, 0]), np.array([0.48, 0.48, 0.3])).tolist()
    [6.0, 0.0, 1.0]
    """
    k, n, p = (np.asarray(x, dtype=float) for x in (group_answers, answers, share))
    with np.errstate(divide="ignore", invalid="ignore"):
        m = _ceil((p * n - k) / (1.0 - p))
    m = np.where(p >= 1.0, np.where(k >= n, 0.0, np.inf), m)
    # A group with a positive share and no answer at all needs at least one, even in an empty community.
    m = np.where((k == 0) & (p > 0), np.maximum(m, 1.0), m)
    return np.maximum(m, 0.0)


def group_gaps(counts: pd.DataFrame, margins: pd.DataFrame, *, by: str, domains=None) -> pd.DataFrame:
    """Compare each community's answers by respondent group with the population's shares.

    ``counts`` has a column ``by``, a column per attribute and ``n`` (answers), one row per cell
    (extra columns such as channel are summed over). Every margin variable other than ``by``
    that is a column of ``counts`` is compared, category by category, including categories
    without any answer; ``domains`` adds communities with no answers at all. Returns one row per
    (domain, variable, category): ``answers``, ``domain_answers``, ``sample_share`` (NaN without
    answers), ``population_share``, ``gap`` (sample minus population share) and
    ``answers_to_share`` (see :func:`answers_to_share`).

    >>> counts = pd.DataFrame({"c": ["a", "a"], "sex": ["M", "F"], "n": [2, 8]})
    >>> margins = pd.DataFrame({"variable": ["sex", "sex"], "category": ["M", "F"], "total": [48, 52]})
    >>> group_gaps(counts, margins, by="c")[["category", "sample_share", "answers_to_share"]].values.tolist()
    [['M', 0.2, 6.0], ['F', 0.8, 0.0]]
    """
    needed = {"variable", "category", "total"} - set(margins.columns)
    if needed:
        raise AnalysisError(f"margins: missing column(s) {', '.join(sorted(needed))}")
    if by not in counts.columns or "n" not in counts.columns:
        raise AnalysisError(f"fieldwork: the counts need columns {by} and n")
    names = list(dict.fromkeys(counts[by].astype(str)))
    if domains is not None:
        names += [d for d in dict.fromkeys(str(x) for x in domains) if d not in set(names)]
    index = pd.Index(names, name="domain")
    labels = counts[by].astype(str)
    totals = counts.groupby(labels)["n"].sum().reindex(index, fill_value=0).astype(float)
    frames = []
    for variable in dict.fromkeys(margins["variable"].astype(str)):
        if variable == by or variable not in counts.columns:
            continue
        rows = margins[margins["variable"].astype(str) == variable]
        share = pd.Series(pd.to_numeric(rows["total"]).to_numpy(dtype=float), index=rows["category"].astype(str))
        share = share / share.sum()
        got = counts.assign(domain=labels, category=counts[variable].astype(str)).groupby(["domain", "category"])["n"].sum()
        grid = pd.MultiIndex.from_product([index, share.index], names=["domain", "category"])
        k = got.reindex(grid, fill_value=0).to_numpy(dtype=float)
        n = totals.reindex(grid.get_level_values("domain")).to_numpy()
        p = share.reindex(grid.get_level_values("category")).to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            sample = np.where(n > 0, k / n, np.nan)
        frames.append(pd.DataFrame({
            "domain": grid.get_level_values("domain"), "variable": variable, "category": grid.get_level_values("category"),
            "answers": k, "domain_answers": n, "sample_share": sample, "population_share": p, "gap": sample - p,
            "answers_to_share": answers_to_share(k, n, p),
        }))
    columns = ["domain", "variable", "category", "answers", "domain_answers", "sample_share", "population_share", "gap",
               "answers_to_share"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


@dataclass
class FieldworkPlan:
    """Result of :func:`plan_fieldwork`: one row per community, one per community x group, city figures."""

    communities: pd.DataFrame
    groups: pd.DataFrame
    city: dict[str, float]


def plan_fieldwork(
    domains: pd.DataFrame,
    counts: pd.DataFrame | None = None,
    margins: pd.DataFrame | None = None,
    *,
    by: str = "community",
    half_width: float = TARGET_HALF_WIDTH,
    min_n: int = MIN_N,
    default_unit_variance: float | None = None,
) -> FieldworkPlan:
    """Plan the rest of a wave's fieldwork, community by community.

    ``domains`` has one row per community (``domain``) with the columns of the analysis's domain
    table (:func:`analysis.pipeline.analyze`): ``n`` (answers behind the estimate),
    ``eb_estimate`` and ``eb_mse`` (or ``estimate`` alone: then the estimate is direct),
    ``sampling_variance`` or ``se`` (with ``n_eff``), ``population``; and optionally ``answers``,
    the answers so far when the counts are newer than the analysis. ``counts`` (cells of
    ``by`` x attributes with ``n``) give the answers so far and the groups; ``margins`` the
    groups' population shares and, through the ``by`` rows, the communities' population.
    Communities in ``counts`` or in the ``by`` margins but not in ``domains`` are added without
    an estimate. ``default_unit_variance`` stands in for the variance per answer where a
    community has none (default: the median of the others).

    Returns the communities, highest priority first, with ``answers``, ``population_share``,
    ``estimate``, ``status`` (``no_data`` without an estimate), ``answers_to_decide``,
    ``half_width``, ``answers_for_precision``, ``unit_variance``, ``priority``, ``rank``,
    ``groups_short`` (answers from each group short of its share, largest first, as
    ``variable=category:m`` joined by ``;``); the group table of :func:`group_gaps`; and city
    figures: answers, communities, those without answers, undecided ones and the answers still
    needed for the target half-width in every community.
    """
    if "domain" not in domains.columns:
        raise AnalysisError("fieldwork: the domain table needs a domain column")
    table = domains.copy()
    table["domain"] = table["domain"].astype(str)
    table = table[table["domain"].str.upper() != "ALL"].set_index("domain")
    extra: list[str] = []
    if counts is not None and not counts.empty:
        extra += list(counts[by].astype(str))
    margin_population = None
    if margins is not None and not margins.empty:
        rows = margins[margins["variable"].astype(str) == by]
        if len(rows):
            margin_population = pd.Series(pd.to_numeric(rows["total"]).to_numpy(dtype=float), index=rows["category"].astype(str))
            extra += list(margin_population.index)
    table = table.reindex(list(dict.fromkeys([*table.index, *extra])))
    table.index.name = "domain"
    n_est = table["n"].fillna(0).to_numpy(dtype=float) if "n" in table.columns else np.zeros(len(table))
    if counts is not None and not counts.empty:
        answers = counts.groupby(counts[by].astype(str))["n"].sum().reindex(table.index, fill_value=0).to_numpy(dtype=float)
        if "answers" in table.columns:
            answers = np.where(table["answers"].notna(), table["answers"].to_numpy(dtype=float), answers)
    elif "answers" in table.columns:
        answers = table["answers"].fillna(0).to_numpy(dtype=float)
    else:
        answers = n_est.copy()
    answers = np.maximum(answers, n_est)  # counts taken after the analysis cannot be fewer than it saw

    if margin_population is not None:
        population = margin_population.reindex(table.index).to_numpy(dtype=float)
        if "population" in table.columns:
            population = np.where(np.isnan(population), table["population"].to_numpy(dtype=float), population)
    elif "population" in table.columns:
        population = table["population"].to_numpy(dtype=float)
    else:
        population = np.ones(len(table))
    population = np.where(np.isfinite(population) & (population > 0), population, 0.0)
    if not population.sum() > 0:
        population = np.ones(len(table))

    u = _unit_variances(table, n_est, min_n, default_unit_variance)
    estimate_col = "eb_estimate" if "eb_estimate" in table.columns else ("estimate" if "estimate" in table.columns else None)
    estimate = table[estimate_col].to_numpy(dtype=float) if estimate_col else np.full(len(table), np.nan)
    mse = table["eb_mse"].to_numpy(dtype=float) if "eb_mse" in table.columns else None
    decide = answers_to_decide(answers, estimate, u, mse, np.where(n_est > 0, n_est, answers))
    with np.errstate(divide="ignore", invalid="ignore"):
        mse0 = (u / n_est) if mse is None else mse
        mse_now = 1.0 / (1.0 / mse0 + np.maximum(answers - n_est, 0.0) / u)
    known = np.isfinite(estimate) & np.isfinite(mse_now) & (n_est > 0)
    state = np.where(known, current_status(np.where(known, estimate, 90.0), np.where(known, mse_now, 1.0)), NO_DATA)

    out = pd.DataFrame({
        "domain": table.index.to_numpy(),
        "answers": answers.astype(int),
        "population": population,
        "population_share": population / population.sum(),
        "estimate": estimate,
        "status": state,
        "answers_to_decide": decide,
        "half_width": half_width_now(answers, u),
        "answers_for_precision": answers_for_precision(answers, u, half_width),
        "unit_variance": u,
        "priority": priority(answers, u, population),
    })
    for column in ("street", "district"):
        if column in table.columns:
            out[column] = table[column].to_numpy()
    groups = (group_gaps(counts, margins, by=by, domains=out["domain"]) if counts is not None and margins is not None
              else pd.DataFrame(columns=["domain", "variable", "category", "answers_to_share"]))
    out["groups_short"] = out["domain"].map(_short_groups(groups)).fillna("")
    out = out.sort_values(["priority", "population", "domain"], ascending=[False, False, True], kind="stable")
    out["rank"] = np.arange(1, len(out) + 1)
    out = out.reset_index(drop=True)
    covered = out["answers"] > 0
    city = {
        "answers": int(out["answers"].sum()),
        "communities": len(out),
        "communities_without_answers": int((~covered).sum()),
        "answers_for_precision": float(out["answers_for_precision"].sum()),
        "undecided": int((out["status"] == "undecided").sum()),
        "half_width_target": float(half_width),
    }
    return FieldworkPlan(out, groups, city)


def _unit_variances(table: pd.DataFrame, n: np.ndarray, min_n: int, default: float | None) -> np.ndarray:
    """Return each community's variance per answer, the median of the others where it has none."""
    if "sampling_variance" in table.columns:
        psi = table["sampling_variance"].to_numpy(dtype=float)
    elif "se" in table.columns:
        se = table["se"].to_numpy(dtype=float)
        n_eff = table["n_eff"].to_numpy(dtype=float) if "n_eff" in table.columns else n
        has = (n > 0) & np.isfinite(se)
        psi = np.full(len(table), np.nan)
        if has.any():
            try:
                psi[has] = smooth_sampling_variances(se[has], n[has], np.nan_to_num(n_eff[has], nan=1.0), min_n)
            except AnalysisError:
                pass  # no community has a usable standard error: the default stands in
    else:
        psi = np.full(len(table), np.nan)
    u = n * psi
    usable = (n > 0) & np.isfinite(u) & (u > 0)
    if default is None:
        trusted = usable & (n >= min_n)
        pool = u[trusted] if trusted.any() else u[usable]
        default = float(np.median(pool)) if len(pool) else float("nan")
    return np.where(usable, u, default)


def _short_groups(groups: pd.DataFrame) -> dict[str, str]:
    """Return per domain the groups short of their share, most answers needed first: ``sex=M:6;age_band=60+:2``."""
    if groups.empty:
        return {}
    short = groups[(groups["answers_to_share"] > 0) & np.isfinite(groups["answers_to_share"].astype(float))]
    short = short.sort_values(["domain", "answers_to_share", "variable", "category"], ascending=[True, False, True, True])
    if short.empty:
        return {}
    text = (short["variable"].astype(str) + "=" + short["category"].astype(str) + ":"
            + short["answers_to_share"].astype(float).astype(int).astype(str))
    return text.groupby(short["domain"], sort=False).agg(";".join).to_dict()

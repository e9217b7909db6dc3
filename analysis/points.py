"""Flags against the 80-point line, the city's questionnaire points and what each community costs.

The questionnaire survey is worth ``TOTAL_POINTS`` (20) of the 100 assessment points, and a
satisfaction under ``PASS_LINE`` (80) fails it.

Status rule (per area, on its estimate and that estimate's uncertainty: for communities the
shrunk estimate and its MSE, for streets, districts and the city the direct estimate and its
standard error). With ``p`` the probability that the true score is under 80,
``p = Phi((80 - estimate) / sqrt(MSE))``:

* ``below``     (低于80分) - ``p >= BELOW_PROBABILITY`` (0.90);
* ``at_risk``   (有风险)   - ``FLAG_PROBABILITY`` (0.80) ``<= p < 0.90``: probably under 80;
* ``ok``        (达标)     - ``p <= OK_PROBABILITY`` (0.20);
* ``undecided`` (数据不足) - otherwise (``0.20 < p < 0.80``): the data cannot tell which side of 80
  the area is on. The band is symmetric around the line (``FLAG_PROBABILITY = 1 - OK_PROBABILITY``):
  79.9 from 3 answers is 数据不足 as 80.1 from 3 answers is, not 有风险. An area without a usable
  variance (``variance_warning`` ``single_psu``: inside one PSU per stratum; ``zero_variance``:
  every answer alike, so the sample cannot measure its own spread) has no probability and is
  数据不足 too, never a certain flag.

For an undecided area, ``answers_needed`` is how many more answers would decide it at the
current estimate and variance: with ``psi`` the sampling variance of the ``n`` answers so far
(so ``n * psi`` is the variance per answer, design effect included), ``m`` more answers add
``m / (n psi)`` to the precision ``1 / MSE``, and the area is decided when
``|estimate - 80| / sqrt(MSE_new) >= z = Phi^-1(1 - 0.20)`` (more answers at an estimate above the
line make it ``ok``, below it ``at_risk``)::

    answers_needed = ceil(n * psi * (z^2 / (estimate - 80)^2 - 1 / MSE))

(empty for decided areas; for an estimate of exactly 80 no number of answers decides, also empty).
That number is computed at the current estimate and decides the flag in only about half of the
futures. ``answers_to_decide`` is the planner's number instead: the fewest more answers that decide
the flag with probability ``DECIDE_PROBABILITY`` (80%), in closed form over the predictive
distribution of the future estimate, with "decided" symmetric around 80 (probability under 80
outside 20%-80%): see :func:`decided_probability`; ``tests/analysis/test_planner.py`` checks it by
simulation.

Measured (before the band was made symmetric: see ``analysis/simulate.py`` for today's table) with ``python -m analysis.simulate --flags`` on a city whose true community means are
N(82, 4^2), n from 2 to 200 (log-uniform), respondent SD 15 (see that module): a false alarm is
a community truly at or above 80 flagged ``below`` or ``at_risk``; a miss is one truly under 80
reported ``ok``; undecided communities are neither (their share is reported). 20 replicates of
300 communities (seed 1) give, for n >= 30: false alarms 6.4%, misses 6.0%, undecided 13.3%;
for n < 30: false alarms 9.8%, misses 10.5%, undecided 42.9% (``tests/analysis/test_flags.py``
holds the targets). The thresholds were chosen on that city: the flag follows the evidence,
and a community with too few answers is told so instead of being sent an inspection.

The 80-point line and floating point: a weighted mean of answers that are all 80 can come out
as 79.99999999999999. Every comparison with the line therefore rounds the estimate to
``LINE_DECIMALS`` (9) decimals first (:func:`settle`), and a standard error of at most
``SE_TOLERANCE`` (1e-9) counts as zero. The probability under 80 is
``Phi((80 - settle(estimate)) / se)``; with a zero standard error it is 1 when the settled
estimate is under 80 and 0 otherwise (an estimate of exactly 80 with SE 0 is not below, and not
at risk).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from analysis.errors import AnalysisError
from analysis.estimates import Z95
from analysis.rules import PASS_LINE, TOTAL_POINTS

BELOW_PROBABILITY = 0.90
OK_PROBABILITY = 0.20
FLAG_PROBABILITY = 1 - OK_PROBABILITY  # 数据不足 is symmetric around 80
LINE_DECIMALS = 9
SE_TOLERANCE = 1e-9


def settle(estimate):
    """Round to ``LINE_DECIMALS`` decimals, where floating-point noise cannot cross the 80 line.

    >>> float(settle(79.99999999999999)), float(settle(79.9999))
    (80.0, 79.9999)
    """
    return np.round(np.asarray(estimate, dtype=float), LINE_DECIMALS)


def prob_below(estimate, se, threshold: float = PASS_LINE) -> np.ndarray:
    """Return the probability that the true score is under ``threshold`` (rule in the module docstring).

    >>> prob_below(np.array([79.99999999999999, 80.0, 79.0, 80.0]), np.array([0.0, 0.0, 0.0, 1.0])).tolist()
    [0.0, 0.0, 1.0, 0.5]
    """
    estimate = settle(estimate)
    se = np.asarray(se, dtype=float)
    certain = se <= SE_TOLERANCE
    with np.errstate(divide="ignore", invalid="ignore"):
        prob = norm.cdf((threshold - estimate) / np.where(certain, 1.0, se))
    return np.where(certain, (estimate < threshold).astype(float), prob)


def status(estimate: np.ndarray, prob_below: np.ndarray, threshold: float = PASS_LINE) -> np.ndarray:
    """Return ``below``, ``at_risk``, ``ok`` or ``undecided`` per area (rule in the module docstring).

    ``estimate`` is kept for the callers' sake: the rule uses the probability only, which
    :func:`prob_below` computes from the settled estimate.

    >>> status(np.array([70.0, 79.0, 90.0, 81.0, 79.9]), np.array([0.99, 0.85, 0.1, 0.3, 0.7])).tolist()
    ['below', 'at_risk', 'ok', 'undecided', 'undecided']
    """
    prob = np.asarray(prob_below, dtype=float)
    out = np.full(prob.shape, "undecided", dtype=object)  # also where there is no probability (NaN)
    out[prob <= OK_PROBABILITY] = "ok"
    out[prob >= FLAG_PROBABILITY] = "at_risk"
    out[prob >= BELOW_PROBABILITY] = "below"
    return out


def answers_needed(estimate, mse, sampling_variance, n, threshold: float = PASS_LINE) -> np.ndarray:
    """Return how many more answers would decide an undecided area (formula in the module docstring).

    NaN for areas that are decided or sit exactly on the line.

    >>> answers_needed(np.array([81.0, 79.0, 90.0, 77.0]), np.array([4.0, 4.0, 1.0, 4.0]), np.array([4.0, 4.0, 1.0, 4.0]),
    ...                np.array([20, 20, 100, 20])).tolist()
    [37.0, 37.0, nan, nan]
    """
    estimate = settle(estimate)
    mse, psi, n = (np.asarray(a, dtype=float) for a in (mse, sampling_variance, n))
    se = np.sqrt(mse)
    prob = prob_below(estimate, se, threshold)
    undecided = status(estimate, prob) == "undecided"
    gap = estimate - threshold
    z = norm.ppf(1 - OK_PROBABILITY)  # symmetric: the same distance decides either side
    with np.errstate(divide="ignore", invalid="ignore"):
        needed = np.ceil(n * psi * (z**2 / gap**2 - 1 / mse))
    ok = undecided & (gap != 0) & np.isfinite(needed)
    return np.where(ok, np.maximum(needed, 1.0), np.nan)


DECIDE_PROBABILITY = 0.80  # the planner's answers give this chance of a decided flag


def decided_probability(estimate, mse, sampling_variance, n, more, threshold: float = PASS_LINE) -> np.ndarray:
    """Return the probability that ``more`` answers decide the flag, in closed form.

    Decided means the probability under 80 leaves the band ``(OK_PROBABILITY, 1 - OK_PROBABILITY)``
    (20%-80%), symmetric around the line: then the area is clearly ``ok`` or clearly under 80.
    With ``V`` the MSE now and ``s2 = n * psi`` the variance of one answer, ``m`` more answers give
    ``V' = 1 / (1 / V + m / s2)``, and the estimate then is normal around today's with variance
    ``V - V'`` (the predictive distribution). It is undecided while within ``z sqrt(V')`` of 80
    (``z = Phi^-1(0.8)``), so the probability of deciding is
    ``1 - Phi((80 + z sqrt(V') - e) / sqrt(V - V')) + Phi((80 - z sqrt(V') - e) / sqrt(V - V'))``.

    >>> decided_probability(np.array([81.0]), np.array([4.0]), np.array([4.0]), np.array([20]), np.array([0, 200])).round(3).tolist()
    [0.0, 0.817]
    """
    estimate = settle(estimate)
    mse, psi, n, more = (np.asarray(a, dtype=float) for a in (mse, sampling_variance, n, more))
    with np.errstate(divide="ignore", invalid="ignore"):
        after = 1.0 / (1.0 / mse + more / (n * psi))
        spread = np.sqrt(np.maximum(mse - after, 0.0))
        band = norm.ppf(1 - OK_PROBABILITY) * np.sqrt(after)
        upper = norm.cdf((threshold + band - estimate) / spread)
        lower = norm.cdf((threshold - band - estimate) / spread)
        today = np.abs(estimate - threshold) >= band  # spread 0: decided now or never
        prob = np.where(spread > 0, 1 - upper + lower, today.astype(float))
    return prob


def answers_to_decide(
    estimate, mse, sampling_variance, n, probability: float = DECIDE_PROBABILITY, threshold: float = PASS_LINE,
    limit: int = 1_000_000,
) -> np.ndarray:
    """Return the fewest more answers that decide the flag with ``probability`` (default 80%).

    The probability is :func:`decided_probability` (closed form, no simulation); the number is the
    smallest ``m`` that reaches it (doubling, then bisection). 0 for areas already decided (their
    probability under 80 outside 20%-80%, symmetric around the line), NaN where no number up to
    ``limit`` does it or the variance is unknown.

    >>> answers_to_decide(np.array([81.0, 79.9, 70.0]), np.array([4.0, 36.0, 4.0]), np.array([4.0, 36.0, 4.0]),
    ...                   np.array([20, 3, 20])).tolist()
    [167.0, 34.0, 0.0]
    """
    estimate = settle(estimate)
    mse, psi, n = (np.asarray(a, dtype=float) for a in (mse, sampling_variance, n))
    prob = prob_below(estimate, np.sqrt(mse), threshold)
    decided = (prob <= OK_PROBABILITY) | (prob >= 1 - OK_PROBABILITY)
    out = np.where(decided, 0.0, np.nan)
    todo = np.flatnonzero(~decided & np.isfinite(mse) & (psi > 0) & (n > 0))
    if not len(todo):
        return out

    def reached(m):
        return decided_probability(estimate[todo], mse[todo], psi[todo], n[todo], m, threshold) >= probability

    high = np.ones(len(todo))
    while True:
        short = ~reached(high) & (high < limit)
        if not short.any():
            break
        high[short] *= 2
    ok = reached(high)
    low = np.where(ok, 0.0, np.nan)
    high = np.where(ok, high, np.nan)
    live = ok.copy()
    while live.any():
        mid = np.floor((low + high) / 2)
        good = reached(np.where(live, mid, 1.0))
        high = np.where(live & good, mid, high)
        low = np.where(live & ~good, mid, low)
        live = ok & (high - low > 1)
    out[todo] = high
    return out


def city_points(score: float, se: float) -> dict[str, float]:
    """Return the city's expected questionnaire points with a 95% interval.

    >>> city_points(85.0, 0.5)["points"]
    17.0
    """
    factor = TOTAL_POINTS / 100.0
    return {
        "points": factor * score,
        "points_ci_low": factor * (score - Z95 * se),
        "points_ci_high": factor * (score + Z95 * se),
    }


def points_at_stake(score: np.ndarray, population: np.ndarray) -> np.ndarray:
    """Return 20 x population share x (100 - score) / 100 for each community.

    >>> points_at_stake(np.array([90.0, 70.0]), np.array([1.0, 1.0])).tolist()
    [1.0, 3.0]
    """
    population = np.asarray(population, dtype=float)
    if population.sum() <= 0:
        raise AnalysisError("points: the population must be positive")
    share = population / population.sum()
    return TOTAL_POINTS * share * (100.0 - np.asarray(score, dtype=float)) / 100.0


def assess_communities(
    frame: pd.DataFrame, *, score: str = "eb_estimate", mse: str = "eb_mse", population: str = "population"
) -> pd.DataFrame:
    """Add prob_below_80, status, answers_needed, points_at_stake, share_of_lost and rank_by_cost columns.

    ``frame`` has one row per community with its score, the score's MSE and its population, and
    for ``answers_needed`` its ``n`` and ``sampling_variance`` (without them the MSE stands in).
    """
    out = frame.copy()
    prob = prob_below(out[score].to_numpy(), np.sqrt(out[mse].to_numpy()))
    out["prob_below_80"] = prob
    out["status"] = status(out[score].to_numpy(), prob)
    if "n" in out.columns:
        psi = out["sampling_variance"] if "sampling_variance" in out.columns else out[mse]
        out["answers_needed"] = answers_needed(out[score], out[mse], psi, out["n"])
        out["answers_to_decide"] = answers_to_decide(out[score], out[mse], psi, out["n"])
    stake = points_at_stake(out[score].to_numpy(), out[population].to_numpy())
    out["points_at_stake"] = stake
    out["share_of_lost"] = stake / stake.sum() if stake.sum() > 0 else 0.0
    out["rank_by_cost"] = pd.Series(stake, index=out.index).rank(ascending=False, method="first").astype(int)
    return out


def assess_direct(frame: pd.DataFrame, *, score: str = "estimate", se: str = "se") -> pd.DataFrame:
    """Add prob_below_80 and status columns from direct estimates and their standard errors.

    For areas above the unit (street, district, city), which are not shrunk. An area with a
    ``variance_warning`` (``single_psu``: inside one PSU per stratum, R's NaN; ``zero_variance``:
    every answer alike) has no usable standard error: no probability, status ``undecided``
    (数据不足), never a certain flag, and no number of answers computed from a variance of 0.
    Adds ``answers_needed`` and the planner's ``answers_to_decide`` (80% probability of deciding).
    """
    out = frame.copy()
    usable = out[se].to_numpy(dtype=float)
    if "variance_warning" in out.columns:
        usable = np.where(out["variance_warning"].fillna("") != "", np.nan, usable)
    prob = prob_below(out[score].to_numpy(), usable)
    prob = np.where(np.isnan(usable), np.nan, prob)
    out["prob_below_80"] = prob
    out["status"] = status(out[score].to_numpy(), prob)
    out["answers_needed"] = answers_needed(out[score], usable**2, usable**2, out["n"])
    out["answers_to_decide"] = answers_to_decide(out[score], usable**2, usable**2, out["n"])
    return out


@dataclass(frozen=True)
class ThirdPartySimulation:
    """Distribution of the city's score in simulated assessor surveys."""

    scores: np.ndarray
    respondents: int

    @property
    def prob_pass(self) -> float:
        """Share of simulated surveys in which the city reaches 80."""
        return float(np.mean(settle(self.scores) >= PASS_LINE))

    def summary(self) -> dict[str, float]:
        """Return mean, sd, 2.5/50/97.5 percentiles and the probability of passing."""
        q = np.percentile(self.scores, [2.5, 50, 97.5])
        return {
            "mean": float(self.scores.mean()),
            "sd": float(self.scores.std(ddof=1)),
            "p2_5": float(q[0]),
            "median": float(q[1]),
            "p97_5": float(q[2]),
            "prob_pass": self.prob_pass,
        }


def simulate_third_party(
    community_score: np.ndarray,
    community_mse: np.ndarray,
    population: np.ndarray,
    residual_sd: float,
    *,
    strata: np.ndarray | None = None,
    respondents: int = 1000,
    simulations: int = 2000,
    seed: int | None = 0,
) -> ThirdPartySimulation:
    """Simulate the assessors' survey: ``respondents`` people by quota over ``strata``.

    Quotas per stratum (e.g. district) are proportional to population (largest remainder);
    within a stratum each respondent's community is drawn with probability proportional to its
    population. In each simulation the communities' true scores are drawn from N(score, MSE),
    and each respondent adds an independent residual with standard deviation ``residual_sd``
    (the pooled spread of respondents around their community's mean); the sum of those is drawn
    directly as a normal. The city's score is the plain mean, as the assessors report.
    """
    score = np.asarray(community_score, dtype=float)
    sd = np.sqrt(np.asarray(community_mse, dtype=float))
    population = np.asarray(population, dtype=float)
    if respondents < 1 or simulations < 1:
        raise AnalysisError("third-party simulation: respondents and simulations must be positive")
    if not np.isfinite(residual_sd) or residual_sd < 0:
        raise AnalysisError("third-party simulation: the residual standard deviation must be a number >= 0")
    strata = np.zeros(len(score), dtype=int) if strata is None else pd.factorize(np.asarray(strata))[0]
    rng = np.random.default_rng(seed)
    stratum_pop = np.bincount(strata, weights=population)
    quotas = _largest_remainder(respondents, stratum_pop)
    counts = np.zeros((simulations, len(score)))
    for s, quota in enumerate(quotas):
        members = np.flatnonzero(strata == s)
        if quota == 0 or len(members) == 0:
            continue
        counts[:, members] = rng.multinomial(quota, population[members] / population[members].sum(), size=simulations)
    true_scores = score + sd * rng.standard_normal((simulations, len(score)))
    community_part = np.einsum("ij,ij->i", counts, true_scores)
    noise = residual_sd * np.sqrt(respondents) * rng.standard_normal(simulations)
    return ThirdPartySimulation((community_part + noise) / respondents, respondents)


def _largest_remainder(total: int, shares: np.ndarray) -> np.ndarray:
    exact = total * shares / shares.sum()
    base = np.floor(exact).astype(int)
    rest = total - base.sum()
    base[np.argsort(-(exact - base), kind="stable")[:rest]] += 1
    return base

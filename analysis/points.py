"""Flags against the 80-point line, the city's questionnaire points and what each community costs.

The questionnaire survey is worth ``TOTAL_POINTS`` (20) of the 100 assessment points, and a
satisfaction under ``PASS_LINE`` (80) fails it.

Status rule (per community, on the shrunk estimate and its MSE):

* ``below``   - the estimate is under 80;
* ``at_risk`` - the estimate is 80 or more, but the probability that the true score is under 80
  is at least ``AT_RISK_PROBABILITY`` (0.20: one chance in five);
* ``ok``      - otherwise.

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

from analysis.errors import AnalysisError
from analysis.estimates import Z95

TOTAL_POINTS = 20.0
PASS_LINE = 80.0
AT_RISK_PROBABILITY = 0.20
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
    from scipy.stats import norm

    estimate = settle(estimate)
    se = np.asarray(se, dtype=float)
    certain = se <= SE_TOLERANCE
    with np.errstate(divide="ignore", invalid="ignore"):
        prob = norm.cdf((threshold - estimate) / np.where(certain, 1.0, se))
    return np.where(certain, (estimate < threshold).astype(float), prob)


def status(estimate: np.ndarray, prob_below: np.ndarray, threshold: float = PASS_LINE) -> np.ndarray:
    """Return ``below``, ``at_risk`` or ``ok`` per community (rule in the module docstring).

    >>> status(np.array([79.9, 81.0, 90.0]), np.array([0.6, 0.3, 0.01])).tolist()
    ['below', 'at_risk', 'ok']
    """
    estimate = settle(estimate)
    out = np.full(estimate.shape, "ok", dtype=object)
    out[np.asarray(prob_below) >= AT_RISK_PROBABILITY] = "at_risk"
    out[estimate < threshold] = "below"
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
    """Add prob_below_80, status, points_at_stake, share_of_lost and rank_by_cost columns.

    ``frame`` has one row per community with its score, the score's MSE and its population.
    """
    out = frame.copy()
    prob = prob_below(out[score].to_numpy(), np.sqrt(out[mse].to_numpy()))
    out["prob_below_80"] = prob
    out["status"] = status(out[score].to_numpy(), prob)
    stake = points_at_stake(out[score].to_numpy(), out[population].to_numpy())
    out["points_at_stake"] = stake
    out["share_of_lost"] = stake / stake.sum() if stake.sum() > 0 else 0.0
    out["rank_by_cost"] = pd.Series(stake, index=out.index).rank(ascending=False, method="first").astype(int)
    return out


def assess_direct(frame: pd.DataFrame, *, score: str = "estimate", se: str = "se") -> pd.DataFrame:
    """Add prob_below_80 and status columns from direct estimates and their standard errors.

    For areas above the unit (street, district, city), which are not shrunk.
    """
    out = frame.copy()
    prob = prob_below(out[score].to_numpy(), out[se].to_numpy())
    out["prob_below_80"] = prob
    out["status"] = status(out[score].to_numpy(), prob)
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

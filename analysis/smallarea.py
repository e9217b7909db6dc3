"""Area-level (Fay-Herriot) empirical Bayes shrinkage of community estimates.

Model: direct_d = x_d' beta + v_d + e_d with v_d ~ N(0, A) and e_d ~ N(0, psi_d), psi_d known.
The between-area variance A is fitted by Li and Lahiri's adjusted REML (REML likelihood times
A), which is strictly positive, so no community is ever shrunk all the way to the regression
line because an estimate of A happened to be zero. The MSE is the Prasad-Rao approximation
g1 + g2 + 2 g3 with the REML asymptotic variance of A.

Sampling variances of tiny samples are noisy (three equal answers give a standard error of 0),
so communities with fewer than ``min_n`` respondents get a smoothed variance: a generalized
variance function psi_d = kappa / n_eff_d, with kappa the median of se^2 * n_eff over the
communities large enough to trust their own variance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from analysis.errors import AnalysisError
from analysis.rules import MIN_N, PASS_LINE


@dataclass(frozen=True)
class FayHerriotResult:
    """Shrunk estimates and what they rest on, one entry per area."""

    estimate: np.ndarray
    mse: np.ndarray
    shrinkage: np.ndarray  # gamma_d = A / (A + psi_d): weight of the direct estimate
    sampling_variance: np.ndarray
    synthetic: np.ndarray  # x_d' beta
    between_variance: float
    beta: np.ndarray

    def prob_below(self, threshold: float = PASS_LINE) -> np.ndarray:
        """Return the probability that each area's true value is under ``threshold`` (``analysis.points`` rule)."""
        from analysis.points import prob_below

        return prob_below(self.estimate, np.sqrt(self.mse), threshold)


def smooth_sampling_variances(
    se: np.ndarray, n: np.ndarray, n_eff: np.ndarray, min_n: int = MIN_N, usable: np.ndarray | None = None
) -> np.ndarray:
    """Return sampling variances: direct se^2 from ``min_n`` respondents up, else kappa / n_eff.

    ``usable`` (default all) marks the domains whose own variance can be trusted at all; the others
    (a domain inside one PSU, every answer alike) get kappa / n_eff whatever their size.

    >>> smooth_sampling_variances(np.array([1.0, 0.0]), np.array([100, 3]), np.array([100.0, 3.0]))
    array([ 1.        , 33.33333333])
    """
    se, n, n_eff = (np.asarray(a, dtype=float) for a in (se, n, n_eff))
    trusted = (n >= min_n) & (se > 0) & (True if usable is None else np.asarray(usable, dtype=bool))
    if not trusted.any():
        trusted = (n >= 2) & (se > 0) & (True if usable is None else np.asarray(usable, dtype=bool))
    if not trusted.any():
        raise AnalysisError("small areas: no community has a usable standard error to smooth from")
    kappa = float(np.median(se[trusted] ** 2 * n_eff[trusted]))
    return np.where(trusted & (n >= min_n), se**2, kappa / np.maximum(n_eff, 1.0))


def fay_herriot(direct: np.ndarray, sampling_variance: np.ndarray, covariates: np.ndarray | None = None) -> FayHerriotResult:
    """Fit the Fay-Herriot model and return EBLUPs with their MSE.

    ``covariates`` is an (areas x p) matrix; by default an intercept only.

    >>> r = fay_herriot(np.array([70.0, 80.0, 90.0, 85.0]), np.array([4.0, 4.0, 400.0, 4.0]))
    >>> bool(abs(r.estimate[2] - r.synthetic[2]) < abs(90.0 - r.synthetic[2]))
    True
    """
    y = np.asarray(direct, dtype=float)
    psi = np.asarray(sampling_variance, dtype=float)
    m = len(y)
    X = np.ones((m, 1)) if covariates is None else np.asarray(covariates, dtype=float).reshape(m, -1)
    p = X.shape[1]
    if m <= p + 1:
        raise AnalysisError(f"small areas: {m} areas are too few for a model with {p} coefficient(s)")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(psi)) and np.all(psi > 0)):
        raise AnalysisError("small areas: estimates and sampling variances must be finite, variances positive")

    def parts(a: float):
        vinv = 1.0 / (a + psi)
        xtvx = X.T @ (X * vinv[:, None])
        xtvx_inv = np.linalg.inv(xtvx)
        beta = xtvx_inv @ (X.T @ (vinv * y))
        resid = y - X @ beta
        return vinv, xtvx, xtvx_inv, beta, resid

    def negative_adjusted_reml(log_a: float) -> float:
        a = float(np.exp(log_a))
        vinv, xtvx, _, _, resid = parts(a)
        _, logdet = np.linalg.slogdet(xtvx)
        reml = -0.5 * (-np.sum(np.log(vinv)) + logdet + float(np.sum(vinv * resid**2)))
        return -(reml + np.log(a))

    spread = float(np.var(y)) + float(np.max(psi))
    fit = optimize.minimize_scalar(
        negative_adjusted_reml, bounds=(np.log(spread * 1e-10), np.log(spread * 10)), method="bounded",
        options={"xatol": 1e-10},
    )
    a = float(np.exp(fit.x))
    vinv, _, xtvx_inv, beta, _ = parts(a)
    synthetic = X @ beta
    gamma = a / (a + psi)
    estimate = synthetic + gamma * (y - synthetic)
    var_a = 2.0 / float(np.sum(vinv**2))
    g1 = gamma * psi
    g2 = (1 - gamma) ** 2 * np.einsum("ij,jk,ik->i", X, xtvx_inv, X)
    g3 = psi**2 * vinv**3 * var_a
    return FayHerriotResult(estimate, g1 + g2 + 2 * g3, gamma, psi, synthetic, a, beta)

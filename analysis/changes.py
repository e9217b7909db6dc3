"""Changes between two survey waves: the difference, its 95% interval, a p-value and a mark that
controls the false discovery rate when many areas (or area x topic cells) are marked at once.

Two waves ask different respondents, so they are independent samples::

    change = estimate_after - estimate_before
    SE     = sqrt(var_before + var_after)
    95% interval  change -/+ 1.96 SE,   z = change / SE,   p = 2 (1 - Phi(|z|))   (two-sided)

Which estimate and which variance (the ``basis`` column):

* ``eb`` - a community with fewer than ``min_n`` (30) answers in either wave is compared on its
  shrunk (empirical Bayes, Fay-Herriot) estimates with their MSEs: that is the estimate the pages
  show for a small community, and a direct estimate of a handful of answers is too noisy to mark.
  Shrinkage pulls both waves towards their model means, so a small community's change is
  understated (conservative), and the MSE-based test treats the two shrunk estimates as
  independent, which holds for their sampling errors but not exactly for the fitted models.
* ``direct_smoothed`` - direct estimates where one wave has fewer than ``min_n`` answers (or a
  standard error of zero) and no shrunk estimate is given (topic cells): that wave's variance is
  ``kappa / n`` with ``kappa`` the median of ``se^2 * n`` over the rows of the same wave (and
  group, e.g. topic) that have ``min_n`` answers or more, as :mod:`analysis.smallarea` smooths
  sampling variances. Three equal answers have a standard error of 0 and would otherwise make any
  change "significant".
* ``direct`` - direct estimates and their linearized standard errors.

Marks: the p-values of one *family* (e.g. all communities of the city in one comparison, or all
community x topic cells) get Benjamini-Hochberg adjusted p-values (q-values, as R's
``p.adjust(p, method = "BH")``; missing p-values are left out of the count), and a change is
marked significant when ``q <= fdr`` (0.05): among the changes marked at once, at most about 5%
are expected to be false discoveries, however many areas are compared.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from analysis.estimates import Z95
from analysis.rules import MIN_N  # fewer answers and a community's shown estimate is the shrunk one

FDR = 0.05
BASES = ("direct", "direct_smoothed", "eb")


def change_test(before, var_before, after, var_after) -> dict[str, np.ndarray]:
    """Return change, se, ci_low, ci_high, z and the two-sided p-value for independent samples.

    A change with a variance of zero has p = 0 (p = 1 when the change is zero as well); a
    missing variance gives a missing p.

    >>> out = change_test([80.0, 75.0], [1.0, 4.0], [83.0, 74.2], [3.0, 5.0])
    >>> out["change"].round(2).tolist(), out["se"].round(3).tolist()
    ([3.0, -0.8], [2.0, 3.0])
    >>> out["ci_low"].round(2).tolist(), out["ci_high"].round(2).tolist()
    ([-0.92, -6.68], [6.92, 5.08])
    >>> out["p_value"].round(4).tolist()
    [0.1336, 0.7897]
    """
    before, var_before, after, var_after = (np.asarray(a, dtype=float) for a in (before, var_before, after, var_after))
    change = after - before
    se = np.sqrt(var_before + var_after)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, change / np.where(se > 0, se, 1.0), np.where(change == 0, 0.0, np.sign(change) * np.inf))
    z = np.where(np.isnan(se), np.nan, z)
    p = 2.0 * norm.sf(np.abs(z))
    return {"change": change, "se": se, "ci_low": change - Z95 * se, "ci_high": change + Z95 * se, "z": z, "p_value": p}


def bh_adjust(p_values) -> np.ndarray:
    """Return Benjamini-Hochberg adjusted p-values (q-values), as R's ``p.adjust(p, "BH")``.

    ``q_(i) = min over j >= i of m p_(j) / j`` (p sorted ascending, m the number of p-values that
    are not missing), capped at 1; missing p-values stay missing.

    >>> bh_adjust([0.01, 0.04, 0.03, 0.005]).round(6).tolist()
    [0.02, 0.04, 0.04, 0.02]
    >>> bh_adjust([0.01, 0.04, 0.03, 0.005, float("nan"), 0.2]).round(6).tolist()
    [0.025, 0.05, 0.05, 0.025, nan, 0.2]
    """
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    m = len(present)
    if m == 0:
        return q
    order = present[np.argsort(p[present], kind="stable")]
    ranked = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    return q


def change_variances(se, n, min_n: int = MIN_N, groups=None) -> tuple[np.ndarray, np.ndarray]:
    """Return (variance, smoothed) per row: ``se^2``, or ``kappa / n`` for rows with fewer than
    ``min_n`` answers or a zero standard error (``kappa`` per group; rule in the module docstring).

    Rows with no answer, or whose group has no row to smooth from, get a missing variance.

    >>> var, smoothed = change_variances([1.0, 0.0, 2.0], [100, 3, 50])
    >>> var.round(4).tolist(), smoothed.tolist()
    ([1.0, 50.0, 4.0], [False, True, False])
    """
    se, n = np.asarray(se, dtype=float), np.asarray(n, dtype=float)
    groups = np.zeros(len(se), dtype=int) if groups is None else pd.factorize(pd.Series(np.asarray(groups, dtype=object)))[0]
    trusted = (n >= min_n) & (se > 0)
    variance = np.where(trusted, se**2, np.nan)
    smoothed = ~trusted
    for indices in pd.Series(np.arange(len(se))).groupby(groups).indices.values():
        rows = np.zeros(len(se), dtype=bool)
        rows[indices] = True
        source = rows & trusted
        if not source.any():
            source = rows & (n >= 2) & (se > 0)
        if not source.any():
            continue
        kappa = float(np.median(se[source] ** 2 * n[source]))
        fill = rows & ~trusted & (n > 0)
        variance[fill] = kappa / n[fill]
    return variance, smoothed & ~np.isnan(variance)


def compare(
    before: pd.DataFrame,
    after: pd.DataFrame,
    keys: Sequence[str] = ("domain",),
    *,
    family: Sequence[str] = (),
    smooth_by: Sequence[str] = (),
    min_n: int = MIN_N,
    fdr: float = FDR,
) -> pd.DataFrame:
    """Compare two waves' tables, one row per key present in both, with q-values per family.

    Each table has the ``keys`` and ``n``, ``estimate``, ``se``; with ``eb_estimate`` and
    ``eb_mse`` (both waves, not missing) a row with fewer than ``min_n`` answers in either wave is
    compared on the shrunk estimates. ``family`` names the columns whose groups are each one
    family for the Benjamini-Hochberg adjustment (none: the whole table is one family);
    ``smooth_by`` the columns whose groups share the smoothing constant of small rows' variances.

    Returns the keys, n_before, n_after, estimate_before, estimate_after, basis, change, se,
    ci_low, ci_high, p_value, q_value and significant (q <= ``fdr``; False when untested).

    >>> before = pd.DataFrame({"domain": ["A", "B"], "n": [200, 150], "estimate": [78.0, 85.0], "se": [1.0, 1.2]})
    >>> after = pd.DataFrame({"domain": ["A", "B"], "n": [210, 160], "estimate": [86.0, 84.5], "se": [1.0, 1.1]})
    >>> out = compare(before, after)
    >>> out[["domain", "basis", "change", "significant"]].to_dict("records")
    [{'domain': 'A', 'basis': 'direct', 'change': 8.0, 'significant': True}, {'domain': 'B', 'basis': 'direct', 'change': -0.5, 'significant': False}]
    """
    keys, family, smooth_by = list(keys), list(family), list(smooth_by)
    sides = []
    for table in (before, after):
        table = table.reset_index(drop=True)
        groups = table.groupby(smooth_by, sort=False, dropna=False).ngroup().to_numpy() if smooth_by else None
        variance, smoothed = change_variances(table["se"], table["n"], min_n, groups)
        side = table[keys].copy()
        side["n"] = table["n"].to_numpy(dtype=float)
        side["estimate"] = table["estimate"].to_numpy(dtype=float)
        side["variance"] = variance
        side["smoothed"] = smoothed
        has_eb = {"eb_estimate", "eb_mse"} <= set(table.columns)
        side["eb_estimate"] = table["eb_estimate"].to_numpy(dtype=float) if has_eb else np.nan
        side["eb_mse"] = table["eb_mse"].to_numpy(dtype=float) if has_eb else np.nan
        sides.append(side)
    both = sides[0].merge(sides[1], on=keys, suffixes=("_before", "_after"), how="inner")
    small = (both["n_before"] < min_n) | (both["n_after"] < min_n)
    eb_known = both[["eb_estimate_before", "eb_mse_before", "eb_estimate_after", "eb_mse_after"]].notna().all(axis=1)
    use_eb = (small & eb_known).to_numpy()
    estimate_before = np.where(use_eb, both["eb_estimate_before"], both["estimate_before"])
    estimate_after = np.where(use_eb, both["eb_estimate_after"], both["estimate_after"])
    var_before = np.where(use_eb, both["eb_mse_before"], both["variance_before"])
    var_after = np.where(use_eb, both["eb_mse_after"], both["variance_after"])
    smoothed = (both["smoothed_before"] | both["smoothed_after"]).to_numpy(dtype=bool)
    basis = np.where(use_eb, "eb", np.where(smoothed, "direct_smoothed", "direct"))
    test = change_test(estimate_before, var_before, estimate_after, var_after)
    out = both[keys].copy()
    out["n_before"] = both["n_before"].astype(int)
    out["n_after"] = both["n_after"].astype(int)
    out["estimate_before"] = estimate_before
    out["estimate_after"] = estimate_after
    out["basis"] = basis
    for column in ("change", "se", "ci_low", "ci_high", "p_value"):
        out[column] = test[column]
    if family:
        q = np.full(len(out), np.nan)
        p = out["p_value"].to_numpy()
        for rows in out.groupby(family, sort=False, dropna=False).indices.values():
            q[rows] = bh_adjust(p[rows])
        out["q_value"] = q
    else:
        out["q_value"] = bh_adjust(out["p_value"].to_numpy())
    out["significant"] = (out["q_value"] <= fdr).to_numpy(dtype=bool)
    return out

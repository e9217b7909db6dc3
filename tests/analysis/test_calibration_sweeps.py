"""The calibration sweeps with the first margin folded into the others equal R's sweeps done one by one."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.estimates import CALIBRATION_SWEEPS, _CalibrationOperator


def operator(rng: np.random.Generator, levels: list[int], cells: int) -> _CalibrationOperator:
    op = object.__new__(_CalibrationOperator)
    op.codes = [rng.integers(0, L, cells) for L in levels]
    for k, L in enumerate(levels):  # every category present
        op.codes[k][:L] = np.arange(L)
    op.levels = levels
    counts = rng.integers(1, 40, cells).astype(float)
    op.category_counts = [np.bincount(c, weights=counts, minlength=L) for c, L in zip(op.codes, levels)]
    op.cross = [[op._crosstab(k, m, counts) for m in range(len(levels))] for k in range(len(levels))]
    return op


def sweeps_one_by_one(op: _CalibrationOperator, dom, cell, u0_sum, n_domains: int) -> list[np.ndarray]:
    """R's order, literally: for each sweep and margin m, coef_m += (start_m - sum_k coef_k x cross_km) / counts_m."""
    margins = range(len(op.codes))
    start = [np.zeros((n_domains, op.levels[m])) for m in margins]
    for m in margins:
        np.add.at(start[m], (dom, op.codes[m][cell]), u0_sum)
    coef = [np.zeros((n_domains, L)) for L in op.levels]
    for _ in range(CALIBRATION_SWEEPS):
        for m in margins:
            current = start[m].copy()
            for k in margins:
                table = op.cross[k][m]
                table = np.diag(table) if np.ndim(table) == 1 else (table.toarray() if hasattr(table, "toarray") else table)
                current -= coef[k] @ table
            coef[m] += current / op.category_counts[m]
    return coef


@pytest.mark.parametrize("levels", [[40, 2, 4], [3, 60], [7], [2, 5, 3, 4], [1200, 2]])
def test_folded_sweeps_equal_the_sweeps_one_by_one(levels):
    rng = np.random.default_rng(sum(levels))
    cells, n_domains, entries = 3 * max(levels), 30, 400
    op = operator(rng, levels, cells)
    dom = rng.integers(0, n_domains, entries)
    cell = rng.integers(0, cells, entries)
    u0_sum = rng.normal(3, 2, entries)
    folded = op.coefficients(dom, cell, u0_sum, n_domains)
    literal = sweeps_one_by_one(op, dom, cell, u0_sum, n_domains)
    for got, want in zip(folded, literal):
        scale = np.abs(want).max()
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-11 * scale)

"""A wave's figures at every area level above the unit, per item, and per channel.

The server stores, beside the unit-level table of :mod:`analysis.pipeline`, the direct estimates
of the upper levels (street, district, city) with their flags, item tables for every level
(topic scores of the unit level shrunk like the scores themselves) and satisfaction by channel.
Everything here works on the raked design and per-cell sufficient statistics; the caller only
stores what comes back.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.estimates import domain_means, stats_from_frame
from analysis.pipeline import WaveAnalysis, one_blas_thread, rate_intervals, respondent_df, shrink, split_keys
from analysis.points import assess_direct

AREA_COLUMNS = ["domain", "n", "estimate", "se", "ci_low", "ci_high", "n_eff", "population", "prob_below_80", "status"]


@one_blas_thread
def upper_levels(
    analysis: WaveAnalysis, cells: pd.DataFrame, hierarchy: pd.DataFrame, levels: tuple[str, ...]
) -> dict[str, pd.DataFrame]:
    """Return, per upper level, direct estimates with flags and the points at stake summed up.

    ``cells`` are the per-cell statistics the analysis ran on, with a column per level;
    ``hierarchy`` maps each unit (index) to its area code at every level.
    """
    design = analysis.rake.design
    base = analysis.domains.set_index("domain")
    out = {}
    for level in levels:
        table = domain_means(design, stats_from_frame(design, cells.assign(domain=cells[level])))
        table = assess_direct(table.assign(population=table["weight_sum"]))
        stake = base.groupby(hierarchy[level].reindex(base.index))[["points_at_stake", "share_of_lost"]].sum()
        table["points_at_stake"] = stake["points_at_stake"].reindex(table["domain"]).to_numpy()
        table["share_of_lost"] = stake["share_of_lost"].reindex(table["domain"]).to_numpy()
        out[level] = table
    return out


@one_blas_thread
def item_levels(
    analysis: WaveAnalysis,
    item_cells: pd.DataFrame,
    cells: pd.DataFrame,
    hierarchy: pd.DataFrame,
    unit: str,
    levels: tuple[str, ...],
    rates: list[str],
    model_by: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Return item x area tables (item, domain, n, estimate, se, ci_low, ci_high, eb_estimate) per level.

    Unit-level topic scores are shrunk (Fay-Herriot per item, with ``model_by`` group means);
    upper levels keep their direct estimates. Rate items get the logit interval.
    """
    design = analysis.rake.design
    out = {}
    items = analysis.items
    if items.empty:
        out[unit] = items.assign(eb_estimate=[])
    else:
        groups = hierarchy[model_by] if model_by else None
        out[unit] = pd.concat(
            [shrink(part, groups=None if groups is None else groups.reindex(part["domain"]).to_numpy())[0]
             for _, part in items.groupby("item", sort=False)],
            ignore_index=True,
        )
    for level in levels:
        keyed = item_cells.assign(domain=item_cells["item"] + "\x1f" + item_cells[level])
        table = split_keys(domain_means(design, stats_from_frame(design, keyed)), first="item")
        everyone = respondent_df(design, stats_from_frame(design, cells.assign(domain=cells[level])))
        table = rate_intervals(table, rates, cells.groupby(level)["n"].sum(), everyone)
        table["eb_estimate"] = table["estimate"]
        out[level] = table
    return out


@one_blas_thread
def channel_estimates(analysis: WaveAnalysis, cells: pd.DataFrame, levels: tuple[str, ...]) -> dict[str, dict[str, dict]]:
    """Return satisfaction by channel (QR, school, paper) for every area of ``levels``.

    The same weights as everything else; a channel that reaches different people shows here as
    a different score (channel bias). Missing intervals are None.
    """
    design = analysis.rake.design
    out: dict[str, dict[str, dict]] = {}
    for level in levels:
        keyed = cells.assign(domain=cells[level] + "\x1f" + cells["channel"])
        table = split_keys(domain_means(design, stats_from_frame(design, keyed)), first="area")
        for row in table.itertuples():
            out.setdefault(row.area, {})[row.domain] = {
                "n": int(row.n), "estimate": float(row.estimate), "ci_low": _number(row.ci_low), "ci_high": _number(row.ci_high),
            }
    return out


def _number(value) -> float | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)

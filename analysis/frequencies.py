"""Per-question results of a raked design: choice shares, numbers and two-way tables with the Rao-Scott test.

Every number equals R's ``survey`` package on the same design (``rake(svydesign(ids=, strata=,
fpc=, weights=, nest=TRUE), ...)``; tests/analysis/r/frequencies.R makes the reference):

* **Choice shares.** A choice's share in a domain is the weighted mean of its 0/1 indicator among
  the domain's respondents who answered the item: ``svymean(~I(x == c), subset(design, d ==
  value), na.rm = TRUE)``, equal to a row of ``svyby(~factor(x), ~d, design, svymean, na.rm =
  TRUE)``. A multiple choice (codes separated by spaces) gives one share per choice, among the
  respondents who answered it, so its shares may add up to more than 1. The interval is R's
  ``svyciprop(method = "logit")`` with its default ``df = degf(subset)`` (the domain's PSUs minus
  strata, counting every respondent of the domain, whether they answered the item or not), by
  :func:`analysis.estimates.proportion_interval` (which says what happens at 0 and 1). ``n``
  counts the respondents who chose it, ``answered`` those who answered the item.
* **Numbers.** The mean is ``svymean(~x, subset, na.rm = TRUE)`` with a Student t interval on the
  design df of the respondents who answered. Quantiles are ``svyquantile(~x, subset, p, na.rm =
  TRUE, ci = TRUE)`` with its defaults: ``qrule = "math"`` (the smallest answer whose weighted
  cumulative share reaches ``p``; R's rule, :func:`weighted_quantile`) and Woodruff's interval
  (``interval.type = "mean"``): the share ``m`` of answers at or below the quantile gets the
  interval ``m -/+ t(df) se(m)``, whose ends are turned back into answers by the same rule
  (none where they leave [0, 1]); the SE is the interval's width over ``2 t(df)``, with ``df``
  the design df of the respondents who answered (R's ``degf`` after ``na.rm``).
* **Two-way tables.** Cell shares of the respondents who answered both items (and their
  covariance: ``svymean`` of the cells' indicators) give R's ``svychisq(~x + y, design,
  statistic = "F")``: Pearson's X^2 of the weighted table divided by the trace of the design
  effect matrix ``Delta = (C' D^-1 C)^-1 C' D^-1 V D^-1 C`` (``C`` the interaction contrasts
  orthogonal to the main effects, ``D`` the cell shares, ``V`` their covariance), referred to F
  with ``ndf = d0 = tr(Delta)^2 / tr(Delta^2)`` and ``ddf = d0 nu`` (Rao-Scott second order).
  ``nu`` is ``degf`` of the (domain's) design: PSUs minus strata. For a domain this is the
  domain's own, as survey's current ``svychisq`` takes it (``nu <- degf(design)``); survey 4.1.1
  took the whole design's PSUs there, which gives the same statistic and ``ndf`` and a larger
  ``ddf``. A row or column with no answer in the domain is left out of its table (R gives NaN).

The covariance of the cell shares comes from the variances that :func:`domain_means` computes
(R's calibration residuals and multistage variance, on per-cell statistics): the cells' indicators
and the indicators of every pair of cells are means of the same respondents, and
``cov(p_i, p_j) = (var(p_i + p_j) - var(p_i) - var(p_j)) / 2``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import f as f_distribution
from scipy.stats import t as t_distribution

from analysis.errors import AnalysisError
from analysis.estimates import DomainStats, domain_df, domain_means, domain_stats, proportion_interval
from analysis.pipeline import ALL, many_domain_stats, refuse_reserved
from analysis.raking import Design

KINDS = ("choice", "multi", "number")
QUANTILES = (0.25, 0.5, 0.75)
SHARE_COLUMNS = ["item", "domain", "choice", "share", "se", "ci_low", "ci_high", "n", "answered", "df"]
NUMBER_COLUMNS = ["item", "domain", "statistic", "estimate", "se", "ci_low", "ci_high", "n", "df"]
TABLE_COLUMNS = ["domain", "row", "col", "n", "share", "se", "ci_low", "ci_high", "row_share", "row_se"]
TEST_COLUMNS = ["domain", "rows", "cols", "statistic", "ndf", "ddf", "p", "chisq", "n"]


def _blank(values: pd.Series) -> np.ndarray:
    text = values.astype("string").str.strip()
    return (text.isna() | (text == "")).to_numpy(dtype=bool)


def _code_order(codes) -> list[str]:
    """Sort choice codes: whole numbers by value (1, 2, 10), then the rest as text."""
    def key(code: str) -> tuple[int, float, str]:
        return (0, float(code), code) if code.lstrip("-").isdigit() else (1, 0.0, code)
    return sorted(set(codes), key=key)


def choice_matrix(values: pd.Series, kind: str = "choice", choices: Sequence[str] | None = None
                  ) -> tuple[list[str], np.ndarray]:
    """Return the choices and a respondents x choices matrix of 0/1 indicators (NaN rows: not answered).

    ``kind`` is ``choice`` (one code per answer) or ``multi`` (codes separated by spaces).
    ``choices`` fixes their order (the questionnaire's); codes not among them follow, sorted.

    >>> choice_matrix(pd.Series(["1 3", "", "2"]), "multi")[1].tolist()
    [[1.0, 0.0, 1.0], [nan, nan, nan], [0.0, 1.0, 0.0]]
    """
    if kind not in ("choice", "multi"):
        raise AnalysisError(f"choice_matrix: kind must be choice or multi, not {kind!r}")
    blank = _blank(values)
    text = values.astype("string").fillna("").str.strip().to_numpy(dtype=object)
    answers = [str(v).split() if kind == "multi" else [str(v)] for v in text]
    found = {code for answer, empty in zip(answers, blank) if not empty for code in answer}
    order = list(choices or [])
    order += [c for c in _code_order(found) if c not in set(order)]
    index = {code: k for k, code in enumerate(order)}
    matrix = np.zeros((len(values), len(order)))
    for row, (answer, empty) in enumerate(zip(answers, blank)):
        if empty:
            matrix[row] = np.nan
        else:
            matrix[row, [index[c] for c in answer]] = 1.0
    return order, matrix


def _label_sets(labels: np.ndarray | None, n: int) -> list[np.ndarray]:
    """Return the domain labelings to estimate on: the whole sample (``ALL``), then the domains."""
    sets = [np.full(n, ALL, dtype=object)]
    if labels is not None:
        sets.append(np.asarray(labels).astype(str))
    return sets


def _stack(parts: list[DomainStats]) -> DomainStats:
    offsets = np.cumsum([0] + [len(p.domains) for p in parts[:-1]])
    return DomainStats(
        domains=np.concatenate([p.domains for p in parts]),
        domain=np.concatenate([p.domain + o for p, o in zip(parts, offsets)]),
        cell=np.concatenate([p.cell for p in parts]),
        n=np.concatenate([p.n for p in parts]),
        total=np.concatenate([p.total for p in parts]),
        total_sq=np.concatenate([p.total_sq for p in parts]),
    )


def _split(keys) -> tuple[list[str], list[str]]:
    heads, tails = [], []
    for key in keys:
        head, _, tail = str(key).partition("\x1f")
        heads.append(head)
        tails.append(tail)
    return heads, tails


def _respondent_df(design: Design, label_sets: list[np.ndarray]) -> pd.Series:
    """Return R's ``degf(subset(design, domain))`` per domain: its PSUs minus strata, every respondent counted."""
    out = []
    for labels in label_sets:
        stats = domain_stats(design, labels, np.zeros(len(labels)))
        out.append(pd.Series(domain_df(design, stats), index=pd.Index(stats.domains).astype(str)))
    return pd.concat(out)


def _check(design: Design, length: int, labels: np.ndarray | None) -> None:
    if design.respondent_cell is None:
        raise AnalysisError("frequencies need a design built from respondent rows")
    if length != len(design.respondent_cell) or (labels is not None and len(labels) != length):
        raise AnalysisError("frequencies: answers, domains and design must have one entry per respondent")
    if labels is not None:
        refuse_reserved(labels, "domain")


def choice_shares(
    design: Design,
    values: pd.Series,
    labels: np.ndarray | pd.Series | None = None,
    *,
    kind: str = "choice",
    choices: Sequence[str] | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Return each choice's share per domain (and for the whole sample, domain ``ALL``).

    ``values`` holds one answer per respondent of the design, in its order: a choice code, or
    codes separated by spaces for ``kind="multi"``; blank is no answer. Columns: domain, choice,
    share, se, ci_low, ci_high, n (chose it), answered (answered the item), df (the interval's).
    The rules are in the module docstring.

    >>> from analysis.raking import rake
    >>> d = pd.DataFrame({"sex": ["M", "F", "F", "M"], "q": ["a", "b", "a", ""]})
    >>> m = pd.DataFrame({"variable": ["sex", "sex"], "category": ["M", "F"], "total": [60, 40]})
    >>> table = choice_shares(rake(d, m).design, d["q"])
    >>> table[["choice", "share", "n", "answered"]].round(2).values.tolist()
    [['a', 0.71, 2, 3], ['b', 0.29, 1, 3]]
    """
    labels = None if labels is None else np.asarray(labels).astype(str)
    _check(design, len(values), labels)
    table, order = _shares(design, values, _label_sets(labels, len(values)), kind, choices, level)
    return _ordered(table, order, labels)[SHARE_COLUMNS[1:]]


def _shares(design: Design, values: pd.Series, label_sets: list[np.ndarray], kind: str,
            choices: Sequence[str] | None, level: float) -> tuple[pd.DataFrame, list[str]]:
    order, matrix = choice_matrix(values, kind, choices)
    if not order:
        return pd.DataFrame(columns=SHARE_COLUMNS[1:]), order
    frame = pd.DataFrame(matrix, columns=[str(k) for k in range(len(order))])
    stats = _stack([many_domain_stats(design, lab, frame) for lab in label_sets])
    table = domain_means(design, stats, bounds=None)
    column, domain = _split(table["domain"])
    table = table.assign(choice=[order[int(c)] for c in column], domain=domain)
    chosen = []
    for lab in label_sets:
        counts = pd.DataFrame(np.nan_to_num(matrix), columns=order).groupby(lab).sum()
        chosen.append(counts.stack().rename("n"))
    table = table.rename(columns={"n": "answered"}).join(pd.concat(chosen).astype(np.int64), on=["domain", "choice"])
    everyone = _respondent_df(design, label_sets)
    df = everyone.reindex(table["domain"]).to_numpy(dtype=float)
    low, high = proportion_interval(table["estimate"].to_numpy(), table["se"].to_numpy(),
                                    df + 1, table["n_eff"].to_numpy(), level, df=df)
    return table.assign(share=table["estimate"], ci_low=low, ci_high=high, df=df), order


def _ordered(table: pd.DataFrame, order: list[str], labels: np.ndarray | None) -> pd.DataFrame:
    """Sort rows: the whole sample first, then domains, each with its choices in their order."""
    domains = [ALL] + (sorted(set(labels)) if labels is not None else [])
    table = table.assign(_d=pd.Categorical(table["domain"], domains, ordered=True),
                         _c=pd.Categorical(table["choice"], order, ordered=True))
    return table.sort_values(["_d", "_c"], kind="stable").drop(columns=["_d", "_c"]).reset_index(drop=True)


def weighted_quantile(x: np.ndarray, w: np.ndarray, p: float) -> float:
    """Return R's ``qrule_math`` quantile: the smallest ``x`` whose weighted cumulative share reaches ``p``.

    As R: answers sorted (ties in their order), ``pos`` the last whose cumulative weight is at
    most ``p`` times the total (the first when none is), and ``x[pos]`` if that cumulative share
    is exactly ``p``, else the next answer.

    >>> weighted_quantile(np.array([3.0, 1.0, 2.0, 4.0]), np.ones(4), 0.5), weighted_quantile(np.array([3.0, 1.0, 2.0]), np.ones(3), 0.5)
    (2.0, 2.0)
    """
    keep = w != 0
    x, w = x[keep], w[keep]
    order = np.argsort(x, kind="stable")
    x, cumw = x[order], np.cumsum(w[order])
    total = float(np.sum(w))
    below = np.flatnonzero(cumw <= p * total)
    pos = int(below[-1]) if len(below) else 0
    after = pos if pos == len(x) - 1 else pos + 1
    return float(x[pos] if p - cumw[pos] / total == 0 else x[after])


def number_summary(
    design: Design,
    values: pd.Series | np.ndarray,
    labels: np.ndarray | pd.Series | None = None,
    *,
    quantiles: Sequence[float] = QUANTILES,
    level: float = 0.95,
) -> pd.DataFrame:
    """Return the mean and quantiles of a number per domain (and ``ALL``), with SEs and intervals.

    Columns: domain, statistic (``mean``, ``median`` for 0.5, else ``p25``-style names),
    estimate, se, ci_low, ci_high, n (answered), df. Domains with fewer than two answers are left
    out. The rules are in the module docstring.
    """
    labels = None if labels is None else np.asarray(labels).astype(str)
    x = pd.to_numeric(pd.Series(np.asarray(values)), errors="coerce").to_numpy(dtype=float)
    _check(design, len(x), labels)
    if any(not 0 < p < 1 for p in quantiles):
        raise AnalysisError("quantiles must lie strictly between 0 and 1")
    label_sets = _label_sets(labels, len(x))
    answered = ~np.isnan(x)
    w = design.respondent_weights()
    tail = (1 - level) / 2
    rows: list[dict] = []
    means = domain_means(design, _stack([domain_stats(design, lab, x) for lab in label_sets]), bounds=None)
    means = means[means["n"] >= 2]
    for _, row in means.iterrows():
        rows.append({"domain": row["domain"], "statistic": "mean", "estimate": row["estimate"], "se": row["se"],
                     "ci_low": row["ci_low"], "ci_high": row["ci_high"], "n": int(row["n"]), "df": row["df"]})
    names = [_quantile_name(p) for p in quantiles]
    kept = set(means["domain"])
    # each domain's quantiles, then the share at or below each: one indicator column per quantile
    for lab in label_sets:
        estimates: dict[tuple[str, str], float] = {}
        below = np.full((len(x), len(quantiles)), np.nan)
        for domain in np.unique(lab[answered]):
            if domain not in kept:
                continue
            inside = (lab == domain) & answered
            for k, p in enumerate(quantiles):
                q = weighted_quantile(x[inside], w[inside], p)
                estimates[domain, names[k]] = q
                below[inside, k] = (x[inside] <= q).astype(float)
        shares = domain_means(design, many_domain_stats(design, lab, pd.DataFrame(below, columns=names)), bounds=None)
        for (statistic, where), share in zip(zip(*_split(shares["domain"])), shares.itertuples()):
            if (where, statistic) not in estimates:
                continue
            inside = (lab == where) & answered
            crit = float(t_distribution.ppf(1 - tail, share.df)) if share.df >= 1 else np.nan
            ends = [np.nan if not 0 <= end <= 1 else weighted_quantile(x[inside], w[inside], end)
                    for end in (share.estimate - crit * share.se, share.estimate + crit * share.se)]
            rows.append({"domain": where, "statistic": statistic, "estimate": estimates[where, statistic],
                         "se": (ends[1] - ends[0]) / (2 * crit), "ci_low": ends[0], "ci_high": ends[1],
                         "n": int(share.n), "df": float(share.df)})
    table = pd.DataFrame(rows, columns=NUMBER_COLUMNS[1:])
    domains = [ALL] + (sorted(set(labels)) if labels is not None else [])
    statistics = ["mean", *names]
    table = table.assign(_d=pd.Categorical(table["domain"], domains, ordered=True),
                         _s=pd.Categorical(table["statistic"], statistics, ordered=True))
    return table.sort_values(["_d", "_s"], kind="stable").drop(columns=["_d", "_s"]).reset_index(drop=True)


def _quantile_name(p: float) -> str:
    """Name a quantile: ``median`` for 0.5, else ``p`` and the percent (``p25``, ``p2.5``).

    >>> _quantile_name(0.5), _quantile_name(0.25), _quantile_name(0.025)
    ('median', 'p25', 'p2.5')
    """
    return "median" if p == 0.5 else f"p{100 * p:g}"


def crosstab(
    design: Design,
    rows: pd.Series,
    cols: pd.Series,
    labels: np.ndarray | pd.Series | None = None,
    *,
    level: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the weighted two-way table of two single-choice items and its Rao-Scott F test per domain.

    The table has one row per (domain, row choice, column choice): n, the cell's share of the
    respondents who answered both (se, logit interval), and the column choice's share within
    the row (``row_share``, ``row_se``). The test has one row per domain: R's ``svychisq(~rows +
    cols, design, statistic = "F")``: statistic, ndf, ddf, p, Pearson's ``chisq`` of the weighted
    table scaled to the ``n`` respondents who answered both. The rules are in the module docstring.
    """
    labels = None if labels is None else np.asarray(labels).astype(str)
    _check(design, len(rows), labels)
    if len(cols) != len(rows):
        raise AnalysisError("crosstab: the two items must have one answer per respondent")
    complete = ~_blank(rows) & ~_blank(cols)
    row_text = rows.astype("string").fillna("").str.strip().to_numpy(dtype=object)
    col_text = cols.astype("string").fillna("").str.strip().to_numpy(dtype=object)
    label_sets = _label_sets(labels, len(rows))
    everyone = _respondent_df(design, label_sets)
    w = design.respondent_weights()
    cells, tests = [], []
    for lab in label_sets:
        for domain in sorted(set(lab[complete])):
            inside = complete & (lab == domain)
            table, test = _domain_table(design, w, inside, row_text, col_text, float(everyone[domain]), level)
            cells.append(table.assign(domain=domain))
            tests.append({"domain": domain, **test})
    table = pd.concat(cells, ignore_index=True) if cells else pd.DataFrame(columns=TABLE_COLUMNS)
    within = np.where(complete, row_text, "").astype(str)
    row_sets = [np.char.add(np.char.add(lab.astype(str), "\x1e"), within) for lab in label_sets]
    by_row, _ = _shares(design, pd.Series(np.where(complete, col_text, "")), row_sets, "choice", None, level)
    by_row = by_row.assign(domain=by_row["domain"].str.partition("\x1e")[0],
                           row=by_row["domain"].str.partition("\x1e")[2])
    by_row = by_row.rename(columns={"choice": "col", "share": "row_share", "se": "row_se"})
    table = table.merge(by_row[["domain", "row", "col", "row_share", "row_se"]], on=["domain", "row", "col"],
                        how="left")
    return table[TABLE_COLUMNS], pd.DataFrame(tests, columns=[c for c in TEST_COLUMNS if c not in ("rows", "cols")])


def _domain_table(design: Design, w: np.ndarray, inside: np.ndarray, row_text: np.ndarray, col_text: np.ndarray,
                  nu: float, level: float) -> tuple[pd.DataFrame, dict]:
    """Return one domain's cells (shares with SEs) and its Rao-Scott test."""
    row_levels = _code_order(row_text[inside])
    col_levels = _code_order(col_text[inside])
    nr, nc = len(row_levels), len(col_levels)
    r_index = pd.Index(row_levels).get_indexer(row_text[inside])
    c_index = pd.Index(col_levels).get_indexer(col_text[inside])
    k = r_index + nr * c_index  # R's interaction(): rows vary fastest
    n_cells_table = nr * nc
    assert design.respondent_cell is not None  # _check
    cell = design.respondent_cell[inside]
    weight = w[inside]
    shares = np.bincount(k, weights=weight, minlength=n_cells_table) / weight.sum()
    counts = np.bincount(k, minlength=n_cells_table)
    covariance = _cell_covariance(design, cell, k, n_cells_table)
    se = np.sqrt(np.maximum(np.diag(covariance), 0.0))
    n_eff = weight.sum() ** 2 / np.sum(weight**2)
    low, high = proportion_interval(shares, se, np.full(n_cells_table, nu + 1), np.full(n_cells_table, n_eff),
                                    level, df=np.full(n_cells_table, nu))
    table = pd.DataFrame({"row": np.tile(row_levels, nc), "col": np.repeat(col_levels, nr), "n": counts,
                          "share": shares, "se": se, "ci_low": low, "ci_high": high})
    test = {"statistic": np.nan, "ndf": np.nan, "ddf": np.nan, "p": np.nan, "chisq": np.nan, "n": int(inside.sum())}
    if nr >= 2 and nc >= 2:
        test.update(rao_scott(shares, covariance, nr, nc, nu, int(inside.sum())))
    return table, test


def _cell_covariance(design: Design, cell: np.ndarray, k: np.ndarray, size: int) -> np.ndarray:
    """Return the covariance of the table's cell shares (the module docstring says how)."""
    n_design_cells = len(design.counts)
    counts = np.bincount(cell * size + k, minlength=n_design_cells * size).reshape(n_design_cells, size)
    present = np.flatnonzero(counts.sum(axis=1) > 0)
    counts = counts[present].astype(float)
    pairs = [(i, i) for i in range(size)] + [(i, j) for i in range(size) for j in range(i + 1, size)]
    incidence = np.zeros((size, len(pairs)))
    for p, (i, j) in enumerate(pairs):
        incidence[i, p] = incidence[j, p] = 1.0
    totals = counts @ incidence  # respondents per design cell whose answer lies in the pair's cells
    answered = counts.sum(axis=1)
    stats = DomainStats(
        domains=np.arange(len(pairs)).astype(str),
        domain=np.repeat(np.arange(len(pairs)), len(present)),
        cell=np.tile(present, len(pairs)),
        n=np.tile(answered, len(pairs)),
        total=totals.T.ravel(),
        total_sq=totals.T.ravel(),
    )
    result = domain_means(design, stats, bounds=None)
    variance = np.zeros(len(pairs))
    variance[result["domain"].astype(int).to_numpy()] = result["se"].to_numpy() ** 2
    covariance = np.diag(variance[:size])
    for p, (i, j) in enumerate(pairs[size:], start=size):
        covariance[i, j] = covariance[j, i] = (variance[p] - variance[i] - variance[j]) / 2
    return covariance


def rao_scott(shares: np.ndarray, covariance: np.ndarray, nr: int, nc: int, nu: float, n: int) -> dict:
    """Return R's ``svychisq(statistic = "F")`` from cell shares (rows varying fastest) and their covariance.

    ``nu`` is the design's degrees of freedom; ``n`` scales Pearson's X^2 (``chisq``) as R's
    ``svytable(Ntotal = N)`` does (it does not enter the F statistic).
    """
    table = shares.reshape(nc, nr).T  # rows x columns
    expected = np.outer(table.sum(axis=1), table.sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        chisq = float(np.sum((table - expected) ** 2 / expected))
    rows = np.tile(np.arange(nr), nc)
    cols = np.repeat(np.arange(nc), nr)
    main = np.column_stack([np.ones(nr * nc)] + [(rows == i).astype(float) for i in range(1, nr)]
                           + [(cols == j).astype(float) for j in range(1, nc)])
    interaction = np.column_stack([((rows == i) & (cols == j)).astype(float)
                                   for j in range(1, nc) for i in range(1, nr)])
    fitted = main @ np.linalg.lstsq(main, interaction, rcond=None)[0]
    contrasts = interaction - fitted
    inverse = np.where(shares == 0, 0.0, 1.0 / np.where(shares == 0, 1.0, shares))
    weighted = contrasts * inverse[:, None]
    denominator = contrasts.T @ weighted
    numerator = weighted.T @ covariance @ weighted
    delta = np.linalg.solve(denominator, numerator)
    trace = float(np.trace(delta))
    d0 = trace**2 / float(np.trace(delta @ delta))
    statistic = chisq / trace
    ddf = d0 * nu
    p = float(f_distribution.sf(statistic, d0, ddf)) if nu >= 1 else np.nan
    return {"statistic": statistic, "ndf": d0, "ddf": ddf, "p": p, "chisq": chisq * n}


def frequencies(
    design: Design,
    data: pd.DataFrame,
    items: dict[str, str],
    by: str | None = None,
    *,
    choices: dict[str, Sequence[str]] | None = None,
    quantiles: Sequence[float] = QUANTILES,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the choice shares and the number summaries of ``items`` ({column: kind}) per domain of ``by``.

    ``data`` holds the design's respondents in its order. Kinds: ``choice``, ``multi``,
    ``number``. ``choices`` gives an item's choice order (its questionnaire's). Returns (shares,
    numbers) with an ``item`` column first: see :func:`choice_shares` and :func:`number_summary`.
    """
    missing = [c for c in [*items, *([by] if by else [])] if c not in data.columns]
    if missing:
        raise AnalysisError(f"responses: missing column(s) {', '.join(missing)}")
    labels = None
    if by:
        if data[by].isna().any():
            raise AnalysisError(f"responses: {by} is blank on {int(data[by].isna().sum())} row(s)")
        labels = data[by].astype(str).to_numpy()
    shares, numbers = [], []
    for item, kind in items.items():
        if kind not in KINDS:
            raise AnalysisError(f"item {item}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if kind == "number":
            values = pd.to_numeric(data[item].where(~_blank(data[item])), errors="coerce")
            bad = values.isna() & ~_blank(data[item])
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise AnalysisError(f"responses: line {row + 2}: {item} = {data[item].iloc[row]!r} is not a number")
            numbers.append(number_summary(design, values, labels, quantiles=quantiles).assign(item=item))
        else:
            table = choice_shares(design, data[item], labels, kind=kind, choices=(choices or {}).get(item))
            shares.append(table.assign(item=item))
    share_table = pd.concat(shares, ignore_index=True)[SHARE_COLUMNS] if shares else pd.DataFrame(columns=SHARE_COLUMNS)
    number_table = (pd.concat(numbers, ignore_index=True)[NUMBER_COLUMNS] if numbers
                    else pd.DataFrame(columns=NUMBER_COLUMNS))
    return share_table, number_table

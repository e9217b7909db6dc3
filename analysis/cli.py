"""``survey-analysis``: the analysis for CSV files exported from any survey tool.

    survey-analysis estimate --responses R.csv --margins M.csv --by community \
        --items q01,q02,... --out OUT.csv [--strata district --cluster street+building --fpc N1+N2 --weights W]
    survey-analysis plan --responses R.csv --margins M.csv --by community --out PLAN.csv [--half-width 3]

    survey-analysis frequencies --responses R.csv --margins M.csv --items A,B [--multi C] [--numbers D \
        --numbers-out N.csv] [--by DOMAIN] [design options] --out F.csv
    survey-analysis crosstab --responses R.csv --margins M.csv --rows A --cols B [--by DOMAIN] \
        [design options] --out X.csv [--test-out T.csv]

``frequencies`` and ``crosstab`` are per-question results (:mod:`analysis.frequencies`): each
choice's weighted share with its SE, logit interval and n per domain (and ``ALL``); a multiple
choice (``--multi``: codes separated by spaces) one share per choice among those who answered;
numbers (``--numbers``) mean and quantiles; a two-way table with R's ``svychisq(statistic = "F")``
per domain. Every row of the responses file is a respondent and is raked (answers are codes as
exported, blank = no answer).

``plan`` is the fieldwork monitor (:mod:`analysis.fieldwork`): per domain the answers so far,
the answers still needed to decide its flag and for a 95% interval of +/- ``--half-width``
points, and the answers from each respondent group (the margin variables) short of its
population share, highest priority first.

The sampling design of the variance is R's ``svydesign(ids=~A+B, strata=~S, fpc=~F1+F2,
weights=~W, nest=TRUE)`` raked to the margins (``--cluster A+B --strata S --fpc F1+F2 --weights W``,
``--lonely-psu`` as R's ``survey.lonely.psu``): the residuals of the calibration are summed by
cluster and their variance taken within strata (with-replacement, times 1 - f with a finite
population correction; a second stage's within its PSUs). Without ``--weights`` base weights are
uniform; when strata were sampled at different rates, pass the base weights. Every interval uses
the design's degrees of freedom per domain (R's ``degf``); where that is 0 (a domain inside one PSU
per stratum) there is no interval and the output's ``variance_warning`` says ``single_psu``.

Item answers are on the 0-100 scale by default; ``--scale 1-5`` takes 1-5 ratings and maps them
by ``--scale-map``: by default the questionnaire's own scores (1 -> 20, 2 -> 40, 3 -> 60, 4 -> 80,
5 -> 100), or ``linear`` ((x - 1) * 25). A value outside the scale is refused with its line and
column. Respondent ids (``--id``, default ``respondent_id``) must be unique: repeats are refused
with their lines. Files are UTF-8 (with or without BOM);
``--encoding gbk`` reads GBK / GB18030 files as saved by Chinese Excel or WPS.

Bad input ends with one line on stderr and exit status 2; never a traceback.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from collections import defaultdict

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.fieldwork import TARGET_HALF_WIDTH, plan_fieldwork
from analysis.frequencies import QUANTILES, crosstab, frequencies
from analysis.pipeline import analyze, output_table
from analysis.raking import rake, restrict_margins
from analysis.rules import MIN_N

SCALES = {"0-100": (0.0, 100.0), "1-5": (1.0, 5.0)}
SCALE_MAPS = {
    # the bundled citizen questionnaire (forms/definitions/citizen-v1.xlsx) scores its choices so
    "questionnaire": {1.0: 20.0, 2.0: 40.0, 3.0: 60.0, 4.0: 80.0, 5.0: 100.0},
    "linear": {1.0: 0.0, 2.0: 25.0, 3.0: 50.0, 4.0: 75.0, 5.0: 100.0},
}
ENCODINGS = {"utf-8": "utf-8-sig", "gbk": "gb18030", "gb18030": "gb18030"}  # GB18030 reads every GBK file


def _read_csv(path: str, what: str, numeric: list[str] | None = None, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV as text; ``numeric`` columns are parsed as numbers when they all are."""
    if numeric:
        try:
            return _read_csv_as(path, what, defaultdict(lambda: str, {c: float for c in numeric}), encoding)
        except AnalysisError:
            raise
        except ValueError:
            pass  # some value is not a number: read as text so the message can name its line
    return _read_csv_as(path, what, str, encoding)


def _read_csv_as(path: str, what: str, dtype, encoding: str = "utf-8") -> pd.DataFrame:
    codec = ENCODINGS[encoding]
    if codec != "utf-8-sig" and _has_utf8_bom(path):
        codec = "utf-8-sig"  # a UTF-8 file (Excel's "CSV UTF-8") is read as such whatever --encoding says
    try:
        frame = pd.read_csv(path, dtype=dtype, keep_default_na=False, na_values=[""], encoding=codec)
    except FileNotFoundError:
        raise AnalysisError(f"{what}: file not found: {path}") from None
    except pd.errors.EmptyDataError:
        raise AnalysisError(f"{what}: {path} is empty") from None
    except UnicodeDecodeError:
        if codec == "utf-8-sig":
            raise AnalysisError(
                f"{what}: {path} is not UTF-8 text; save it as UTF-8 (Excel: Save As \"CSV UTF-8\"; WPS: "
                f"Save As CSV with UTF-8 encoding), or pass --encoding gbk for a file in the Chinese GBK encoding"
            ) from None
        raise AnalysisError(f"{what}: {path} is not GBK/GB18030 text; save it as UTF-8 and leave out --encoding") from None
    except pd.errors.ParserError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AnalysisError(f"{what}: cannot read {path}: {first_line}") from None
    except IsADirectoryError:
        raise AnalysisError(f"{what}: {path} is a folder, not a file") from None
    except OSError as exc:
        raise AnalysisError(f"{what}: cannot read {path}: {exc.strerror}") from None
    if frame.empty:
        raise AnalysisError(f"{what}: {path} has a header but no rows")
    frame.columns = [c.strip() for c in frame.columns]
    return frame


def _has_utf8_bom(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(3) == b"\xef\xbb\xbf"
    except OSError:
        return False  # pandas names the problem


def scale_mapping(text: str) -> dict[float, float]:
    """Return the 1-5 -> 0-100 mapping named by ``--scale-map``.

    ``questionnaire`` (default) is the bundled citizen questionnaire's choice scores (不满意 1 -> 20,
    不太满意 2 -> 40, 一般 3 -> 60, 满意 4 -> 80, 非常满意 5 -> 100); ``linear`` is (x - 1) * 25;
    or list every rating, ``1=0,2=25,3=50,4=75,5=100``.

    >>> scale_mapping("questionnaire")[4], scale_mapping("linear")[4], scale_mapping("1=0,2=30,3=60,4=85,5=100")[4]
    (80.0, 75.0, 85.0)
    """
    if text in SCALE_MAPS:
        return SCALE_MAPS[text]
    try:
        pairs = dict((float(k), float(v)) for k, v in (part.split("=") for part in text.split(",")))
    except ValueError:
        raise AnalysisError(f"--scale-map wants questionnaire, linear or 1=20,2=40,...,5=100; got {text!r}") from None
    if set(pairs) != {1.0, 2.0, 3.0, 4.0, 5.0} or not all(0 <= v <= 100 for v in pairs.values()):
        raise AnalysisError(f"--scale-map must give each rating 1 to 5 a score from 0 to 100; got {text!r}")
    return pairs


def _on_scale(frame: pd.DataFrame, items: list[str], path: str, scale: str, mapping: str = "questionnaire") -> None:
    """Refuse item values outside ``scale``; map 1-5 ratings onto 0-100 by ``mapping`` (:func:`scale_mapping`)."""
    low, high = SCALES[scale]
    for item in items:
        values = frame[item].to_numpy(dtype=float)
        bad = ~np.isnan(values) & ((values < low) | (values > high))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise AnalysisError(
                f"responses: {path} line {row + 2}: {item} = {values[row]:g} is outside the {scale} scale "
                f"({low:g} to {high:g}; see --scale)"
            )
    answered = frame[items].to_numpy(dtype=float)
    answered = answered[~np.isnan(answered)]
    if scale == "0-100" and len(answered) and np.isin(answered, [1, 2, 3, 4, 5]).all():
        raise AnalysisError(
            f"responses: {path}: every item value is 1, 2, 3, 4 or 5; for 1-5 ratings pass --scale 1-5 "
            "(mapped onto 0-100 by --scale-map, by default the questionnaire's scores 20, 40, 60, 80, 100)"
        )
    if scale == "1-5":
        table = scale_mapping(mapping)
        for item in items:
            values = frame[item].to_numpy(dtype=float)
            whole = np.isnan(values) | np.isin(values, list(table))
            if not whole.all():
                row = int(np.flatnonzero(~whole)[0])
                raise AnalysisError(
                    f"responses: {path} line {row + 2}: {item} = {values[row]:g} is not a whole rating 1 to 5 "
                    "(--scale 1-5 maps each rating to its score; see --scale-map)"
                )
            frame[item] = pd.Series(values).map(table).to_numpy(dtype=float)


def _numeric_items(frame: pd.DataFrame, items: list[str], path: str) -> None:
    for item in items:
        if item in frame.columns and pd.api.types.is_float_dtype(frame[item]):
            continue
        if item not in frame.columns:
            raise AnalysisError(f"responses: {path} has no column {item!r}")
        raw = frame[item].str.strip()
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna() & raw.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise AnalysisError(
                f"responses: {path} line {row + 2}: {item} = {raw.iloc[row]!r} is not a number (blank means don't know)"
            )
        frame[item] = values.astype(float)


def _unique_ids(frame: pd.DataFrame, args: argparse.Namespace) -> None:
    """Refuse respondent ids that appear more than once, naming their lines (``--id``)."""
    column = args.id or ("respondent_id" if "respondent_id" in frame.columns else None)
    if column is None:
        return
    if column not in frame.columns:
        raise AnalysisError(f"responses: {args.responses} has no column {column!r} for --id")
    ids = frame[column].astype(str).str.strip()
    repeated = ids[ids.duplicated(keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        lines = [str(i + 2) for i in np.flatnonzero((ids == first).to_numpy())]
        raise AnalysisError(
            f"responses: {args.responses}: {column} {first!r} appears on lines {', '.join(lines)}"
            + (f" ({repeated.nunique() - 1} more id(s) repeated)" if repeated.nunique() > 1 else "")
            + "; every respondent must appear once"
        )


def _trim(text: str | None) -> tuple[float, float] | None:
    if not text:
        return None
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise AnalysisError(f"--trim wants LOW,HIGH such as 0.3,5; got {text!r}") from None
    return low, high


def _load(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """Read and check the responses and margins files; return them with the item and rate columns."""
    items = [i.strip() for i in args.items.split(",") if i.strip()] if args.items else []
    rates = [i.strip() for i in args.rates.split(",") if i.strip()] if getattr(args, "rates", None) else []
    responses = _read_csv(args.responses, "responses", items + rates, args.encoding)
    margins = _read_csv(args.margins, "margins", encoding=args.encoding)
    items = items or [c for c in responses.columns if re.fullmatch(r"q\d+", c)]
    if not items:
        raise AnalysisError("no items: pass --items q01,q02,...")
    if args.by not in responses.columns:
        raise AnalysisError(f"responses: {args.responses} has no column {args.by!r} for --by")
    _numeric_items(responses, items + rates, args.responses)
    _on_scale(responses, items, args.responses, args.scale, args.scale_map)
    _unique_ids(responses, args)
    for rate in rates:
        values = set(responses[rate].dropna().unique())
        if not values <= {0.0, 1.0}:
            raise AnalysisError(f"responses: rate column {rate} must hold 1 (yes), 0 (no) or blank, not {sorted(values - {0.0, 1.0})[0]:g}")
    return responses, margins, items, rates


def estimate(args: argparse.Namespace) -> None:
    """Run the ``estimate`` subcommand."""
    started = time.perf_counter()
    responses, margins, items, rates = _load(args)
    read_s = time.perf_counter() - started
    _say(f"read {len(responses):,} responses and {len(margins):,} margin rows in {read_s:.2f} s", args)
    result = analyze(
        responses,
        margins,
        by=args.by,
        items=items,
        rates=rates,
        tol=args.tol,
        max_iter=args.max_iter,
        trim=_trim(args.trim),
        min_n=args.min_n,
        third_party_respondents=args.third_party_n,
        simulations=args.simulations,
        quota_by=args.quota_by,
        model_by=args.model_by,
        strata=args.strata,
        cluster=args.cluster,
        fpc=args.fpc,
        weights=args.weights,
        lonely_psu=args.lonely_psu,
        item_matrix=bool(args.items_out),
        seed=args.seed,
        progress=lambda message: _say(message, args),
    )
    table = output_table(result)
    try:
        table.to_csv(args.out, index=False, float_format="%.10g")
        if args.items_out:
            result.items.to_csv(args.items_out, index=False, float_format="%.10g")
    except OSError as exc:
        raise AnalysisError(f"cannot write output: {exc.strerror}: {exc.filename}") from None
    city = result.city
    _say(
        f"city {city['estimate']:.2f} (95% CI {city['ci_low']:.2f}-{city['ci_high']:.2f}), "
        f"{city['points']:.2f} of 20 points, P(third-party survey >= 80) = {city['third_party_prob_pass']:.3f}; "
        f"{int((table['status'] == 'below').sum())} below 80, {int((table['status'] == 'at_risk').sum())} at risk, "
        f"{int((table['status'] == 'undecided').sum())} undecided (need more answers)",
        args,
    )
    _design_warnings(result, args)
    if city["weight_warnings"]:
        _say(f"warning: {city['weight_warnings']} domain(s) have extreme weights (largest over 10 times the smallest, "
             "or Kish design effect over 2); see weight_warning in the output", args)
    _say(f"wrote {args.out} in {time.perf_counter() - started:.2f} s total", args)


PLAN_COLUMNS = ["rank", "domain", "answers", "population", "population_share", "estimate", "status",
                "answers_to_decide", "half_width", "answers_for_precision", "unit_variance", "priority", "groups_short"]


def plan(args: argparse.Namespace) -> None:
    """Run the ``plan`` subcommand: the fieldwork monitor of :mod:`analysis.fieldwork` for CSV files.

    Domains of the ``--by`` margin without a single respondent are left out of the weighting (as
    the server does) and listed first, with no estimate. Columns ``more_<variable>_<category>``
    give the answers from each respondent group that bring it up to its population share.
    """
    started = time.perf_counter()
    responses, margins, items, _ = _load(args)
    if not args.half_width > 0:
        raise AnalysisError("--half-width must be a positive number of points")
    scored = responses[responses[items].notna().any(axis=1)]
    present = set(scored[args.by].dropna().astype(str))
    weighting = margins
    if (margins["variable"].astype(str) == args.by).any():
        weighting, left_out = restrict_margins(margins, args.by, present)
        if left_out:
            _say(f"{len(left_out)} {args.by} value(s) of the margins have no respondent yet: {', '.join(left_out[:10])}"
                 + (" ..." if len(left_out) > 10 else ""), args)
    result = analyze(  # the third-party simulation is not used here: two draws, its least
        responses, weighting, by=args.by, items=items, tol=args.tol, max_iter=args.max_iter, trim=_trim(args.trim),
        min_n=args.min_n, simulations=2, model_by=args.model_by, strata=args.strata, cluster=args.cluster, fpc=args.fpc,
        weights=args.weights, lonely_psu=args.lonely_psu, item_matrix=False, seed=args.seed, progress=lambda message: _say(message, args),
    )
    attributes = [v for v in dict.fromkeys(margins["variable"].astype(str)) if v != args.by and v in scored.columns]
    counts = scored.assign(**{args.by: scored[args.by].astype(str)}).groupby([args.by, *attributes]).size().rename("n").reset_index()
    fieldwork = plan_fieldwork(result.domains, counts, margins, by=args.by, half_width=args.half_width, min_n=args.min_n)
    table = fieldwork.communities[PLAN_COLUMNS]
    if not fieldwork.groups.empty:
        wide_names = "more_" + fieldwork.groups["variable"] + "_" + fieldwork.groups["category"]
        wide = fieldwork.groups.assign(column=wide_names)
        wide = wide.pivot(index="domain", columns="column", values="answers_to_share")
        table = table.join(wide[list(dict.fromkeys(wide_names))], on="domain")
    try:
        table.to_csv(args.out, index=False, float_format="%.10g")
        if args.groups_out:
            fieldwork.groups.to_csv(args.groups_out, index=False, float_format="%.10g")
    except OSError as exc:
        raise AnalysisError(f"cannot write output: {exc.strerror}: {exc.filename}") from None
    city = fieldwork.city
    _say(
        f"{city['answers']:,} answers in {city['communities'] - city['communities_without_answers']:,} of "
        f"{city['communities']:,} domains; {city['undecided']} undecided; "
        f"{city['answers_for_precision']:,.0f} more answers for +/-{args.half_width:g} points everywhere", args,
    )
    _say(f"wrote {args.out} in {time.perf_counter() - started:.2f} s total", args)


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def _raked_responses(args: argparse.Namespace, columns: list[str]):
    """Read the responses (as text) and margins, check ``columns``, and rake every row: (responses, design)."""
    responses = _read_csv(args.responses, "responses", encoding=args.encoding)
    margins = _read_csv(args.margins, "margins", encoding=args.encoding)
    missing = [c for c in dict.fromkeys(columns) if c not in responses.columns]
    if missing:
        raise AnalysisError(f"responses: {args.responses} has no column(s) {', '.join(missing)}")
    _unique_ids(responses, args)
    result = rake(responses, margins, tol=args.tol, max_iter=args.max_iter, trim=_trim(args.trim), strata=args.strata,
                  cluster=args.cluster, fpc=args.fpc, weights=args.weights, lonely_psu=args.lonely_psu)
    sampling = result.design.sampling
    if sampling is not None and sampling.lonely:
        _say(f"warning: {len(sampling.lonely)} stratum/unit(s) with a single PSU, handled as --lonely-psu "
             f"{sampling.lonely_psu}: {', '.join(sampling.lonely[:5])}" + (" ..." if len(sampling.lonely) > 5 else ""),
             args)
    _say(f"raked {result.design.n:,} respondents in {result.iterations} iterations (design effect {result.deff:.2f})", args)
    return responses, result.design


def _write(table: pd.DataFrame, path: str) -> None:
    try:
        table.to_csv(path, index=False, float_format="%.10g")
    except OSError as exc:
        raise AnalysisError(f"cannot write output: {exc.strerror}: {exc.filename}") from None


def frequencies_command(args: argparse.Namespace) -> None:
    """Run the ``frequencies`` subcommand: choice shares (and number summaries) per domain."""
    multi, numbers = _names(args.multi), _names(args.numbers)
    items = list(dict.fromkeys(_names(args.items) + multi + numbers))
    if not items:
        raise AnalysisError("no items: pass --items A,B (and --multi, --numbers for those kinds)")
    both = set(multi) & set(numbers)
    if both:
        raise AnalysisError(f"{sorted(both)[0]} is given both as --multi and as --numbers")
    if numbers and not args.numbers_out:
        raise AnalysisError("numbers (--numbers) are written to --numbers-out N.csv: pass it")
    try:
        quantiles = [float(q) for q in _names(args.quantiles)]
    except ValueError:
        raise AnalysisError(f"--quantiles wants numbers between 0 and 1 such as 0.25,0.5,0.75; got {args.quantiles!r}") from None
    responses, design = _raked_responses(args, items + ([args.by] if args.by else []))
    kinds = {item: "multi" if item in multi else "number" if item in numbers else "choice" for item in items}
    shares, summaries = frequencies(design, responses, kinds, args.by, quantiles=quantiles)
    _write(shares, args.out)
    if numbers:
        _write(summaries, args.numbers_out)
    _say(f"wrote {len(shares):,} choice rows to {args.out}" + (f" and {len(summaries):,} number rows to "
                                                                 f"{args.numbers_out}" if numbers else ""), args)


def crosstab_command(args: argparse.Namespace) -> None:
    """Run the ``crosstab`` subcommand: the weighted two-way table and its Rao-Scott F test per domain."""
    responses, design = _raked_responses(args, [args.rows, args.cols] + ([args.by] if args.by else []))
    labels = None
    if args.by:
        if responses[args.by].isna().any():
            raise AnalysisError(f"responses: {args.by} is blank on {int(responses[args.by].isna().sum())} row(s)")
        labels = responses[args.by]
    table, tests = crosstab(design, responses[args.rows], responses[args.cols], labels)
    _write(table, args.out)
    tests.insert(1, "rows", args.rows)
    tests.insert(2, "cols", args.cols)
    if args.test_out:
        _write(tests, args.test_out)
    whole = tests.iloc[0]
    _say(f"{args.rows} x {args.cols}: F = {whole['statistic']:.4g} on {whole['ndf']:.3g} and {whole['ddf']:.4g} df, "
         f"p = {whole['p']:.4g} (Rao-Scott); wrote {args.out}" + (f" and {args.test_out}" if args.test_out else ""), args)


def _design_warnings(result, args: argparse.Namespace) -> None:
    """Say which domains carry no interval and which strata had a single PSU."""
    sampling = result.rake.design.sampling
    if sampling is not None and sampling.lonely:
        _say(f"warning: {len(sampling.lonely)} stratum/unit(s) with a single PSU, handled as --lonely-psu "
             f"{sampling.lonely_psu}: {', '.join(sampling.lonely[:5])}" + (" ..." if len(sampling.lonely) > 5 else ""), args)
    warned = result.domains["variance_warning"].value_counts()
    if warned.get("single_psu", 0):
        _say(f"warning: {warned['single_psu']} domain(s) lie within a single PSU per stratum (design df 0): no "
             "variance, no interval, status undecided (数据不足); see variance_warning in the output", args)
    if warned.get("zero_variance", 0):
        _say(f"warning: {warned['zero_variance']} domain(s) have identical answers (SE 0): no interval; their flag "
             "uses a variance smoothed from the other domains, or is undecided (数据不足) without one; see "
             "variance_warning in the output", args)


def _say(message: str, args: argparse.Namespace) -> None:
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


def _common_arguments(est: argparse.ArgumentParser) -> None:
    """Add the arguments that read and weight the data, shared by ``estimate`` and ``plan``."""
    est.add_argument("--by", required=True, help="column naming the domain, e.g. community")
    est.add_argument("--items", help="comma-separated item columns (default: every qNN column)")
    est.add_argument(
        "--scale", choices=sorted(SCALES), default="0-100",
        help="scale of the item answers (default 0-100); 1-5 ratings are mapped onto 0-100 by --scale-map "
        "(default the questionnaire's scores 20, 40, 60, 80, 100). Values outside the scale are refused",
    )
    _design_arguments(est)
    est.add_argument("--min-n", type=int, default=MIN_N, help="below this n, smooth the sampling variance")
    est.add_argument(
        "--scale-map", default="questionnaire",
        help="with --scale 1-5: questionnaire (default: the bundled questionnaire's scores 1->20, 2->40, 3->60, "
        "4->80, 5->100), linear ((x - 1) * 25), or every rating as 1=20,2=40,3=60,4=80,5=100",
    )
    est.add_argument("--model-by", default=None, help="group column (e.g. district) with its own mean in the small-area model")
    est.add_argument("--seed", type=int, default=0)


def _design_arguments(est: argparse.ArgumentParser) -> None:
    """Add the files, their encoding, the raking settings and the sampling design: every subcommand's."""
    est.add_argument("--responses", required=True, help="CSV, one row per respondent")
    est.add_argument("--margins", required=True, help="CSV with columns variable,category,total")
    est.add_argument("--out", required=True, help="output CSV")
    est.add_argument(
        "--encoding", choices=list(ENCODINGS), default="utf-8",
        help="text encoding of both CSV files (default utf-8); gbk also reads GB18030, as saved by Chinese Excel or WPS",
    )
    est.add_argument("--tol", type=float, default=1e-10, help="raking tolerance (relative weight change)")
    est.add_argument("--max-iter", type=int, default=100, help="raking iteration limit")
    est.add_argument("--trim", help="bound weights to LOW,HIGH times the mean weight")
    est.add_argument(
        "--strata", default=None,
        help="sampling strata column: variance within strata, as R's svydesign(strata=~COL) then rake. "
        "(Before, --strata set the quotas of the simulated third-party survey: that is now --quota-by)",
    )
    est.add_argument(
        "--cluster", default=None,
        help="cluster columns, one per stage: PSU, or PSU+SSU for two stages (R's ids=~A+B, nested)",
    )
    est.add_argument(
        "--fpc", default=None,
        help="finite population correction columns, one per stage (F1+F2), as R's fpc=~F1+F2: the population size "
        "(in that stage's units) within the stratum or unit above, or the sampling fraction when every value is at "
        "most 1; with two stages the second stage's variance is added (R's multistage)",
    )
    est.add_argument(
        "--weights", default=None,
        help="base weight column (1 / selection probability) of a drawn sample: raked from, not replaced, as R's "
        "svydesign(weights=~COL) then rake (default: equal base weights)",
    )
    est.add_argument(
        "--lonely-psu", choices=["fail", "adjust", "certainty"], default="fail",
        help="a stratum with a single PSU, as R's options(survey.lonely.psu): fail (default), adjust (centred at "
        "zero) or certainty (no variance)",
    )
    est.add_argument("--id", default=None,
                     help="respondent id column whose values must be unique (default: respondent_id when present)")
    est.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="survey-analysis", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    est = sub.add_parser("estimate", help="rake, estimate per domain, shrink, flag and count points")
    _common_arguments(est)
    est.add_argument("--rates", help="comma-separated 0/1 columns (awareness, support, participation) for --items-out")
    est.add_argument("--items-out", help="also write the item (and rate) x domain estimates here")
    est.add_argument("--quota-by", default=None, help="quota strata of the simulated third-party survey, e.g. district")
    est.add_argument("--third-party-n", type=int, default=1000, help="respondents of the simulated third-party survey")
    est.add_argument("--simulations", type=int, default=2000, help="simulated third-party surveys")
    est.set_defaults(func=estimate)
    plan_parser = sub.add_parser(
        "plan", help="fieldwork plan: answers still needed per domain (to decide its flag, for a target interval) "
        "and from which respondent groups, highest priority first",
    )
    _common_arguments(plan_parser)
    plan_parser.add_argument("--half-width", type=float, default=TARGET_HALF_WIDTH,
                             help="target 95%% half-width of each domain's estimate, in points (default 3)")
    plan_parser.add_argument("--groups-out", help="also write one row per domain x respondent group here")
    plan_parser.set_defaults(func=plan)
    freq = sub.add_parser(
        "frequencies", help="each choice's weighted share (SE, logit interval, n) per domain; numbers' mean and quantiles",
    )
    _design_arguments(freq)
    freq.add_argument("--items", help="comma-separated single-choice item columns (answers are choice codes)")
    freq.add_argument("--multi", help="comma-separated multiple-choice item columns (codes separated by spaces)")
    freq.add_argument("--numbers", help="comma-separated number item columns (written to --numbers-out)")
    freq.add_argument("--by", default=None, help="column naming the domain, e.g. district (default: the whole sample)")
    freq.add_argument("--numbers-out", default=None, help="output CSV of the numbers' mean and quantiles")
    freq.add_argument("--quantiles", default=",".join(f"{q:g}" for q in QUANTILES),
                      help="quantiles of the numbers (default 0.25,0.5,0.75), as R's svyquantile (qrule math)")
    freq.set_defaults(func=frequencies_command)
    cross = sub.add_parser("crosstab", help="weighted two-way table per domain and the Rao-Scott F test (svychisq)")
    _design_arguments(cross)
    cross.add_argument("--rows", required=True, help="single-choice item of the table's rows")
    cross.add_argument("--cols", required=True, help="single-choice item of the table's columns")
    cross.add_argument("--by", default=None, help="column naming the domain: a table and a test per domain")
    cross.add_argument("--test-out", default=None, help="output CSV of the tests: statistic, ndf, ddf, p per domain")
    cross.set_defaults(func=crosstab_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``survey-analysis`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except AnalysisError as exc:
        print(f"survey-analysis: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print("survey-analysis: error: out of memory", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("survey-analysis: interrupted", file=sys.stderr)
        return 130
    return 0

"""Print the largest differences between analysis.frequencies and R's survey (tests/analysis/r/frequencies.R).

    python -m benchmarks.r_frequency_diffs

Shares and quantile estimates: absolute; SEs, F statistics, ndf, ddf: relative; p: absolute.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.frequencies import crosstab, frequencies
from analysis.raking import rake
from tests.analysis.test_frequencies import DATA, ITEMS, SPECS, load  # the data and designs the tests compare


def design_of(data: str, name: str):
    responses, margins = load(data)
    return responses, rake(responses, margins, tol=1e-13, max_iter=1000, **SPECS[data, name]).design


def ours(data: str, name: str, by: str):
    responses, design = design_of(data, name)
    return frequencies(design, responses, ITEMS[data], None if by == "ALL" else by)


def r_table(kind: str) -> pd.DataFrame:
    return pd.read_csv(DATA / f"freq_r_{kind}.csv", dtype={"domain": str, "choice": str})


def share_diffs() -> dict[str, float]:
    worst = {"share": 0.0, "se": 0.0, "share_factor": 0.0, "se_factor": 0.0, "ci": 0.0, "n": 0.0, "df": 0.0}
    reference = r_table("shares")
    for (data, name, by), part in reference.groupby(["data", "design", "by"]):
        shares, _ = ours(data, name, by)
        joined = shares.merge(part, on=["item", "domain", "choice"], suffixes=("", "_r"), validate="one_to_one")
        assert len(joined) == len(part), (data, name, by, len(joined), len(part))
        worst["share"] = max(worst["share"], float(np.abs(joined["share"] - joined["share_r"]).max()))
        real = joined["se_r"] > 1e-12
        worst["se"] = max(worst["se"], float((np.abs(joined["se"] / joined["se_r"] - 1))[real].max()))
        factor = joined.dropna(subset=["share_factor"])
        worst["share_factor"] = max(worst["share_factor"], float(np.abs(factor["share"] - factor["share_factor"]).max()))
        fr = factor["se_factor"] > 1e-12
        worst["se_factor"] = max(worst["se_factor"],
                                 float(np.abs(factor["se"] / factor["se_factor"] - 1)[fr].max()) if fr.any() else 0.0)
        inside = (joined["share_r"] > 1e-12) & (joined["share_r"] < 1 - 1e-12) & joined["converged"]
        for side in ("low", "high"):
            worst["ci"] = max(worst["ci"], float(np.abs(joined[f"ci_{side}"] - joined[f"logit_{side}"])[inside].max()))
        worst["n"] = max(worst["n"], float(np.abs(joined["n"] - joined["n_r"]).max()),
                         float(np.abs(joined["answered"] - joined["answered_r"]).max()))
        worst["df"] = max(worst["df"], float(np.abs(joined["df"] - joined["df_r"]).max()))
    return worst


def number_diffs() -> dict[str, float]:
    worst = {"mean": 0.0, "mean_se": 0.0, "quantile": 0.0, "quantile_se": 0.0, "quantile_ci": 0.0}
    reference = r_table("numbers")
    reference["statistic"] = reference["statistic"].replace({"p25": "p25", "median": "median", "p75": "p75"})
    for (data, name, by), part in reference.groupby(["data", "design", "by"]):
        _, numbers = ours(data, name, by)
        joined = numbers.merge(part, on=["item", "domain", "statistic"], suffixes=("", "_r"), validate="one_to_one")
        assert len(joined) == len(part), (data, name, by, len(joined), len(part))
        mean = joined[joined["statistic"] == "mean"]
        quant = joined[joined["statistic"] != "mean"]
        worst["mean"] = max(worst["mean"], float(np.abs(mean["estimate"] / mean["estimate_r"] - 1).max()))
        worst["mean_se"] = max(worst["mean_se"], float(np.abs(mean["se"] / mean["se_r"] - 1).max()))
        worst["quantile"] = max(worst["quantile"], float(np.abs(quant["estimate"] - quant["estimate_r"]).max()))
        both = quant.dropna(subset=["se_r"])
        assert (quant["se"].isna() == quant["se_r"].isna()).all(), (data, name, by)
        real = both["se_r"] > 0
        if real.any():
            worst["quantile_se"] = max(worst["quantile_se"], float(np.abs(both["se"] / both["se_r"] - 1)[real].max()))
        for side in ("low", "high"):
            worst["quantile_ci"] = max(worst["quantile_ci"],
                                       float(np.nan_to_num(np.abs(quant[f"ci_{side}"] - quant[f"ci_{side}_r"])).max()))
    return worst


def chisq_diffs() -> dict[str, float]:
    worst = {"statistic": 0.0, "ndf": 0.0, "ddf": 0.0, "p": 0.0, "tests": 0.0}
    reference = r_table("chisq")
    for (data, name, by, rows, cols), part in reference.groupby(["data", "design", "by", "rows", "cols"]):
        responses, design = design_of(data, name)
        _, tests = crosstab(design, responses[rows], responses[cols], None if by == "ALL" else responses[by])
        joined = tests.merge(part, on="domain", suffixes=("", "_r"), validate="one_to_one")
        assert len(joined) == len(part)
        worst["tests"] += len(joined)
        worst["statistic"] = max(worst["statistic"], float(np.abs(joined["statistic"] / joined["statistic_r"] - 1).max()))
        worst["ndf"] = max(worst["ndf"], float(np.abs(joined["ndf"] / joined["ndf_r"] - 1).max()))
        worst["ddf"] = max(worst["ddf"], float(np.abs(joined["ddf"] / joined["ddf_degf"] - 1).max()))
        worst["p"] = max(worst["p"], float(np.abs(joined["p"] - joined["p_degf"]).max()))
    return worst


if __name__ == "__main__":
    for title, diffs in (("shares", share_diffs()), ("numbers", number_diffs()), ("chisq", chisq_diffs())):
        print(title, {k: float(f"{v:.3g}") for k, v in diffs.items()})

"""Print the largest differences from R's survey package on the multistage reference data.

    .venv/bin/python benchmarks/r_design_diffs.py

Reads tests/analysis/data/designs_r_*.csv (made by tests/analysis/r/designs.R) and prints, per
(data, design, lonely PSU option), the maximum absolute difference of estimates, the maximum
relative difference of SEs and deffs (domains with an SE of rounding noise, < 1e-9, left out of
the relative figures), and of rate intervals (logit where R's glm gives one, xlogit otherwise).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.estimates import domain_means, domain_stats  # noqa: E402
from analysis.pipeline import analyze  # noqa: E402
from analysis.raking import rake  # noqa: E402
from tests.analysis.test_multistage import DATA, ITEMS, SPECS, load  # noqa: E402


def main() -> None:
    means = pd.read_csv(DATA / "designs_r_means.csv", dtype={"domain": str})
    rates = pd.read_csv(DATA / "designs_r_rates.csv", dtype={"domain": str})
    data = {name: load(name) for name in ("apiclus2", "city2")}
    print(f"{'data':9} {'design':17} {'lonely':9} {'est abs':>9} {'se rel':>9} {'deff rel':>9} {'rate ci abs':>11} {'df equal':>8}")
    for (dname, design_name, lonely), part in means.groupby(["data", "design", "lonely"]):
        r, margins = data[dname]
        design = rake(r, margins, tol=1e-13, max_iter=1000, lonely_psu=lonely, **SPECS[dname, design_name]).design
        est = se = deff = 0.0
        for by, ref in part.groupby("by"):
            labels = np.full(len(r), "ALL") if by == "ALL" else r[by]
            ours = domain_means(design, domain_stats(design, labels, r["score"])).set_index("domain")
            j = ours.join(ref.set_index("domain").add_suffix("_r"), how="inner")
            real = j["se_r"] > 1e-9
            est = max(est, float((j["estimate"] - j["estimate_r"]).abs().max()))
            se = max(se, float((j.loc[real, "se"] / j.loc[real, "se_r"] - 1).abs().max()))
            deff = max(deff, float((j.loc[real, "deff"] / j.loc[real, "deff_r"] - 1).abs().max()))
        ci, same_df = 0.0, True
        items, rate_items = (ITEMS, ["aware"]) if dname == "city2" else (["score"], ["rate_awards", "rate_high"])
        rr = r.copy()
        for rate in rate_items:
            rr[rate] = pd.to_numeric(rr[rate])
        for by, ref in rates[(rates["data"] == dname) & (rates["design"] == design_name) & (rates["lonely"] == lonely)].groupby("by"):
            result = analyze(rr, margins, by=by, items=items, rates=rate_items, simulations=5, tol=1e-13, max_iter=1000,
                             lonely_psu=lonely, **SPECS[dname, design_name])
            ours = result.items[result.items["item"].isin(rate_items)].rename(columns={"item": "rate"})
            j = ours.merge(ref, on=["rate", "domain"], suffixes=("", "_r"))
            same_df &= bool((j["df"] == j["df_r"]).all())
            inside = (j["p"] > 1e-12) & (j["p"] < 1 - 1e-12) & (j["df_r"] >= 1)
            for side in ("low", "high"):
                r_side = j[f"logit_{side}"].where(j["converged"] & j["logit_high"].notna(), j[f"xlogit_{side}"])
                ci = max(ci, float((j.loc[inside, f"ci_{side}"] - r_side[inside]).abs().max()))
        print(f"{dname:9} {design_name:17} {lonely:9} {est:9.1e} {se:9.1e} {deff:9.1e} {ci:11.1e} {same_df!s:>8}")


if __name__ == "__main__":
    main()

"""Print how far the analysis is from R's survey package on shared/reference/city100k, and how long it takes.

    python -m benchmarks.r_match [--data ../shared/reference/city100k]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.estimates import domain_means, domain_stats
from analysis.raking import rake

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "reference" / "city100k"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    folder = parser.parse_args().data
    r = pd.read_csv(folder / "responses.csv", dtype={"community": str, "sex": str, "age_band": str})
    margins = pd.read_csv(folder / "margins.csv", dtype={"category": str})
    items = [c for c in r.columns if c.startswith("q")]
    r["score"] = r[items].mean(axis=1)
    r = r[r["score"].notna()].reset_index(drop=True)
    start = time.perf_counter()
    result = rake(r, margins)
    design = result.design
    by_community = domain_means(design, domain_stats(design, r["community"], r["score"]))
    city = domain_means(design, domain_stats(design, np.full(len(r), "__city__"), r["score"]))
    elapsed = time.perf_counter() - start
    ours = pd.concat([by_community, city]).set_index("domain")
    reference = pd.read_csv(folder / "r_estimates.csv", dtype={"community": str}).set_index("community")
    joined = ours.join(reference.add_suffix("_r"), how="inner")
    weights = pd.read_csv(folder / "r_weights.csv")["weight"].to_numpy()
    print(f"{len(r):,} respondents, {len(joined) - 1} communities + city; rake {result.iterations} iterations; "
          f"rake + all SEs {elapsed:.2f} s")
    print(f"max |estimate - R| = {np.max(np.abs(joined['estimate'] - joined['estimate_r'])):.2e}")
    print(f"max |se - R| / R  = {np.max(np.abs(joined['se'] - joined['se_r']) / joined['se_r']):.2e}")
    print(f"max |weight - R| / R = {np.max(np.abs(design.respondent_weights() - weights) / weights):.2e}")


if __name__ == "__main__":
    main()

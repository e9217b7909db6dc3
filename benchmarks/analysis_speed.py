"""Wall seconds and peak memory of the analysis from CSV at 100k and 1M respondents.

    python -m benchmarks.analysis_speed [--sizes 100000,1000000] [--communities 1000]

Each size runs ``survey-analysis estimate`` in a fresh process (CSV in, CSV out, including the
small-area model and the simulated third-party survey) and, separately, times the core step the
targets speak of: raking plus every community's estimate with its linearized standard error.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.make_city import write_city

CORE = """
import sys, time, resource, json
import numpy as np, pandas as pd
from analysis.raking import rake
from analysis.estimates import domain_means, domain_stats
d = sys.argv[1]
t0 = time.perf_counter()
r = pd.read_csv(d + "/responses.csv", dtype={"community": str, "sex": str, "age_band": str, "district": str, "street": str, "respondent_id": str})
m = pd.read_csv(d + "/margins.csv", dtype=str)
items = [f"q{i:02d}" for i in range(1, 11)]
score = r[items].mean(axis=1)
r = r[score.notna()].reset_index(drop=True); score = score[score.notna()].to_numpy()
t1 = time.perf_counter()
design = rake(r, m).design
est = domain_means(design, domain_stats(design, r["community"].to_numpy(), score))
t2 = time.perf_counter()
print(json.dumps({"read_s": t1 - t0, "rake_and_estimates_s": t2 - t1, "domains": len(est),
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

CLI = """
import resource, sys
from analysis.cli import main
assert main(sys.argv[1:]) == 0
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run(size: int, communities: int, folder: Path) -> dict:
    data = folder / f"city_{size}"
    if not (data / "responses.csv").exists():
        write_city(size, communities, data)
    core = json.loads(subprocess.run([sys.executable, "-c", CORE, str(data)], check=True, capture_output=True, text=True).stdout)
    args = ["estimate", "--responses", str(data / "responses.csv"), "--margins", str(data / "margins.csv"),
            "--by", "community", "--quota-by", "district", "--out", str(data / "out.csv"), "--quiet"]
    start = time.perf_counter()
    peak = subprocess.run([sys.executable, "-c", CLI, *args], check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - start
    return {"respondents": size, **core, "cli_wall_s": wall, "cli_peak_mib": float(peak) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--communities", type=int, default=1000)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "survey-bench")
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        figures = run(size, args.communities, args.data)
        print(
            f"{figures['respondents']:>9,} respondents, {figures['domains']} communities: "
            f"read {figures['read_s']:.2f} s, rake+estimates+SEs {figures['rake_and_estimates_s']:.2f} s "
            f"(peak {figures['peak_mib']:.0f} MiB); whole CLI from CSV {figures['cli_wall_s']:.2f} s "
            f"(peak {figures['cli_peak_mib']:.0f} MiB)",
            flush=True,
        )


if __name__ == "__main__":
    main()

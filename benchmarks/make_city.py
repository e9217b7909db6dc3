"""Write a synthetic city's responses.csv and margins.csv (same columns as shared/reference).

    python -m benchmarks.make_city --respondents 1000000 --communities 1000 --out /tmp/city1m
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

AGES = np.array(["18-29", "30-44", "45-59", "60+"])
CHOICES = np.array([20, 40, 60, 80, 100])


def write_city(respondents: int, communities: int, out: Path, seed: int = 0) -> Path:
    """Write the files into ``out`` (made if needed) and return it."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    districts = max(1, communities // 80)
    district = np.arange(communities) * districts // communities
    street = np.arange(communities) // 8
    codes = np.array([f"D{d:02d}S{s:03d}C{c:04d}" for d, s, c in zip(district, street, range(communities))])
    population = rng.integers(3000, 15000, communities)
    share = rng.lognormal(0, 1.0, communities)
    community = rng.choice(communities, respondents, p=share / share.sum())
    age = rng.choice(4, respondents, p=[0.15, 0.25, 0.3, 0.3])
    sex = rng.integers(0, 2, respondents)
    latent = rng.normal(82, 5, communities)[community] + np.array([-2, -3, 0, 4])[age] + rng.normal(0, 8, respondents)
    frame = pd.DataFrame(
        {
            "respondent_id": np.char.add("R", np.arange(respondents).astype(str)),
            "district": np.char.add("D", district[community].astype(str)),
            "street": np.char.add("S", street[community].astype(str)),
            "community": codes[community],
            "sex": np.array(["M", "F"])[sex],
            "age_band": AGES[age],
        }
    )
    for i in range(1, 11):
        index = np.clip(np.rint((latent + rng.normal(0, 12, respondents) - 20) / 20), 0, 4).astype(int)
        values = CHOICES[index].astype(float)
        values[rng.random(respondents) < 0.06] = np.nan
        frame[f"q{i:02d}"] = pd.array(values, dtype="Int64")
    frame.to_csv(out / "responses.csv", index=False)
    total = int(population.sum())
    sex_m = total * 49 // 100
    ages = (np.array([0.2, 0.28, 0.29, 0.23]) * total).astype(int)
    ages[-1] += total - ages.sum()
    margins = pd.concat(
        [
            pd.DataFrame({"variable": "community", "category": codes, "total": population}),
            pd.DataFrame({"variable": "sex", "category": ["M", "F"], "total": [sex_m, total - sex_m]}),
            pd.DataFrame({"variable": "age_band", "category": AGES, "total": ages}),
        ]
    )
    margins.to_csv(out / "margins.csv", index=False)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--respondents", type=int, default=100_000)
    parser.add_argument("--communities", type=int, default=1000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(write_city(args.respondents, args.communities, args.out))


if __name__ == "__main__":
    main()

"""The survey-analysis command line: the output contract and one-line errors."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import main

DATA = Path(__file__).parent / "data"
ITEMS = ",".join(f"q{i:02d}" for i in range(1, 11))


def run(tmp_path, *extra, responses=DATA / "small_responses.csv", margins=DATA / "small_margins.csv", by="community"):
    out = tmp_path / "out.csv"
    args = ["estimate", "--responses", str(responses), "--margins", str(margins), "--by", by,
            "--items", ITEMS, "--out", str(out), "--simulations", "200", *extra]
    return main(args), out


def test_output_has_a_row_per_domain_and_an_all_row(tmp_path, capsys):
    code, out = run(tmp_path, "--strata", "district", "--model-by", "district", "--items-out", str(tmp_path / "items.csv"))
    assert code == 0
    table = pd.read_csv(out)
    responses = pd.read_csv(DATA / "small_responses.csv", dtype=str)
    assert table.columns[:4].tolist() == ["domain", "n", "estimate", "se"]
    assert table["domain"].iloc[-1] == "ALL"
    assert set(table["domain"].iloc[:-1]) == set(responses["community"])
    for column in ("eb_estimate", "eb_mse", "prob_below_80", "status", "points_at_stake", "share_of_lost", "rank_by_cost"):
        assert table[column].iloc[:-1].notna().all(), column
    assert set(table["status"]) <= {"below", "at_risk", "ok"}
    assert table["n"].iloc[-1] == table["n"].iloc[:-1].sum()
    assert table["points"].iloc[-1] == pytest.approx(table["estimate"].iloc[-1] / 5)
    items = pd.read_csv(tmp_path / "items.csv")
    assert set(items["item"]) == {f"q{i:02d}" for i in range(1, 11)}
    err = capsys.readouterr().err
    assert "raked 3,000 respondents" in err and "wrote" in err


def test_by_street_gives_street_rows(tmp_path):
    code, out = run(tmp_path, by="street")
    assert code == 0
    assert len(pd.read_csv(out)) == 17 + 1


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("responses", "message"),
    [
        ("", "is empty"),
        ("community,sex,age_band,q01\n", "has a header but no rows"),
        ("community,sex,age_band,q01\nC1,M,18-29,80\nC1,F,60+,abc\n", "line 3: q01 = 'abc' is not a number"),
        ("community,sex,q01\nC1,M,80\n", "no column 'q02'"),
        ("community,sex,age_band,q01,q02\nC9,M,18-29,80,80\n", "community='C9' has no row in the margins"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(tmp_path, capsys, responses, message):
    r = write(tmp_path, "r.csv", responses)
    m = write(tmp_path, "m.csv", "variable,category,total\ncommunity,C1,10\nsex,M,5\nsex,F,5\nage_band,18-29,4\nage_band,60+,6\n")
    out = tmp_path / "out.csv"
    code = main(["estimate", "--responses", str(r), "--margins", str(m), "--by", "community", "--items", "q01,q02",
                 "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("survey-analysis: error: ") and message in err[-1]
    assert not any("Traceback" in line for line in err)


def test_missing_file_and_console_entry_point(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "analysis", "estimate", "--responses", str(tmp_path / "nope.csv"),
         "--margins", "m.csv", "--by", "community", "--out", str(tmp_path / "o.csv")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"survey-analysis: error: responses: file not found: {tmp_path / 'nope.csv'}"


def test_rates_are_estimated_as_weighted_proportions(tmp_path):
    responses = pd.read_csv(DATA / "small_responses.csv", dtype=str)
    responses["aware"] = (pd.to_numeric(responses["q01"]) >= 80).astype(int).astype(str)
    responses.loc[::7, "aware"] = ""  # don't know
    path = tmp_path / "r.csv"
    responses.to_csv(path, index=False)
    code, _ = run(tmp_path, "--rates", "aware", "--items-out", str(tmp_path / "items.csv"), responses=path)
    assert code == 0
    items = pd.read_csv(tmp_path / "items.csv", dtype={"domain": str})
    aware = items[items["item"] == "aware"]
    assert len(aware) > 100 and aware["estimate"].between(0, 1).all()
    responses.loc[3, "aware"] = "2"
    responses.to_csv(path, index=False)
    code, _ = run(tmp_path, "--rates", "aware", responses=path)
    assert code == 2

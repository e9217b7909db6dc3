"""The survey-analysis command line: the output contract and one-line errors."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
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
    code, out = run(tmp_path, "--quota-by", "district", "--model-by", "district", "--items-out", str(tmp_path / "items.csv"))
    assert code == 0
    table = pd.read_csv(out)
    responses = pd.read_csv(DATA / "small_responses.csv", dtype=str)
    assert table.columns[:4].tolist() == ["domain", "n", "estimate", "se"]
    assert table["domain"].iloc[-1] == "ALL"
    assert set(table["domain"].iloc[:-1]) == set(responses["community"])
    for column in ("eb_estimate", "eb_mse", "prob_below_80", "status", "points_at_stake", "share_of_lost", "rank_by_cost"):
        assert table[column].iloc[:-1].notna().all(), column
    assert set(table["status"]) <= {"below", "at_risk", "ok", "undecided"}
    undecided = table["status"] == "undecided"
    assert (table.loc[undecided, "answers_needed"] >= 1).all() and table.loc[~undecided, "answers_needed"].isna().all()
    assert table.loc[table["n"] >= 30, "deff"].notna().all()  # NaN where R gives NA (n < 2, all answers alike)
    for column in ("deff_kish", "weight_min", "weight_max", "weight_cv", "eb_ci_low", "eb_ci_high"):
        assert table[column].notna().all(), column
    assert (table["eb_ci_low"] <= table["eb_estimate"]).all() and (table["eb_estimate"] <= table["eb_ci_high"]).all()
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
    assert (aware["ci_low"].isna() == aware["df"].lt(1)).all()  # one respondent: no interval (R's NaN)
    aware = aware[aware["df"] >= 1]
    assert (aware["ci_low"] >= 0).all() and (aware["ci_high"] <= 1).all()
    assert (aware["ci_low"] <= aware["estimate"]).all() and (aware["estimate"] <= aware["ci_high"]).all()


MARGINS = "variable,category,total\ncommunity,C1,10\ncommunity,ALL,10\nsex,M,10\nsex,F,10\n"


@pytest.mark.parametrize("name", ["ALL", "all", " ALL "])
def test_a_domain_named_all_is_refused_not_merged_into_the_city_row(tmp_path, capsys, name):
    rows = "".join(f"{c},{s},{v}\n" for c in ("C1", name) for s, v in (("M", 70), ("F", 90), ("M", 80)))
    r = write(tmp_path, "r.csv", "community,sex,q01\n" + rows)
    m = write(tmp_path, "m.csv", MARGINS.replace(",ALL,", f",{name},"))
    out = tmp_path / "out.csv"
    code = main(["estimate", "--responses", str(r), "--margins", str(m), "--by", "community", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not out.exists()
    assert len(err) == 1 and "column community has a domain named" in err[0] and "rename that domain" in err[0]


def _rewrite_items(tmp_path, name, change):
    """Write the small reference responses with every item value passed through ``change``."""
    responses = pd.read_csv(DATA / "small_responses.csv", dtype=str)
    for item in ITEMS.split(","):
        values = pd.to_numeric(responses[item])
        responses[item] = values.map(lambda v: "" if pd.isna(v) else f"{change(v):g}")
    path = tmp_path / name
    responses.to_csv(path, index=False)
    return path


def test_every_score_80_is_exactly_80_and_nowhere_below(tmp_path):
    path = _rewrite_items(tmp_path, "all80.csv", lambda v: 80)
    code, out = run(tmp_path, responses=path)
    assert code == 0
    table = pd.read_csv(out)
    city = table.iloc[-1]
    assert city["domain"] == "ALL" and city["estimate"] == 80 and city["se"] == 0 and city["points"] == 16
    # identical answers: a warning and no interval; the flag stays ok (tests/survey/test_results.py pins it),
    # one-respondent domains (df 0) are undecided; never below
    assert (table["variance_warning"].isin(["zero_variance", "single_psu"])).all()
    assert table["ci_low"].iloc[:-1].isna().all() and table["status"].isin(["ok", "undecided"]).all()
    assert (table.loc[table["variance_warning"] == "single_psu", "status"] == "undecided").all()
    assert city["ci_low"] == city["ci_high"] == 80  # the city row keeps R's (degenerate) interval
    assert (table["estimate"] == 80).all() and (table["eb_estimate"] == 80).all()


@pytest.mark.parametrize(
    ("flags", "to_rating", "to_score"),
    [
        ([], lambda v: round(v / 20), lambda v: round(v / 20) * 20),  # the questionnaire's 20, 40, 60, 80, 100
        (["--scale-map", "linear"], lambda v: round(v / 25) + 1, lambda v: round(v / 25) * 25),
        (["--scale-map", "1=0,2=30,3=55,4=80,5=100"], lambda v: round(v / 20),
         lambda v: {1: 0, 2: 30, 3: 55, 4: 80, 5: 100}[round(v / 20)]),
    ],
)
def test_scale_1_to_5_maps_onto_0_to_100(tmp_path, flags, to_rating, to_score):
    five = _rewrite_items(tmp_path, "five.csv", to_rating)
    hundred = _rewrite_items(tmp_path, "hundred.csv", to_score)
    code, out = run(tmp_path, "--scale", "1-5", *flags, responses=five)
    assert code == 0
    from_five = pd.read_csv(out)
    code, out = run(tmp_path, responses=hundred)
    assert code == 0
    pd.testing.assert_frame_equal(from_five, pd.read_csv(out))
    assert "4->80" in " ".join(build_parser_help().split())


def test_the_default_1_to_5_mapping_is_the_bundled_questionnaires():
    from openpyxl import load_workbook

    from analysis.cli import SCALE_MAPS

    book = load_workbook(Path(__file__).resolve().parents[2] / "forms" / "definitions" / "citizen-v1.xlsx", read_only=True)
    rows = list(book["choices"].iter_rows(values_only=True))
    scores = {float(name): float(score) for _, name, *_, score, _ in
              (r for r in rows[1:] if r[0] == "q01" and r[4] is not None)}
    assert scores == SCALE_MAPS["questionnaire"]


def test_duplicate_respondent_ids_are_refused_with_their_lines(tmp_path, capsys):
    responses = pd.read_csv(DATA / "small_responses.csv", dtype=str)
    responses.loc[7, "respondent_id"] = responses.loc[2, "respondent_id"]
    path = tmp_path / "dup.csv"
    responses.to_csv(path, index=False)
    code, _ = run(tmp_path, responses=path)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert f"respondent_id {responses.loc[2, 'respondent_id']!r} appears on lines 4, 9" in err[0]


def test_a_fractional_rating_is_refused_on_the_1_to_5_scale(tmp_path, capsys):
    five = _rewrite_items(tmp_path, "five.csv", lambda v: v / 25 + 1)
    code, _ = run(tmp_path, "--scale", "1-5", responses=five)
    assert code == 2 and "is not a whole rating 1 to 5" in capsys.readouterr().err


def build_parser_help() -> str:
    from analysis.cli import build_parser

    parser = build_parser()
    estimate = parser._subparsers._group_actions[0].choices["estimate"]
    return estimate.format_help()


@pytest.mark.parametrize(
    ("values", "extra", "message"),
    [
        ({3: "-500"}, [], "line 5: q01 = -500 is outside the 0-100 scale"),
        ({2: "100.5"}, [], "line 4: q01 = 100.5 is outside the 0-100 scale"),
        ({3: "7"}, ["--scale", "1-5"], "line 5: q01 = 7 is outside the 1-5 scale"),
        ({3: "0"}, ["--scale", "1-5"], "line 5: q01 = 0 is outside the 1-5 scale"),
    ],
)
def test_values_outside_the_scale_are_refused_with_line_and_column(tmp_path, capsys, values, extra, message):
    base = {"0": "80", "1": "70"} if not extra else {"0": "4", "1": "3"}
    rows = [base[str(i % 2)] for i in range(6)]
    for row, value in values.items():
        rows[row] = value
    text = "community,sex,q01\n" + "".join(f"C1,{'MF'[i % 2]},{v}\n" for i, v in enumerate(rows))
    r = write(tmp_path, "r.csv", text)
    m = write(tmp_path, "m.csv", "variable,category,total\ncommunity,C1,10\nsex,M,5\nsex,F,5\n")
    code = main(["estimate", "--responses", str(r), "--margins", str(m), "--by", "community", "--out",
                 str(tmp_path / "o.csv"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err


def test_1_to_5_ratings_without_scale_are_refused(tmp_path, capsys):
    path = _rewrite_items(tmp_path, "five.csv", lambda v: round(v / 25) + 1)
    code, _ = run(tmp_path, responses=path)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "pass --scale 1-5" in err[-1]


CHINESE = "community,sex,q01\n和平社区,男,80\n和平社区,女,70\n和平社区,男,90\n𠀀社区,女,85\n𠀀社区,男,60\n𠀀社区,女,75\n"
CHINESE_MARGINS = "variable,category,total\ncommunity,和平社区,60\ncommunity,𠀀社区,40\nsex,男,50\nsex,女,50\n"


def test_gbk_file_gets_a_fix_in_the_message_and_is_read_with_encoding_gbk(tmp_path, capsys):
    r = tmp_path / "r.csv"
    m = tmp_path / "m.csv"
    r.write_bytes(CHINESE.encode("gb18030"))  # GBK, with one character only GB18030 has
    m.write_bytes(CHINESE_MARGINS.encode("gb18030"))
    out = tmp_path / "out.csv"
    args = ["estimate", "--responses", str(r), "--margins", str(m), "--by", "community", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not UTF-8 text" in err[0]
    assert "CSV UTF-8" in err[0] and "WPS" in err[0] and "--encoding gbk" in err[0]
    assert main([*args, "--encoding", "gbk"]) == 0
    table = pd.read_csv(out)
    assert table["domain"].tolist() == ["和平社区", "𠀀社区", "ALL"]
    # A UTF-8 file with a BOM (Excel's "CSV UTF-8") is read as UTF-8 whatever --encoding says.
    r.write_bytes(b"\xef\xbb\xbf" + CHINESE.encode("utf-8"))
    m.write_bytes(b"\xef\xbb\xbf" + CHINESE_MARGINS.encode("utf-8"))
    out.unlink()
    assert main([*args, "--encoding", "gbk"]) == 0
    assert pd.read_csv(out)["domain"].tolist() == ["和平社区", "𠀀社区", "ALL"]


def test_plan_writes_the_fieldwork_plan_highest_priority_first(tmp_path, capsys):
    responses = pd.read_csv(DATA / "small_responses.csv", dtype=str)
    gone = sorted(responses["community"].unique())[0]  # a community of the margins with no answer yet
    path = tmp_path / "responses.csv"
    responses[responses["community"] != gone].to_csv(path, index=False)
    out, groups = tmp_path / "plan.csv", tmp_path / "groups.csv"
    code = main(["plan", "--responses", str(path), "--margins", str(DATA / "small_margins.csv"), "--by", "community",
                 "--items", ITEMS, "--out", str(out), "--groups-out", str(groups), "--half-width", "4"])
    assert code == 0
    plan = pd.read_csv(out)
    assert plan.columns[:8].tolist() == ["rank", "domain", "answers", "population", "population_share", "estimate",
                                         "status", "answers_to_decide"]
    assert [c for c in plan.columns if c.startswith("more_")] == [
        "more_sex_M", "more_sex_F", "more_age_band_18-29", "more_age_band_30-44", "more_age_band_45-59", "more_age_band_60+"]
    assert set(plan["domain"]) == set(responses["community"])
    assert plan["rank"].tolist() == list(range(1, len(plan) + 1))
    first = plan.iloc[0]
    assert first["domain"] == gone and first["answers"] == 0 and first["status"] == "no_data"
    assert first["more_sex_M"] == 1 and first["more_sex_F"] == 1
    rest = plan.iloc[1:]
    assert rest["priority"].is_monotonic_decreasing and rest["answers"].sum() == (responses["community"] != gone).sum()
    assert (rest["answers_to_decide"][rest["status"] != "undecided"] == 0).all()
    assert (rest["answers_to_decide"][rest["status"] == "undecided"] >= 1).all()
    # The +/- 4 point target by the hand formula.
    z = 1.959963984540054
    need = np.maximum(np.ceil(rest["unit_variance"] * z**2 / 16 - 1e-9) - rest["answers"], 0)
    assert (rest["answers_for_precision"] == need).all()
    # The group columns match the long table.
    long = pd.read_csv(groups)
    row = long[(long["domain"] == rest.iloc[0]["domain"]) & (long["variable"] == "sex") & (long["category"] == "M")].iloc[0]
    assert rest.iloc[0]["more_sex_M"] == row["answers_to_share"]
    assert row["population_share"] == pytest.approx(617446.05 / (617446.05 + 696268.95))
    err = capsys.readouterr().err
    assert "1 community value(s) of the margins have no respondent yet" in err and "wrote" in err


def test_plan_refuses_a_bad_half_width(tmp_path, capsys):
    code = main(["plan", "--responses", str(DATA / "small_responses.csv"), "--margins", str(DATA / "small_margins.csv"),
                 "--by", "community", "--items", ITEMS, "--out", str(tmp_path / "p.csv"), "--half-width", "0"])
    assert code == 2
    assert capsys.readouterr().err.strip() == "survey-analysis: error: --half-width must be a positive number of points"

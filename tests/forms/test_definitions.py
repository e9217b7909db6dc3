"""Questionnaire definitions: the bundled files, the loader's error messages, the form builder."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict

from forms import (
    DefinitionError,
    bundled_definitions,
    load_definition,
    parse_definition,
)

LEGACY = Path(__file__).parent / "legacy"
CITIZEN_TOPICS = {
    "environment", "public_order", "traffic_order", "public_services", "community_services",
    "volunteer_services", "civility_publicity", "government_services", "safety", "overall",
}


def test_bundled_citizen_questionnaire_covers_attributes_rates_and_topics():
    citizen = bundled_definitions()[("citizen", 1)]
    assert [i.attribute for i in citizen.items if i.attribute] == ["sex", "age_band", "resident_6m"]
    assert [c.code for c in citizen.item("age_band").choices] == ["18-29", "30-44", "45-59", "60+"]
    assert {i.topic for i in citizen.scored_items} == CITIZEN_TOPICS
    assert {i.kind for i in citizen.rate_items} == {"awareness", "support", "participation"}
    for item in citizen.scored_items:
        assert [c.score for c in item.choices] == [100, 80, 60, 40, 20, None]
    assert all(item.label_en for item in citizen.items)


def test_minors_questionnaire_collects_nothing_identifying():
    minor = bundled_definitions()[("minor", 1)]
    assert minor.minors
    assert [i.attribute for i in minor.items if i.attribute] == ["grade_band"]
    assert not [i for i in minor.items if i.type == "text"], "no free text from minors"
    forbidden = ("name", "phone", "id_number", "address", "birth", "姓名", "电话", "身份证", "住址", "生日", "学号")
    for item in minor.items:
        words = f"{item.code} {item.label} {item.label_en}".lower()
        assert not any(word in words for word in forbidden), item.code


def test_respondent_score_leaves_out_dont_know():
    citizen = bundled_definitions()[("citizen", 1)]
    answers = {f"q{i:02d}": "0" for i in range(1, 11)} | {"q01": "5", "q02": "3"}
    assert citizen.respondent_score(answers) == (80.0, 2)
    assert citizen.respondent_score({"q01": "0"}) == (None, 0)


def citizen_raw():
    """Return the citizen questionnaire in the first (JSON) dict format, as early databases stored it."""
    return json.loads((LEGACY / "citizen-v1.json").read_text(encoding="utf-8"))


def first_rating(raw):
    return next(i for s in raw["sections"] for i in s["items"] if i["type"] == "rating")


def break_unknown_type(raw):
    first_rating(raw)["type"] = "slider"


def break_duplicate_code(raw):
    raw["sections"][1]["items"][0]["code"] = "sex"


def break_missing_score(raw):
    del first_rating(raw)["choices"][2]["score"]


def break_empty_choices(raw):
    first_rating(raw)["choices"] = []


def break_missing_label_en(raw):
    first_rating(raw)["label_en"] = ""


def break_duplicate_choice(raw):
    first_rating(raw)["choices"][1]["code"] = "5"


def break_yesno_without_no(raw):
    item = next(i for s in raw["sections"] for i in s["items"] if i["type"] == "yesno")
    item["choices"] = [c for c in item["choices"] if c["yes"] is not False]


def break_score_out_of_range(raw):
    first_rating(raw)["choices"][0]["score"] = 120


@pytest.mark.parametrize(
    ("breaker", "message"),
    [
        (break_unknown_type, "citizen-v1.json: item 'q01': unknown type 'slider'"),
        (break_duplicate_code, "citizen-v1.json: item 'sex': duplicate item code"),
        (break_missing_score, "citizen-v1.json: item 'q01': choice '3' has no score"),
        (break_empty_choices, "citizen-v1.json: item 'q01': empty choice list"),
        (break_missing_label_en, "citizen-v1.json: item 'q01': missing label_en"),
        (break_duplicate_choice, "citizen-v1.json: item 'q01': duplicate choice code '5'"),
        (break_yesno_without_no, "citizen-v1.json: item 'k01': needs at least one yes choice and one no choice"),
        (break_score_out_of_range, "citizen-v1.json: item 'q01': choice '5' score must be a number from 0 to 100"),
    ],
)
def test_loader_errors_name_file_and_item(tmp_path, breaker, message):
    raw = citizen_raw()
    breaker(raw)
    path = tmp_path / "citizen-v1.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        load_definition(path)
    assert str(caught.value).startswith(message)


def test_loader_reports_broken_json_and_missing_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(DefinitionError, match="bad.json: not valid JSON"):
        load_definition(bad)
    with pytest.raises(DefinitionError, match="nope.json: file not found"):
        load_definition(tmp_path / "nope.json")
    with pytest.raises(DefinitionError, match="x: no sections"):
        parse_definition({"code": "c", "version": 1, "title": "t", "sections": []}, "x")


def test_item_types_check_required_choices_text_length_and_control_characters():
    citizen = bundled_definitions()[("citizen", 1)]
    answers = {"sex": "M", "age_band": "60+", "resident": "Y", "k01": "Y", "k02": "N", "k03": "Y", "k04": "U"}
    answers |= {f"q{i:02d}": "3" for i in range(1, 11)}
    parsed, errors = citizen.parse_submission(MultiDict(answers | {"comment": "好"}))
    assert errors == {} and parsed == answers | {"comment": "好"}
    parsed, errors = citizen.parse_submission(MultiDict({k: v for k, v in answers.items() if k != "q10"}))
    assert errors == {"q10": "请选择一项"} and parsed["comment"] is None
    assert citizen.parse_submission(MultiDict(answers | {"comment": "字" * 501}))[1] == {"comment": "请不要超过500个字"}
    assert citizen.parse_submission(MultiDict(answers | {"q01": "6"}))[1] == {"q01": "请从列出的选项中选择一项"}
    assert "comment" in citizen.parse_submission(MultiDict(answers | {"comment": "a\x00"}))[1]

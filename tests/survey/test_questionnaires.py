"""Questionnaire versions: a published wording never changes; a new wording is a new version."""
from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from forms import bundled_definitions
from forms.bundled import bundled_raw
from survey import db
from survey.models import Link, Questionnaire, QuestionnaireVersion, Wave
from survey.questionnaires import PublishedVersionChanged, install_bundled
from survey.waves import create_wave
from tests.conftest import form_fields, full_answers

OLD_M08 = "你对网上看到的内容是否健康、适合你满意吗？"


def test_minor_v2_rewords_only_the_ungrammatical_item_and_v1_stays_as_published():
    bundled = bundled_raw()
    v1, v2 = bundled[("minor", 1)], bundled[("minor", 2)]
    definitions = bundled_definitions()
    assert definitions[("minor", 1)].item("m08").label == OLD_M08  # published: never edited
    new = definitions[("minor", 2)].item("m08").label
    assert "是否" not in new and new.endswith("满意吗？") and "网上看到的内容" in new
    # Everything else (codes, choices, scores, the minors flag) is the same, so waves stay comparable.
    same = copy.deepcopy(v2)
    same["version"] = 1
    next(i for s in same["sections"] for i in s["items"] if i["code"] == "m08")["label"] = OLD_M08
    assert same == v1
    assert definitions[("minor", 2)].minors


def test_install_bundled_adds_the_new_version_old_waves_keep_v1_new_waves_field_v2(app):
    yesterday, later = datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=30)
    with app.app_context(), db.write_transaction() as session:
        # A database installed before minor v2 was shipped, with a wave fielding minor v1.
        minor = session.scalar(select(Questionnaire).where(Questionnaire.code == "minor"))
        session.execute(delete(QuestionnaireVersion).where(QuestionnaireVersion.questionnaire_id == minor.id,
                                                           QuestionnaireVersion.version == 2))
        session.expire_all()
        old = create_wave(session, "旧一轮", yesterday - timedelta(days=60), yesterday, ["citizen", "minor"])
        assert [v.version for v in old.versions if v.questionnaire.code == "minor"] == [1]
        stored_v1 = copy.deepcopy(next(v for v in old.versions if v.questionnaire.code == "minor").definition_json)

        versions = install_bundled(session)
        assert sorted((v.questionnaire.code, v.version) for v in versions) == [("citizen", 1), ("minor", 1), ("minor", 2)]
        assert install_bundled(session)  # again: nothing new, nothing raised
        new = create_wave(session, "新一轮", yesterday, later, ["citizen", "minor"])
        old_id, new_id = old.id, new.id
    with app.app_context():
        session = db.session()
        old, new = session.get(Wave, old_id), session.get(Wave, new_id)
        old_minor = next(v for v in old.versions if v.questionnaire.code == "minor")
        new_minor = next(v for v in new.versions if v.questionnaire.code == "minor")
        assert (old_minor.version, new_minor.version) == (1, 2)
        assert old_minor.definition_json == stored_v1 and old_minor.definition.item("m08").label == OLD_M08
        assert new_minor.definition.item("m08").label != OLD_M08


def test_install_bundled_refuses_a_published_version_edited_in_place(app, monkeypatch):
    edited = copy.deepcopy(bundled_raw())
    next(i for s in edited[("minor", 1)]["sections"] for i in s["items"] if i["code"] == "m08")["label"] = "改过的题目？"
    monkeypatch.setattr("survey.questionnaires.bundled_raw", lambda: edited)
    with app.app_context(), db.write_transaction() as session, pytest.raises(PublishedVersionChanged, match="published minor v1"):
        install_bundled(session)
    with app.app_context():
        stored = db.session().scalar(select(QuestionnaireVersion).join(Questionnaire)
                                     .where(Questionnaire.code == "minor", QuestionnaireVersion.version == 1))
        assert stored.definition.item("m08").label == OLD_M08


def test_pupils_get_the_v2_wording_and_are_thanked_with_ni(app, client, city, runner, tmp_path):
    path = tmp_path / "schools.csv"
    path.write_text("school,district,class,grade,pupils\n一中,D1,初一（1）班,7,45\n", encoding="utf-8")
    assert runner.invoke(args=["import-schools", str(path)]).exit_code == 0
    with app.app_context():
        links = {link.audience: link.token for link in db.session().scalars(select(Link).where(Link.audience.is_not(None)))}
    page = client.get(f"/s/{links['pupil']}").get_data(as_text=True)
    assert "你对网上看到的内容健康、适合你的程度满意吗？" in page and OLD_M08 not in page
    answers = {"grade_band": "J1-3", "mk1": "Y", "mk2": "N"} | {f"m{i:02d}": "4" for i in range(1, 11)}
    thanks = client.post(f"/s/{links['pupil']}", data=form_fields(page) | answers).get_data(as_text=True)
    assert "提交成功" in thanks and "感谢你参与" in thanks and "你可以关闭本页面" in thanks and "您" not in thanks
    # Adults are still addressed with 您.
    resident = client.get(f"/s/{city['A1']}").get_data(as_text=True)
    adult = client.post(f"/s/{city['A1']}", data=form_fields(resident) | full_answers()).get_data(as_text=True)
    assert "感谢您参与" in adult and "您可以关闭本页面" in adult


def test_a_database_that_stored_the_json_definitions_keeps_them_when_the_files_become_xlsform(app):
    legacy = Path(__file__).parent.parent / "forms" / "legacy"
    with app.app_context(), db.write_transaction() as session:
        versions = {(v.questionnaire.code, v.version): v for v in session.scalars(select(QuestionnaireVersion))}
        for (code, version), stored in versions.items():  # as an early database stored them
            stored.definition_json = json.loads((legacy / f"{code}-v{version}.json").read_text(encoding="utf-8"))
    with app.app_context(), db.write_transaction() as session:
        installed = install_bundled(session)  # the .xlsx files read as the same definitions: nothing raised
        assert all("languages" not in v.definition_json for v in installed)  # and nothing rewritten
        assert {(v.questionnaire.code, v.version): v.definition for v in installed} == bundled_definitions()
    edited = copy.deepcopy(bundled_raw())
    edited[("citizen", 1)]["sections"][2]["items"][0]["choices"][5]["label"] = "说不清"
    with app.app_context(), db.write_transaction() as session, pytest.raises(PublishedVersionChanged, match="citizen v1"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("survey.questionnaires.bundled_raw", lambda: edited)
            install_bundled(session)

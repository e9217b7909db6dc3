"""Scoring from a questionnaire definition's choice scores, with "don't know" left out."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.errors import AnalysisError
from analysis.scoring import item_scores, respondent_scores, yes_indicators
from forms import bundled_definitions

CITIZEN = bundled_definitions()[("citizen", 1)]


def test_scores_follow_the_definition_and_dont_know_is_left_out():
    answers = pd.DataFrame({f"q{i:02d}": ["5", "0", None] for i in range(1, 11)})
    answers.loc[1, "q01"] = "1"
    scores = item_scores(answers, CITIZEN.choice_scores())
    assert scores.loc[0].tolist() == [100.0] * 10
    assert scores.loc[1, "q01"] == 20.0 and scores.loc[1, "q02":].isna().all()
    respondent = respondent_scores(scores)
    assert respondent.tolist()[:2] == [100.0, 20.0] and np.isnan(respondent[2])
    # The same as the server computes for one respondent.
    assert CITIZEN.respondent_score(answers.loc[1].to_dict()) == (20.0, 1)


def test_unknown_choice_is_an_error():
    with pytest.raises(AnalysisError, match="item q01 has an unknown choice '9'"):
        item_scores(pd.DataFrame({f"q{i:02d}": ["9"] for i in range(1, 11)}), CITIZEN.choice_scores())


def test_yes_type_rates_are_zero_one_and_dont_know_is_missing():
    yes = {i.code: {c.code for c in i.choices if c.yes is True} for i in CITIZEN.rate_items}
    no = {i.code: {c.code for c in i.choices if c.yes is False} for i in CITIZEN.rate_items}
    answers = pd.DataFrame({code: ["Y", "N", "U"] for code in yes})
    values = yes_indicators(answers, yes, no)
    assert values["k01"].tolist()[:2] == [1.0, 0.0] and np.isnan(values["k01"][2])

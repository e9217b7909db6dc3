"""Complaint terms: the domain dictionary keeps terms whole, negations stay with their word."""
from __future__ import annotations

import ast
from pathlib import Path

from analysis.text import TERMS_FILE, domain_terms, is_term, segment, top_terms

COMMENTS = [
    "楼下几盏路灯坏了三个月没人修",
    "路灯坏了没人修，晚上很黑",
    "垃圾清运不及时，夏天臭味很大",
    "垃圾清运不及时",
    "小区乱停车，电动车飞线充电，没人管",
    "广场舞噪音扰民，希望管一管",
    "垃圾分类没人管，垃圾桶不干净",
    "楼道灯坏了好久没有人来修",
    "物业不作为，路面不太平整",
]


def test_fragments_are_gone_and_negated_terms_stay_whole():
    terms = dict(top_terms(COMMENTS, limit=100))
    for fragment in ("人修", "几盏", "及时", "三个", "来修", "人来", "干净", "作为"):
        assert fragment not in terms, fragment
    assert all(len(term) >= 2 for term in terms)
    assert terms["不及时"] == 2 and terms["没人修"] == 2 and terms["没人管"] == 2 and terms["路灯"] == 2
    for whole in ("乱停车", "噪音扰民", "垃圾分类", "飞线充电", "不干净", "不作为", "没有人来修", "不太平整"):
        assert whole in terms, whole


def test_a_negation_joins_the_next_word_only():
    assert segment("没有停车位") == ["没有停车位"]
    assert segment("不，") == ["不", "，"]  # nothing to join: the lone negation is not counted
    assert not is_term("不") and not is_term("几盏") and not is_term("两个") and not is_term("2026")


def test_the_dictionary_has_about_a_hundred_civic_terms():
    terms = [word for word, _ in domain_terms()]
    assert len(terms) >= 100 and len(set(terms)) == len(terms)
    assert {"路灯", "不及时", "没人修", "乱停车", "垃圾分类", "噪音扰民"} <= set(terms)
    assert TERMS_FILE.parent.name == "analysis"


def test_text_analysis_stays_free_of_flask_and_the_database():
    tree = ast.parse(Path(__file__).parents[2].joinpath("analysis", "text.py").read_text(encoding="utf-8"))
    modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not modules & {"flask", "sqlalchemy", "survey"}


def test_pasted_markup_gives_no_terms():
    comments = ['<img src=x onerror="alert(1)"><script>alert(2)</script>', "路灯不亮 <b>路灯</b>"]
    assert top_terms(comments) == [("不亮", 1), ("路灯", 1)]


def test_words_of_direction_and_function_are_no_terms():
    comments = ["晚上出门路灯不亮，走出来很黑", "出门就是垃圾，看到垃圾桶满出来", "出来散步路灯坏了"] * 3
    found = [term for term, _ in top_terms(comments)]
    assert "路灯" in found or "路灯不亮" in found
    assert not {"出来", "出门", "看到"} & set(found)

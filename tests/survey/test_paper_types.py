"""Printed copies of a questionnaire with every item type: each type's layout, sections, intro, privacy.

The tests marked "engine" in their name need the expression engine's full language (the age
constraint ``. >= 16 and . <= 100``, the district -> street cascade, an arithmetic calculation).
"""
from __future__ import annotations

import subprocess
from types import SimpleNamespace

from forms.definition import Definition, parse_definition
from reports.paper import PaperNote, PaperQuestion, paper_questionnaires_pdf
from survey.paper import numbered_items, paper_form
from tests.survey.every_type import NUMBERS, every_type_raw
from tests.survey.test_paper import run


def definition(rules: bool = True) -> Definition:
    return parse_definition(every_type_raw(rules))


def printed_form(d: Definition):
    city = SimpleNamespace(name="测试市", parent=None, level="city")
    street = SimpleNamespace(name="一街道", parent=city, level="street")
    return paper_form(SimpleNamespace(name="甲社区", parent=street, level="community"), SimpleNamespace(name="第一轮"), d)


def by_number(form) -> dict[int, PaperQuestion]:
    return {q.number: q for q in form.questions}


def test_every_type_has_its_printed_layout_and_the_entry_numbering():
    d = definition(rules=False)
    form = printed_form(d)
    q = by_number(form)
    assert [p.number for p in form.questions] == [n.number for n in numbered_items(d)] == list(range(1, 21))
    assert {number: p.layout for number, p in q.items()} == {
        1: "choices", 2: "number", 3: "choices", 4: "choices", 5: "number", 6: "multi", 7: "lines", 8: "lines",
        9: "number", 10: "number", 11: "date", 12: "time", 13: "datetime", 14: "check", 15: "location", 16: "photo",
        17: "choices", 18: "choices", 19: "choices", 20: "lines"}
    assert (q[2].digits, q[2].decimals, q[2].hint) == (4, 0, "周岁")  # no constraint: four boxes
    assert (q[9].digits, q[9].decimals) == (4, 2)  # a decimal: a box after the point
    assert q[10].scale == tuple(str(n) for n in range(11)) and q[10].rule == ""  # a 0-10 scale: a box per value
    assert q[5].label == "您在（第4题的回答）住了几年？"  # a piped label prints its placeholder
    assert q[6].other is q[7] and q[6].choices[-2:] == ((5, "其他"), (6, "很少出门（选此项则不选其他）"))  # 其他 before the exclusive
    assert q[8].when == "第6题选了“公交车”"
    # Sections: headings, the note, the table-list group as a table of the shared choices.
    assert form.intro.startswith("您好！") and form.privacy == "本问卷匿名填写，您的回答只用于统计。"
    assert [s.title for s in form.sections] == ["基本情况", "满意度", ""]
    about, rating, last = form.sections
    assert about.parts[0] == PaperNote("请根据您的实际情况回答。")
    assert [p.number for p in about.parts[1:]] == [n for n in range(1, 17) if n != 7]  # 7 is printed with 6
    assert rating.columns == ((1, "满意"), (2, "一般"), (3, "不满意"), (4, "不了解"))
    assert [p.number for p in rating.parts] == [17, 18, 19] and not about.columns and not last.columns
    assert "adult" not in {p.label for p in form.questions}  # a calculation is never printed


def test_the_printed_pdf_says_every_layout_and_its_qr_code_still_reads(tmp_path):
    form = printed_form(definition(rules=False))
    pdf = tmp_path / "copy.pdf"
    pdf.write_bytes(paper_questionnaires_pdf(form, ["A1-1-0001", "A1-1-0002"]))
    text = run(["pdftotext", "-layout"], pdf)
    flat = " ".join(text.split())
    for expected in (
        "您好！我们正在了解居民对社区的看法", "本问卷匿名填写，您的回答只用于统计。", "基本情况", "请根据您的实际情况回答。",
        "注明“可多选”的题可选多项", "数字、日期和时间请在方格内",
        "6. 您平时怎样出行？（可多选）", "□5 其他", "7. 其他（请注明）：", "5. 您在（第4题的回答）住了几年？",
        "8. 您坐公交车的主要原因是什么？ （第6题选了“公交车”的请回答）", "□0 □1 □2",
        "年 月 日", "时 分", "□ 我已阅读并同意", "纬度 经度", "此题请在手机上拍照上传",
        "满意度", "题目 1 满意 2 一般 3 不满意 4 不了解", "17. 您对环境卫生满意吗？ □ □ □ □",
        "20. 您还有什么意见和建议？", "感谢您的支持与参与！",
    ):
        assert expected in flat, expected
    assert "${" not in text and "请注明其他" not in text
    first = tmp_path / "page"
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(pdf), str(first)], check=True)
    image = next(tmp_path.glob("page*.png"))
    decoded = subprocess.run(["zbarimg", "-q", "--raw", str(image)], capture_output=True, text=True).stdout.split()
    assert decoded == ["A1-1-0001"]


def test_engine_constraint_sizes_the_digit_boxes_and_is_said_near_them_and_a_cascade_prints_grouped(tmp_path):
    d = definition(rules=True)
    form = printed_form(d)
    q = by_number(form)
    assert (q[2].digits, q[2].rule) == (3, "年龄16–100岁")  # 16 to 100: three boxes
    assert q[4].groups == (("东城区", ((1, "东华门街道"), (2, "景山街道"))), ("西城区", ((3, "西长安街街道"), (4, "新街口街道"))))
    assert [n.groups for n in numbered_items(d) if n.item.code == "street"][0][1][0] == "西城区"
    pdf = tmp_path / "copy.pdf"
    pdf.write_bytes(paper_questionnaires_pdf(form, ["A1-1-0001"]))
    flat = " ".join(run(["pdftotext", "-layout"], pdf).split())
    for expected in ("（年龄16–100岁）", "东城区： □1 东华门街道 □2 景山街道", "西城区： □3 西长安街街道 □4 新街口街道"):
        assert expected in flat, expected


def test_numbers_match_the_shared_numbering():
    assert {q.item.code: q.number for q in numbered_items(definition(rules=False))} == NUMBERS


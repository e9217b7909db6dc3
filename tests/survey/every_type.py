"""A questionnaire with every item type, for the paper copy and paper entry tests.

``every_type_sheets(rules=True)`` uses the expression engine's full language: the age constraint
(``. >= 16 and . <= 100``), the district -> street cascade (``choice_filter`` ``district=${district}``)
and an arithmetic calculation. ``rules=False`` leaves those three cells out (and calculates with a
comparison instead), for tests of what does not depend on them.

Question numbers (the same on paper, the phone and the entry page)::

    1 sex  2 age  3 district  4 street  5 years (piped label)  6 transport (multi, or_other)
    7 transport_other  8 bus_reason (asked when 6 holds bus)  9 income  10 happy (range 0-10)
    11 moved  12 wake  13 visit  14 consent  15 where  16 photo  17-19 s1-s3 (table-list)  20 comment
"""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from forms.xlsform import read_xlsform
from survey import db
from survey.models import Wave
from survey.questionnaires import publish
from survey.waves import field_version
from tests.forms.workbooks import Sheets, workbook

HEADER = ["type", "name", "label", "hint", "required", "relevant", "constraint", "constraint_message",
          "choice_filter", "appearance", "calculation", "parameters", "kind", "topic"]
CODE = "alltypes"
NUMBERS = {code: n for n, code in enumerate(
    ("sex", "age", "district", "street", "years", "transport", "transport_other", "bus_reason", "income", "happy",
     "moved", "wake", "visit", "consent", "where", "photo", "s1", "s2", "s3", "comment"), start=1)}


def row(type_: str, name: str, label: str | None = None, **cells: str | None) -> list[object]:
    return [type_, name, label] + [cells.get(column) for column in HEADER[3:]]


def every_type_sheets(rules: bool = True) -> Sheets:
    """Return the workbook's sheets (see the module's docstring)."""
    engine = (lambda text: text) if rules else (lambda text: None)
    return {
        "survey": [
            HEADER,
            row("begin group", "about", "基本情况"),
            row("note", "welcome", "请根据您的实际情况回答。"),
            row("select_one sex", "sex", "您的性别", required="yes"),
            row("integer", "age", "您的年龄", hint="周岁", required="yes",
                constraint=engine(". >= 16 and . <= 100"), constraint_message=engine("年龄16–100岁")),
            row("select_one district", "district", "您住在哪个区？", required="yes"),
            row("select_one street", "street", "您住在哪个街道？", required="yes",
                choice_filter=engine("district=${district}")),
            row("integer", "years", "您在${street}住了几年？"),
            row("select_multiple transport or_other", "transport", "您平时怎样出行？", required="yes"),
            row("text", "bus_reason", "您坐公交车的主要原因是什么？", relevant="selected(${transport}, 'bus')"),
            row("decimal", "income", "您家每月收入大约多少万元？"),
            row("range", "happy", "您的幸福感打几分？", parameters="start=0 end=10 step=1"),
            row("date", "moved", "您是哪天搬来的？"),
            row("time", "wake", "您通常几点出门？"),
            row("datetime", "visit", "入户调查时间"),
            row("acknowledge", "consent", "我已了解本次调查的目的和用途", required="yes"),
            row("geopoint", "where", "住址位置"),
            row("image", "photo", "请拍一张小区环境的照片"),
            row("calculate", "adult", calculation="${age} * 12" if rules else "${sex} = 'F'"),
            row("end group", "about"),
            row("begin group", "rating", "满意度", appearance="table-list"),
            row("select_one sat", "s1", "您对环境卫生满意吗？", required="yes", kind="satisfaction", topic="env"),
            row("select_one sat", "s2", "您对公共秩序满意吗？", required="yes", kind="satisfaction", topic="order"),
            row("select_one sat", "s3", "您对社区服务满意吗？", required="yes", kind="satisfaction", topic="service"),
            row("end group", "rating"),
            row("text", "comment", "您还有什么意见和建议？"),
        ],
        "choices": [
            ["list_name", "name", "label", "score", "exclusive", "district"],
            ["sex", "M", "男"],
            ["sex", "F", "女"],
            ["district", "dc", "东城区"],
            ["district", "xc", "西城区"],
            ["street", "dhm", "东华门街道", None, None, "dc"],
            ["street", "jsh", "景山街道", None, None, "dc"],
            ["street", "xcj", "西长安街街道", None, None, "xc"],
            ["street", "xjk", "新街口街道", None, None, "xc"],
            ["transport", "bus", "公交车"],
            ["transport", "metro", "地铁"],
            ["transport", "bike", "自行车"],
            ["transport", "walk", "步行"],
            ["transport", "none", "很少出门", None, "yes"],
            ["sat", "5", "满意", 100],
            ["sat", "3", "一般", 60],
            ["sat", "1", "不满意", 0],
            ["sat", "0", "不了解", None],
        ],
        "settings": [
            ["form_title", "form_id", "version", "intro", "privacy"],
            ["全题型测试问卷", CODE, 1, "您好！我们正在了解居民对社区的看法，大约需要5分钟。", "本问卷匿名填写，您的回答只用于统计。"],
        ],
        "topics": [
            ["name", "label"],
            ["env", "环境卫生"],
            ["order", "公共秩序"],
            ["service", "社区服务"],
        ],
    }


def every_type_raw(rules: bool = True) -> dict:
    """Return the questionnaire's definition dict (read from its workbook)."""
    return read_xlsform(workbook(every_type_sheets(rules))).raw


def field_every_type(app, rules: bool = True) -> int:
    """Publish the questionnaire and field it in the test city's open wave; return its version id."""
    with app.app_context(), db.write_transaction() as session:
        version = publish(session, every_type_raw(rules)).version
        field_version(session, session.scalars(select(Wave)).one(), version, datetime.now(UTC))
        return version.id

"""Hand-written XLSForm workbooks for the tests: a city's own questionnaire and an ODK-style household survey."""
from __future__ import annotations

import copy
import io

import openpyxl

Sheets = dict[str, list[list[object]]]


def workbook(sheets: Sheets) -> bytes:
    """Return an .xlsx with one sheet per entry (the first row of each is its header)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
        for cells in sheet.iter_rows():
            for cell in cells:
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    cell.data_type = "s"  # typed as text (Excel: a leading apostrophe), not a formula
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


SURVEY_HEADER = ["type", "name", "label::中文", "label::English", "hint::中文", "hint::English",
                 "required", "relevant", "kind", "topic", "attribute"]
# A city's own questionnaire: its own topics, a new weighting attribute (education), a "不了解"
# choice with no score, a note, hints, two languages and one skip rule. Excel rows are list index + 1.
CITY_FORM: Sheets = {
    "survey": [
        SURVEY_HEADER,
        ["begin group", "about", "基本情况", "About you"],                                                   # 2
        ["select_one edu", "education", "您的文化程度", "Education", None, None, "yes", None, None, None, "education"],  # 3
        ["select_one yn", "heard", "您是否听说过“城市更新”？", "Heard of urban renewal", None, None, "yes", None, "awareness", "renewal"],  # 4
        ["end group", "about"],                                                                              # 5
        ["begin group", "rating", "满意度", "Satisfaction"],                                                  # 6
        ["note", "explain", "以下请按您的实际感受打分。", "Rate as you feel."],                                # 7
        ["select_one sat", "s1", "您对老旧小区改造满意吗？", "Old estates renewal",
         "只选一项", "One answer", "yes", "${heard} = 'Y'", "satisfaction", "renewal"],                      # 8
        ["select_one sat", "s2", "您对背街小巷整治满意吗？", "Back streets", None, None, "yes", None, "satisfaction", "streets"],  # 9
        ["text", "comment", "您还有什么意见？", "Anything else?", None, None, None, "${s2} != '0'"],            # 10
        ["end group", "rating"],                                                                             # 11
    ],
    "choices": [
        ["list_name", "name", "label::中文", "label::English", "score", "yes"],
        ["edu", "primary", "小学及以下", "Primary"],
        ["edu", "middle", "初中或高中", "Secondary"],
        ["edu", "college", "大专及以上", "College"],
        ["yn", "Y", "听说过", "Yes", None, 1],
        ["yn", "N", "没听说过", "No", None, 0],
        ["sat", "5", "满意", "Satisfied", 100],
        ["sat", "3", "一般", "So-so", 60],
        ["sat", "1", "不满意", "Dissatisfied", 0],
        ["sat", "0", "不了解", "Don't know", None],
    ],
    "settings": [
        ["form_title", "form_title::English", "form_id", "version", "default_language", "intro", "privacy"],
        ["某市城市更新问卷", "Urban renewal survey", "renewal", 3, "中文", "您好！", "匿名填写。"],
    ],
    "topics": [
        ["name", "label::中文", "label::English"],
        ["renewal", "城市更新", "Urban renewal"],
        ["streets", "背街小巷", "Back streets"],
    ],
}


def city_form() -> Sheets:
    """Return a fresh copy of the city's questionnaire sheets (tests change them)."""
    return copy.deepcopy(CITY_FORM)


# In the style of the ODK / KoboToolbox example forms (household survey, "All widgets"): metadata,
# integer with a constraint, select_multiple, geopoint, calculate, appearance, media and a repeat.
HOUSEHOLD_FORM: Sheets = {
    "survey": [
        ["type", "name", "label", "hint", "required", "constraint", "constraint_message", "relevant",
         "appearance", "media::image", "calculation"],
        ["start", "start"],                                                                                   # 2
        ["end", "end"],                                                                                       # 3
        ["today", "today"],                                                                                   # 4
        ["deviceid", "deviceid"],                                                                             # 5
        ["begin group", "household", "家庭情况"],                                                              # 6
        ["select_one yes_no", "consent", "您是否同意参加本次调查？", None, "yes"],                               # 7
        ["integer", "hh_size", "家庭常住人口数", None, "yes", ". > 0 and . < 30", "人数应在1到29之间"],         # 8
        ["select_multiple assets", "assets", "家中有哪些物品？", "可多选", None, None, None, None, "minimal"],   # 9
        ["geopoint", "location", "住址位置", None, None, None, None, None, "maps"],                            # 10
        ["calculate", "members_x2", None, None, None, None, None, None, None, None, "${hh_size} * 2"],        # 11
        ["select_one satisfied", "service", "您对社区服务满意吗？", None, "yes", None, None,
         "${consent} = 'yes'", "likert", "service.png"],                                                      # 12
        ["text", "comment", "其他意见", "选填"],                                                               # 13
        ["end group"],                                                                                        # 14
        ["begin repeat", "members", "家庭成员"],                                                               # 15
        ["text", "member_name", "称呼"],                                                                       # 16
        ["integer", "member_age", "年龄"],                                                                     # 17
        ["end repeat"],                                                                                       # 18
        ["note", "thanks", "谢谢您的参与！"],                                                                   # 19
    ],
    "choices": [
        ["list_name", "name", "label", "media::image", "score"],
        ["yes_no", "yes", "是"],
        ["yes_no", "no", "否"],
        ["assets", "tv", "电视", "tv.png"],
        ["assets", "fridge", "冰箱", "fridge.png"],
        ["satisfied", "5", "非常满意", None, 100],
        ["satisfied", "3", "一般", None, 60],
        ["satisfied", "1", "不满意", None, 0],
        ["satisfied", "dk", "不知道"],
    ],
    "settings": [
        ["form_title", "form_id", "version", "instance_name"],
        ["社区家庭调查", "household_2024", "2024031501", "concat(${consent}, '-', ${today})"],
    ],
}


def others(warnings: list) -> list:
    """Return the warnings but the one saying which texts have no translation (tested on its own)."""
    return [w for w in warnings if "译文" not in w.message]

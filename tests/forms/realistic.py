"""A realistic city questionnaire for the XLSForm importer: what a 文明办 would write for its 2026 survey.

``REALISTIC_FORM`` has the shape of ``CITY_FORM`` (tests/forms/workbooks.py; build the bytes with
its ``workbook()``): sheets of rows, the first row of each its header. It is written in Chinese
with an English translation and uses, as a city office would, the XLSForm features the new
importer supports: an ``acknowledge`` consent, a ``field-list`` group of background questions
(sex and district as weighting attributes, age as an ``integer`` with a constraint and a
``required_message``, a district -> street cascade by ``choice_filter``, a ``decimal`` whose
label pipes the street), a ``select_multiple ... or_other`` with an exclusive "以上都没有"
(choices column ``exclusive``), a ``table-list`` group of six satisfaction items sharing one
scored list (``score``: 满意 100 ... 不满意 0, 不了解 blank; each with ``kind`` and a ``topic`` of
the ``topics`` sheet), follow-ups with ``and`` / ``or`` / ``not(selected(...))`` rules, a ``date``
checked against ``today()``, a ``range``, a ``calculate`` with ``if()``, notes, and a free-text
comment limited by ``string-length(.) <= 200``.

pyxform 4.5.0 converts it to an XForm that passes ODK Validate (see tests/forms/XLSFORM_EXAMPLES.md).
"""
from __future__ import annotations

import copy
from typing import Any

from tests.forms.workbooks import Sheets

SURVEY_HEADER = ["type", "name", "label::中文", "label::English", "hint::中文", "hint::English",
                 "required", "required_message", "relevant", "constraint", "constraint_message",
                 "choice_filter", "appearance", "calculation", "parameters", "kind", "topic", "attribute"]
# Keyword -> column of SURVEY_HEADER (after type, name and the two labels).
_COLUMNS = {"hint": "hint::中文", "hint_en": "hint::English", **{c: c for c in SURVEY_HEADER[6:]}}


def _row(type_: str, name: str | None = None, label: str | None = None, label_en: str | None = None,
         **cells: Any) -> list[object]:
    """Return one survey row: ``cells`` by keyword (hint, hint_en, required, relevant, ...)."""
    row: list[object] = [type_, name, label, label_en] + [None] * (len(SURVEY_HEADER) - 4)
    for key, value in cells.items():
        row[SURVEY_HEADER.index(_COLUMNS[key])] = value
    while row and row[-1] is None:
        row.pop()
    return row


SAT = {"kind": "satisfaction", "required": "yes"}

# Excel rows are list index + 1 (the header is row 1).
REALISTIC_FORM: Sheets = {
    "survey": [
        SURVEY_HEADER,
        _row("acknowledge", "consent",                                                                          # 2
             "本次调查由市文明办组织，匿名填写，约需5分钟。我已了解以上说明，同意参加。",
             "This survey is run by the city civilisation office. It is anonymous and takes about "
             "5 minutes. I have read the above and agree to take part.",
             hint="点击“确定”后开始答题", hint_en="Tap OK to begin", required="yes",
             required_message="请先确认同意参加调查"),
        _row("begin group", "about", "基本情况", "About you", appearance="field-list"),                          # 3
        _row("select_one sex", "sex", "您的性别", "Your sex", required="yes", attribute="sex"),                   # 4
        _row("integer", "age", "您的年龄（周岁）", "Your age (years)",                                             # 5
             hint="请填写整数", hint_en="Whole years", required="yes", required_message="请填写您的年龄",
             constraint=". >= 16 and . <= 100", constraint_message="年龄应在16到100岁之间"),
        _row("select_one district", "district", "您居住在哪个区？", "Which district do you live in?",            # 6
             required="yes", attribute="district"),
        _row("select_one street", "street", "您居住在哪个街道？", "Which sub-district do you live in?",           # 7
             hint="先选区，再选街道", hint_en="Choose the district first", required="yes",
             choice_filter="district=${district}"),
        _row("decimal", "years", "您在${street}居住了多少年？", "How many years have you lived in ${street}?",   # 8
             hint="不满一年可填小数，如0.5", hint_en="Decimals are fine, e.g. 0.5", required="yes",
             constraint=". >= 0 and . <= ${age}", constraint_message="居住年数应在0到您的年龄之间"),
        _row("end group", "about"),                                                                             # 9
        _row("select_one yn", "heard", "您是否知道本市正在创建全国文明城市？",                                      # 10
             "Do you know the city is running for National Civilised City?",
             required="yes", kind="awareness", topic="campaign"),
        _row("select_multiple channel or_other", "channels",                                                    # 11
             "您是通过哪些渠道了解到文明城市创建的？", "How did you hear about the campaign?",
             hint="可多选；选“以上都没有”时不能再选其他", hint_en="Choose all that apply, or \"None of these\" alone",
             required="yes", relevant="${heard} = 'yes'",
             constraint="not(selected(., 'none') and count-selected(.) > 1)",
             constraint_message="选了“以上都没有”就不能再选其他渠道"),
        _row("note", "rate_intro", "以下请根据您的亲身感受，对本市各方面的情况进行评价。",                              # 12
             "Please rate the following from your own experience."),
        _row("begin group", "rating", "满意度评价", "Satisfaction", appearance="table-list"),                   # 13
        _row("select_one sat", "env", "环境卫生（街道清洁、垃圾分类）", "Cleanliness and waste sorting",           # 14
             topic="environment", **SAT),
        _row("select_one sat", "traffic", "交通秩序（文明驾驶、礼让行人）", "Traffic order and courtesy",          # 15
             topic="traffic", **SAT),
        _row("select_one sat", "safety", "社会治安", "Public safety", topic="safety", **SAT),                  # 16
        _row("select_one sat", "services", "政务窗口和便民服务", "Public service counters", topic="services", **SAT),  # 17
        _row("select_one sat", "facilities", "公园、公厕、无障碍设施等公共设施", "Parks, toilets, accessibility",  # 18
             topic="facilities", **SAT),
        _row("select_one sat", "manners", "市民文明礼仪和社会风气", "Residents' manners", topic="manners", **SAT),  # 19
        _row("end group", "rating"),                                                                            # 20
        _row("select_multiple env_issue", "env_issues", "您认为环境卫生方面最突出的问题是哪些？",                     # 21
             "What are the worst problems with cleanliness?", hint="可多选", hint_en="Choose all that apply",
             relevant="${env} = '1' or ${env} = '2'"),
        _row("select_one change", "env_change", "与创建活动开展前相比，您觉得本市环境卫生有变化吗？",                 # 22
             "Compared with before the campaign, has cleanliness changed?",
             relevant="${env} != '9' and not(selected(${channels}, 'none'))"),
        _row("select_one yn", "volunteered", "过去一年里，您是否参加过志愿服务活动？",                               # 23
             "Have you volunteered in the past year?", required="yes", kind="participation", topic="volunteer"),
        _row("date", "last_volunteer", "您最近一次参加志愿服务是哪一天？", "When did you last volunteer?",         # 24
             hint="记不清可填大概日期", hint_en="An approximate date is fine", relevant="${volunteered} = 'yes'",
             constraint=". <= today()", constraint_message="日期不能晚于今天"),
        _row("range", "overall", "总的来说，您给本市文明城市创建工作打几分？",                                        # 25
             "Overall, how would you rate the campaign?", hint="0分最差，10分最好", hint_en="0 worst, 10 best",
             required="yes", parameters="start=0 end=10 step=1"),
        _row("calculate", "age_group",                                                                          # 26
             calculation="if(${age} < 35, 'young', if(${age} < 60, 'middle', 'senior'))"),
        _row("text", "comment", "您对文明城市创建工作还有什么意见和建议？", "Any other comments or suggestions?",   # 27
             hint="选填，200字以内", hint_en="Optional, up to 200 characters", appearance="multiline",
             constraint="string-length(.) <= 200", constraint_message="请不超过200字"),
        _row("note", "thanks", "问卷到此结束，感谢您的支持！", "That is all. Thank you!"),                          # 28
    ],
    "choices": [
        ["list_name", "name", "label::中文", "label::English", "score", "yes", "exclusive", "district"],
        ["sex", "male", "男", "Male"],
        ["sex", "female", "女", "Female"],
        ["district", "donghu", "东湖区", "Donghu District"],
        ["district", "xishan", "西山区", "Xishan District"],
        ["district", "gaoxin", "高新区", "Hi-tech Zone"],
        ["street", "hubin", "湖滨街道", "Hubin", None, None, None, "donghu"],
        ["street", "jiefang", "解放路街道", "Jiefang Road", None, None, None, "donghu"],
        ["street", "xinhua", "新华街道", "Xinhua", None, None, None, "donghu"],
        ["street", "xiyuan", "西苑街道", "Xiyuan", None, None, None, "xishan"],
        ["street", "fenghuang", "凤凰街道", "Fenghuang", None, None, None, "xishan"],
        ["street", "keji", "科技城街道", "Science City", None, None, None, "gaoxin"],
        ["street", "chuangye", "创业街道", "Chuangye", None, None, None, "gaoxin"],
        ["yn", "yes", "是", "Yes", None, 1],
        ["yn", "no", "否", "No", None, 0],
        ["channel", "tv", "电视、广播", "TV or radio"],
        ["channel", "paper", "报纸", "Newspapers"],
        ["channel", "online", "微信、微博、抖音等网络平台", "WeChat, Weibo, Douyin and other online media"],
        ["channel", "board", "社区宣传栏、公益广告", "Notice boards and public service adverts"],
        ["channel", "staff", "社区工作人员或志愿者宣传", "Community workers or volunteers"],
        ["channel", "transit", "公交、地铁上的宣传", "Buses and the metro"],
        ["channel", "none", "以上都没有", "None of these", None, None, "yes"],
        ["sat", "5", "满意", "Satisfied", 100],
        ["sat", "4", "比较满意", "Fairly satisfied", 80],
        ["sat", "3", "一般", "Neutral", 60],
        ["sat", "2", "不太满意", "Fairly dissatisfied", 40],
        ["sat", "1", "不满意", "Dissatisfied", 0],
        ["sat", "9", "不了解", "Don't know"],
        ["env_issue", "litter", "乱扔垃圾", "Litter"],
        ["env_issue", "sorting", "垃圾分类不到位", "Waste not sorted"],
        ["env_issue", "dogs", "遛狗不牵绳、不清理粪便", "Dogs off the lead, mess not cleaned up"],
        ["env_issue", "stalls", "占道经营", "Stalls blocking the pavement"],
        ["env_issue", "toilets", "公厕不干净", "Dirty public toilets"],
        ["change", "better", "明显改善", "Much better"],
        ["change", "little", "略有改善", "A little better"],
        ["change", "same", "没有变化", "No change"],
        ["change", "worse", "变差了", "Worse"],
    ],
    "settings": [
        ["form_title", "form_title::English", "form_id", "version", "default_language",
         "intro", "intro::English", "privacy", "privacy::English"],
        ["2026年文明城市创建市民满意度调查", "2026 Civilised City Campaign: Residents' Satisfaction Survey",
         "civility2026", 1, "中文",
         "您好！为了解市民对文明城市创建工作的评价，市文明办开展本次调查。问卷约需5分钟，感谢您的支持！",
         "Hello! The city civilisation office would like to know what residents think of the "
         "civilised city campaign. The survey takes about 5 minutes. Thank you!",
         "本调查匿名进行，不收集姓名、电话等个人信息；结果仅以统计形式用于改进工作。",
         "The survey is anonymous: no name or phone number is asked for, and the answers are only "
         "used as statistics to improve the city's work."],
    ],
    "topics": [
        ["name", "label::中文", "label::English"],
        ["campaign", "文明城市创建", "Civilised city campaign"],
        ["environment", "环境卫生", "Cleanliness"],
        ["traffic", "交通秩序", "Traffic order"],
        ["safety", "社会治安", "Public safety"],
        ["services", "便民服务", "Public services"],
        ["facilities", "公共设施", "Public facilities"],
        ["manners", "文明风尚", "Civic manners"],
        ["volunteer", "志愿服务", "Volunteering"],
    ],
}


def realistic_form() -> Sheets:
    """Return a fresh copy of the realistic questionnaire's sheets (tests change them)."""
    return copy.deepcopy(REALISTIC_FORM)

"""PDF documents: Chinese text, an embedded CJK font, vector QR codes, a clear error without fonts."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from types import SimpleNamespace

import pytest

from reports import pdf
from reports.heatmap import Cell, Row, heatmap_html
from reports.pdf import AreaReport, ReportError, area_report_pdf, qr_sheet_pdf


def poppler(tool: str, data: bytes, *args: str) -> str:
    """Run a poppler tool on PDF bytes and return what it prints."""
    assert shutil.which(tool), f"{tool} is missing: sudo apt-get install poppler-utils"
    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(data)
        handle.flush()
        command = [tool, *args, handle.name] + (["-"] if tool == "pdftotext" else [])
        return subprocess.run(command, capture_output=True, check=True).stdout.decode()


def small_report() -> AreaReport:
    return AreaReport(
        city_name="测试市", area_name="一区", area_level="区县", wave_name="第一轮", generated="2026-11-25",
        respondents=321, estimate=78.4, ci_low=76.0, ci_high=80.8, points=None, prob_pass=None,
        rates=[{"label": "创文知晓率", "question": "您是否知道？", "estimate": 0.9, "ci_low": 0.85, "ci_high": 0.95, "n": 300}],
        channels={"扫码": 300, "纸质": 21},
        ranking=[{"name": "甲社区", "street": "一街道", "n": 40, "estimate": 71.2, "eb_estimate": 72.0, "prob_below": 0.99,
                  "status": "below", "status_name": "低于80分", "points_at_stake": 0.31}],
        heatmap=heatmap_html(["环境卫生"], [Row("甲社区", [Cell(71.2, 40, 66.0, 76.4)])]),
        at_risk=[{"name": "甲社区", "unit": "市教育局", "eb_estimate": 72.0, "prob_below": 0.99, "points_at_stake": 0.31,
                  "share_of_lost": 0.2, "status": "below"}],
        problems=[{"community": "甲社区<b>", "topic": "环境卫生", "estimate": 71.2, "ci_low": 66.0, "ci_high": 76.4, "n": 40}],
        method={"iterations": 7, "deff": 1.8, "n_eff": 178.0, "left_out": 0},
    )


def test_area_report_is_chinese_with_an_embedded_cjk_font():
    data = area_report_pdf(small_report())
    assert data.startswith(b"%PDF")
    text = poppler("pdftotext", data)
    for expected in ("一区群众满意度测评报告", "甲社区", "市教育局", "问题清单", "方法说明", "甲社区<b>"):
        assert expected in text, expected
    fonts = poppler("pdffonts", data)
    cjk = [line for line in fonts.splitlines() if "CJK" in line]
    assert cjk and all(" yes yes " in line for line in cjk)


def test_qr_sheet_has_vector_codes_with_names_and_urls():
    entries = [(f"社区{i}", "市民问卷", f"https://survey.example.cn/s/token{i:02d}") for i in range(14)]
    data = qr_sheet_pdf("二维码", entries)
    text = poppler("pdftotext", data)
    assert "社区0" in text and "社区13" in text and "https://survey.example.cn/s/token13" in text
    assert re.search(r"Pages:\s+2\n", poppler("pdfinfo", data))
    # Vector, not bitmaps: no images in the file.
    assert len(poppler("pdfimages", data, "-list").strip().splitlines()) == 2


def test_missing_chinese_font_names_the_package(monkeypatch):
    monkeypatch.setattr(pdf, "_font_found", False)
    monkeypatch.setattr(pdf.subprocess, "run", lambda *a, **k: SimpleNamespace(stdout=""))
    with pytest.raises(ReportError, match="fonts-noto-cjk"):
        area_report_pdf(small_report())


def test_the_font_is_looked_for_once_per_process(monkeypatch):
    monkeypatch.setattr(pdf, "_font_found", False)
    calls = []
    real = pdf.subprocess.run
    monkeypatch.setattr(pdf.subprocess, "run", lambda *a, **k: calls.append(a) or real(*a, **k))
    pdf.ensure_cjk_font()
    pdf.ensure_cjk_font()
    pdf.render_pdf("qr_sheet.html", title="二维码", cards=[])
    assert len(calls) == 1


def test_paper_questionnaires_reuse_one_layout_for_500_copies_with_their_own_serials():
    from reports.paper import PaperForm, PaperQuestion, paper_questionnaires_pdf

    questions = tuple(PaperQuestion(n, f"第{n}个问题？", ((1, "满意"), (2, "不满意"))) for n in range(1, 40))
    form = PaperForm("测试市", "市民问卷", "甲社区", "一街道", "第一轮", questions)
    serials = [f"A1-1-{n:04d}" for n in range(1, 501)]
    data = paper_questionnaires_pdf(form, serials)
    pages = int(re.search(r"Pages:\s+(\d+)", poppler("pdfinfo", data)).group(1))
    assert pages % 500 == 0 and pages >= 1000
    per_copy = pages // 500
    last = poppler("pdftotext", data, "-f", str(pages), "-l", str(pages))
    assert "A1-1-0500" in last and f"第{per_copy}页/共{per_copy}页" in last and "A1-1-0499" not in last
    with pytest.raises(ValueError, match="letters, digits and hyphens"):
        paper_questionnaires_pdf(form, ["甲-1"])

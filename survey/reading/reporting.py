"""Assemble the area report and QR sheets from stored results (numbers in, PDF bytes out)."""
from __future__ import annotations

from datetime import UTC, datetime

from markupsafe import Markup
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from reports.heatmap import heatmap_html
from reports.maps import legend_html, map_svg
from reports.pdf import AreaReport, area_report_pdf, qr_sheet_pdf
from survey.links import public_url
from survey.localtime import format_local
from survey.models import AnalysisRun, Area, Link, Questionnaire, School, SchoolClass
from survey.models.areas import LEVEL_NAMES
from survey.reading import dashboard, wave_changes
from survey.reading.dashboard import STATUS_NAMES
from survey.reading.exports import CHANNEL_NAMES
from survey.reading.maps import area_map
from survey.refresh import data_time_text
from survey.scope import within


def build_area_report(session: Session, run: AnalysisRun, area: Area, link_for=lambda a: None,
                      now: datetime | None = None, compare_wave_id: int | None = None) -> AreaReport:
    """Collect everything the area report shows for one run; times are local (TIMEZONE).

    Changes are since the previous wave, or since ``compare_wave_id`` (none without an earlier run).
    """
    definition = dashboard.run_definition(run)
    changes = wave_changes.comparison(session, run, compare_wave_id)
    result = dashboard.area_result(session, run, area)
    city = run.summary.get("city", {})
    columns, rows = dashboard.heatmap_rows(session, run, area, definition, link_for, level="community")
    communities = dashboard.community_results(session, run, area)
    problems = dashboard.problems(session, run, area, definition)
    community_map = area_map(session, area, run, lambda a: None, lambda s: None)
    root = area
    while root.parent is not None:
        root = root.parent
    return AreaReport(
        city_name=root.name,
        area_name=area.name,
        area_level=LEVEL_NAMES.get(area.level, area.level),
        wave_name=run.wave.name,
        period=f"{format_local(run.wave.opens_at)} 至 {format_local(run.wave.closes_at)}",
        generated=format_local(now or datetime.now(UTC)),
        data_as_of=data_time_text(run),
        respondents=result.n if result else 0,
        estimate=result.estimate if result else None,
        ci_low=result.ci_low if result else None,
        ci_high=result.ci_high if result else None,
        variance_warning=(result.variance_warning or "") if result else "",
        lonely=list((run.summary.get("rake") or {}).get("lonely") or []) if area.level == "city" else [],
        points={k: city[k] for k in ("points", "points_ci_low", "points_ci_high")} if area.level == "city" else None,
        prob_pass=city.get("third_party_prob_pass") if area.level == "city" else None,
        rates=[r.__dict__ for r in dashboard.rates(session, run, area, definition)],
        channels={CHANNEL_NAMES.get(k, k): v for k, v in dashboard.responses_by_channel(run, area).items()},
        ranking=[
            {"name": a.name, "street": a.parent.name if a.parent else "", "n": r.n, "estimate": r.estimate,
             "eb_estimate": r.eb_estimate, "prob_below": r.prob_below_80, "status": r.status,
             "status_name": STATUS_NAMES.get(r.status or "", ""), "points_at_stake": r.points_at_stake or 0.0,
             "change": _change_dict(changes.areas.get(a.id)) if changes else None}
            for r, a in communities
        ],
        change=_change_dict(changes.area(area)) if changes else None,
        change_label=changes.label if changes else "",
        compare_wave=changes.previous.wave.name if changes else "",
        change_note=wave_changes.FDR_NOTE if changes else "",
        heatmap=heatmap_html(columns, rows, caption="单元格为加权满意度（分），以80分为中心着色：红色低于80，蓝色高于80；斜体为样本少于5份。"),
        community_map=(map_svg(community_map.shapes, outlines=community_map.outlines, title=f"{area.name}社区满意度地图",
                               svg_id="report-map") + legend_html()) if community_map.shapes else Markup(""),
        at_risk=[
            {"name": a.name, "unit": a.responsible_unit, "eb_estimate": r.eb_estimate, "prob_below": r.prob_below_80,
             "points_at_stake": r.points_at_stake or 0.0, "share_of_lost": r.share_of_lost, "status": r.status}
            for r, a in communities if r.status in ("below", "at_risk")
        ],
        problems=[
            {"community": p.community.name, "topic": p.topic, "estimate": p.estimate, "ci_low": p.ci_low,
             "ci_high": p.ci_high, "n": p.n}
            for p in problems
        ],
        minors=_minors(session, run, area),
        method={
            "iterations": run.summary["rake"]["iterations"],
            "deff": run.summary["rake"]["deff"],
            "n_eff": run.summary["rake"]["n_eff"],
            "left_out": len(run.summary.get("communities_without_responses", [])),
        },
    )


def _change_dict(change: wave_changes.Change | None) -> dict | None:
    if change is None:
        return None
    return {"text": change.text, "sentence": change.sentence, "interval": change.interval, "basis": change.basis_name,
            "before": change.before, "after": change.after, "significant": change.significant,
            "direction": change.direction}


def _minors(session: Session, run: AnalysisRun, area: Area) -> dict | None:
    summary = dashboard.minor_summary(session, run.wave_id, area)
    if summary is None:
        return None
    own = summary.own
    return {
        "respondents": summary.run.respondents,
        "estimate": own.estimate if own else None, "ci_low": own.ci_low if own else None,
        "ci_high": own.ci_high if own else None,
        "districts": [{"name": a.name, "n": r.n, "estimate": r.estimate, "eb_estimate": r.eb_estimate, "ci_low": r.ci_low,
                       "ci_high": r.ci_high, "status_name": STATUS_NAMES.get(r.status or "", ""), "status": r.status}
                      for a, r in summary.districts],
    }


def area_report(session: Session, run: AnalysisRun, area: Area, now: datetime | None = None,
                compare_wave_id: int | None = None) -> bytes:
    return area_report_pdf(build_area_report(session, run, area, now=now, compare_wave_id=compare_wave_id))


def qr_sheet(session: Session, area: Area, base_url: str | None = None) -> bytes:
    """Return the QR sheet of every enabled community link and school-class link in the area.

    Links start with ``base_url`` when given (see :func:`survey.links.public_url`).
    """
    return qr_sheet_pdf(qr_title(area), qr_entries(session, area, base_url))


def qr_title(area: Area, questionnaire: Questionnaire | None = None) -> str:
    return f"{area.name}{questionnaire.title if questionnaire else '问卷'}二维码"


def qr_entries(session: Session, area: Area, base_url: str | None = None,
               questionnaire: Questionnaire | None = None) -> list[tuple[str, str, str]]:
    """Return (name, detail, url) of every enabled community link and school-class link in the area.

    One questionnaire's links after another (never interleaved), or only ``questionnaire``'s.
    """
    chosen = [Link.questionnaire_id == questionnaire.id] if questionnaire is not None else []
    links = session.execute(
        select(Link, Area).join(Area, Area.id == Link.area_id).join(Questionnaire, Questionnaire.id == Link.questionnaire_id)
        .where(Link.enabled, within(area), *chosen).order_by(Questionnaire.code != "citizen", Questionnaire.code, Area.code)
    ).all()
    entries = [
        (community.name, f"{link.questionnaire.title} · {community.parent.name if community.parent else ''}", public_url(link, base_url))
        for link, community in links
    ]
    return entries + _class_entries(session, and_(within(area), *chosen), base_url)


def school_qr_sheet(session: Session, school: School) -> bytes:
    """Return the QR sheet of one school's enabled class links (parents' and pupils'), and no other school's."""
    return qr_sheet_pdf(school_qr_title(school), school_qr_entries(session, school))


def school_qr_title(school: School) -> str:
    return f"{school.name}家长和学生问卷二维码"


def school_qr_entries(session: Session, school: School) -> list[tuple[str, str, str]]:
    return _class_entries(session, School.id == school.id)


def _class_entries(session: Session, condition, base_url: str | None = None) -> list[tuple[str, str, str]]:
    """Return (class, audience, url) for the enabled class links of the schools that meet ``condition``."""
    class_links = session.execute(
        select(Link, SchoolClass, School)
        .join(SchoolClass, SchoolClass.id == Link.school_class_id)
        .join(School, School.id == SchoolClass.school_id)
        .join(Area, Area.id == School.district_id)
        .where(Link.enabled, condition)
        .order_by(Link.audience, School.name, SchoolClass.grade, SchoolClass.name)  # every parent card, then every pupil card
    ).all()
    return [
        (f"{school.name} {klass.name}", "家长扫码（市民问卷）" if link.audience == "parent" else "学生扫码（未成年人问卷）",
         public_url(link, base_url))
        for link, klass, school in class_links
    ]

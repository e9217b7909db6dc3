"""Plotly figures for the dashboard; returned, never shown."""
from __future__ import annotations

import plotly.graph_objects as go

from analysis.points import PASS_LINE

FONT = "Noto Sans CJK SC, PingFang SC, Microsoft YaHei, sans-serif"


def trend_figure(waves: list[str], estimate: list[float], ci_low: list[float], ci_high: list[float], title: str) -> go.Figure:
    """Return satisfaction over waves with its 95% interval and the 80-point line."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=waves + waves[::-1], y=ci_high + ci_low[::-1], fill="toself", line={"width": 0},
                             fillcolor="rgba(33,102,172,0.15)", hoverinfo="skip", name="95%区间"))
    fig.add_trace(go.Scatter(x=waves, y=estimate, mode="lines+markers", name="满意度", line={"color": "#2166ac"},
                             hovertemplate="%{x}<br>%{y:.1f}分<extra></extra>"))
    fig.add_hline(y=PASS_LINE, line={"color": "#b2182b", "dash": "dash"}, annotation_text="80分线")
    fig.update_layout(title=title, font={"family": FONT}, height=300, margin={"l": 40, "r": 10, "t": 40, "b": 40},
                      yaxis={"title": "分", "range": [min(min(ci_low, default=70), 70) - 2, 100]}, showlegend=False)
    return fig


def cost_figure(names: list[str], points: list[float], title: str) -> go.Figure:
    """Return a bar chart of the points each community costs the city, largest first."""
    fig = go.Figure(go.Bar(x=points, y=names, orientation="h", marker={"color": "#b2182b"},
                           hovertemplate="%{y}：%{x:.3f}分<extra></extra>"))
    fig.update_layout(title=title, font={"family": FONT}, height=max(220, 28 * len(names) + 80),
                      margin={"l": 120, "r": 10, "t": 40, "b": 30}, yaxis={"autorange": "reversed"},
                      xaxis={"title": "失分（满分20分）"})
    return fig

"""The quarterly dashboard export as PDF: the same figures as the CSV, for print.

Only the figures ``casework/dashboard.py`` computes for the caller are drawn (same roles,
same unit scope, same filters), so the PDF never shows a count the caller could not see.
Tables and bar charts are drawn by reportlab (BSD) itself. Text uses a TrueType font with
CJK glyphs, embedded (subset) in the PDF so that any reader shows the Chinese names:
``HOTLINE_PDF_FONT_FILE``, else WenQuanYi Micro Hei where Debian's ``fonts-wqy-microhei``
puts it. Without either, reportlab's built-in CID font ``STSong-Light`` (Adobe-GB1, 简体
and 繁體) is used: it needs no file, but it is not embedded, so a reader without Chinese
fonts shows blanks.
"""

from __future__ import annotations

import asyncio
import functools
import io
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from reportlab.graphics.charts.barcharts import HorizontalBarChart
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.flowables import KeepTogetherSplitAtTop

from casework.app import ACCOUNT, DEPS
from casework.dashboard import DashboardFilter, _flatten, quarter_figures
from hotline.clock import utcnow
from hotline.contract import format_time
from hotline.logging import get_logger
from hotline.org import OrgTree

__all__ = ["add_dashboard_pdf_routes", "quarterly_pdf", "render_pdf"]

_log = get_logger("hotline.casework.dashboard_pdf")
CID_FONT = "STSong-Light"
# fonts-wqy-microhei (Debian/Ubuntu); face 0 of the collection is the proportional one.
DEFAULT_FONT_FILES = (Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),)
_BAR = colors.HexColor("#2f6f9f")
_GRID = colors.HexColor("#b8c4cc")
_HEAD = colors.HexColor("#e8eef2")
# Sections drawn explicitly below; any other top-level figure (added to the dashboard
# later) still reaches the PDF through the "Other figures" table.
_DRAWN = frozenset({"volume", "repeat_rate", "on_time", "backlog_by_age_days", "dispositions",
                    "outcomes", "recusals", "identity_disclosures", "complaints",
                    "supply_chain"})
_COMPLAINTS_DRAWN = frozenset({"time_to_resolve_days", "closed", "review_rate", "satisfaction",
                               "satisfied_rate", "top_root_causes", "remediation_on_time_rate"})


@functools.cache
def font_for(font_file: Path | None = None) -> str:
    """The registered name of the font to draw with (see the module doc), once per file."""
    # A configured file that cannot be read is logged, and the defaults are tried next.
    candidates = [*([] if font_file is None else [font_file]),
                  *(f for f in DEFAULT_FONT_FILES if f.is_file())]
    for path in candidates:
        name = f"Hotline-{path.stem}"
        try:
            pdfmetrics.registerFont(TTFont(name, str(path), subfontIndex=0))
        except (OSError, TTFError) as exc:
            _log.error("pdf.font_unusable", path=str(path), error=str(exc))
            continue
        return name
    _log.warning("pdf.font_not_embedded", font=CID_FONT)
    pdfmetrics.registerFont(UnicodeCIDFont(CID_FONT))
    return CID_FONT


def _styles(font: str) -> dict[str, ParagraphStyle]:
    return {
        "title": ParagraphStyle("title", fontName=font, fontSize=16, leading=20, spaceAfter=4),
        "h2": ParagraphStyle("h2", fontName=font, fontSize=12, leading=15, spaceBefore=8,
                             spaceAfter=4),
        "body": ParagraphStyle("body", fontName=font, fontSize=9, leading=12),
        "small": ParagraphStyle("small", fontName=font, fontSize=8, leading=10,
                                textColor=colors.HexColor("#555555")),
    }


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _percent(rate: Any) -> str:
    return "—" if rate is None else f"{100 * float(rate):.1f} %"


def _table(head: list[str], rows: Iterable[list[Any]], widths: list[float] | None = None,
           *, font: str, text_columns: int = 1) -> Table:
    """A table with a header row; the first ``text_columns`` left-aligned, numbers right."""
    body = [[_text(cell) for cell in row] for row in rows]
    if not body:
        body = [["none in this selection", *[""] * (len(head) - 1)]]
    table = Table([head, *body], colWidths=widths, hAlign="LEFT", repeatRows=1)
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), font, 8.5),
        ("BACKGROUND", (0, 0), (-1, 0), _HEAD),
        ("GRID", (0, 0), (-1, -1), 0.4, _GRID),
        ("ALIGN", (text_columns, 1), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]))
    return table


def _bars(counts: Mapping[str, Any], font: str, width: float = 80 * mm, *,
          keep_order: bool = False) -> Drawing | None:
    """A horizontal bar chart of ``counts`` (label → number), or None when empty."""
    items = [(str(k), float(v)) for k, v in counts.items() if isinstance(v, int | float)]
    if not items or not any(v for _, v in items):
        return None
    if not keep_order:
        items.sort(key=lambda kv: (-kv[1], kv[0]))
    items = items[:15]
    row = 5.5 * mm
    height = row * len(items) + 12 * mm
    drawing = Drawing(width, height)
    chart = HorizontalBarChart()
    chart.x, chart.y = 34 * mm, 8 * mm
    chart.width, chart.height = width - 40 * mm, row * len(items)
    # reportlab draws the first category at the bottom: reverse so the largest is on top
    chart.data = [[v for _, v in reversed(items)]]
    chart.categoryAxis.categoryNames = [label[:22] for label, _ in reversed(items)]
    chart.categoryAxis.labels.fontName = font
    chart.categoryAxis.labels.fontSize = 7.5
    chart.categoryAxis.labels.boxAnchor = "e"
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labels.fontName = font
    chart.valueAxis.labels.fontSize = 7
    top = max(v for _, v in items)
    chart.valueAxis.valueMax = top * 1.15 if top else 1
    chart.valueAxis.valueStep = max(1, round(top / 4)) if top >= 4 else 1
    chart.bars[0].fillColor = _BAR
    chart.bars[0].strokeColor = None
    chart.barLabelFormat = "%g"
    chart.barLabels.fontName = font
    chart.barLabels.fontSize = 7
    chart.barLabels.boxAnchor = "w"
    chart.barLabels.dx = 2
    drawing.add(chart)
    return drawing


def _counted(title: str, counts: Mapping[str, Any], styles: Mapping[str, ParagraphStyle],
             label: str = "", names: Mapping[str, str] | None = None, *,
             keep_order: bool = False) -> Flowable:
    """A section: a count table (with a share column) beside its bar chart.

    Largest first, unless ``keep_order`` (for buckets with a natural order, like age).
    """
    font = styles["body"].fontName
    total = sum(v for v in counts.values() if isinstance(v, int | float)) or 0
    ordered = list(counts.items()) if keep_order else sorted(
        counts.items(), key=lambda kv: (-float(kv[1] or 0), str(kv[0])))
    if names is not None:
        head = [label or "code", "name", "count", "share"]
        rows = [[k, names.get(str(k), ""), v, _percent(v / total if total else None)]
                for k, v in ordered]
        widths = [22 * mm, 30 * mm, 14 * mm, 16 * mm]
        table = _table(head, rows, widths, font=font, text_columns=2)
    else:
        head = [label or "value", "count", "share"]
        rows = [[k, v, _percent(v / total if total else None)] for k, v in ordered]
        widths = [40 * mm, 16 * mm, 18 * mm]
        table = _table(head, rows, widths, font=font)
    chart = _bars({(f"{k} {names.get(str(k), '')}".strip() if names else str(k)): v
                   for k, v in counts.items()}, font, keep_order=keep_order)
    body: Flowable = table
    if chart is not None:
        body = Table([[table, chart]], colWidths=[sum(widths) + 4 * mm, None], hAlign="LEFT",
                     style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                       ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return KeepTogether([Paragraph(title, styles["h2"]), body])


def _describe(wanted: DashboardFilter) -> str:
    parts = [f"{name} = {value}" for name, value in
             (("unit", wanted.unit), ("level", wanted.level), ("channel", wanted.channel),
              ("category", wanted.category), ("severity", wanted.severity),
              ("kind", wanted.kind)) if value]
    return "; ".join(parts) or "none"


def render_pdf(figures: Mapping[str, Any], *, period: str, wanted: DashboardFilter,
               org: OrgTree, viewer_unit: str, generated_at: datetime,
               font_file: Path | None = None) -> bytes:
    """The figures as an A4 PDF: tables and bar charts, Chinese text included."""
    font = font_for(font_file)
    styles = _styles(font)
    names = {code: _unit_name(org, code) for code in figures.get("volume", {}).get("by_unit", {})}
    volume = figures.get("volume", {})
    complaints = figures.get("complaints", {})
    spread = complaints.get("time_to_resolve_days", {})
    story: list[Flowable] = [
        Paragraph(f"Hotline — quarterly figures {period}", styles["title"]),
        Paragraph(f"Cases opened in {period} in the scope of unit {viewer_unit} "
                  f"({_unit_name(org, viewer_unit)}); "
                  f"filters: {_describe(wanted)}. Generated {format_time(generated_at)}.",
                  styles["small"]),
        Spacer(1, 3 * mm),
        Paragraph("Volume", styles["h2"]),
        _table(["figure", "value"], [
            ["cases", volume.get("total", 0)],
            ["real-name reports", volume.get("real_name", 0)],
            ["repeat-report rate", _percent(figures.get("repeat_rate"))],
            ["recusals", figures.get("recusals", 0)],
            *[[f"kind: {k}", v] for k, v in sorted(volume.get("by_kind", {}).items())],
            *[[f"severity: {k}", v] for k, v in sorted(volume.get("by_severity", {}).items())],
        ], [60 * mm, 25 * mm], font=font),
        _counted("By channel", volume.get("by_channel", {}), styles, "channel"),
        _counted("By category", volume.get("by_category", {}), styles, "category"),
        _counted("By unit", volume.get("by_unit", {}), styles, "unit", names),
        KeepTogether([
            Paragraph("On-time rates", styles["h2"]),
            _table(["clock", "on time", "late", "overdue", "running", "on-time rate"],
                   [[name, t.get("met_on_time", 0), t.get("met_late", 0), t.get("overdue", 0),
                     t.get("running", 0), _percent(t.get("rate"))]
                    for name, t in figures.get("on_time", {}).items()],
                   [45 * mm, 18 * mm, 18 * mm, 18 * mm, 18 * mm, 24 * mm], font=font),
            Paragraph("The rate counts met-on-time over met (on time or late) plus overdue; "
                      "running clocks are not yet due.", styles["small"]),
        ]),
        _counted("Backlog by age (days open, not closed)",
                 figures.get("backlog_by_age_days", {}), styles, "days", keep_order=True),
        _counted("Dispositions", figures.get("dispositions", {}), styles, "disposition"),
        _counted("Outcomes", figures.get("outcomes", {}), styles, "outcome"),
        KeepTogether([
            Paragraph("Complaints", styles["h2"]),
            _table(["figure", "value"], [
                ["closed", complaints.get("closed", 0)],
                ["time to resolve, mean (days)", spread.get("mean")],
                ["time to resolve, median (days)", spread.get("median")],
                ["time to resolve, P90 (days)", spread.get("p90")],
                ["review rate", _percent(complaints.get("review_rate"))],
                ["satisfied rate (of answered surveys)",
                 _percent(complaints.get("satisfied_rate"))],
                ["remediation on time", _percent(complaints.get("remediation_on_time_rate"))],
                *[[f"complaints: {k}", _text(v)] for k, v in complaints.items()
                  if k not in _COMPLAINTS_DRAWN and not isinstance(v, Mapping | list)],
            ], [70 * mm, 25 * mm], font=font),
        ]),
        _counted("Satisfaction survey", complaints.get("satisfaction", {}), styles, "answer"),
        KeepTogether([
            Paragraph("Top root causes", styles["h2"]),
            _table(["root cause category", "count"],
                   [list(pair) for pair in complaints.get("top_root_causes", [])],
                   [70 * mm, 18 * mm], font=font),
            Paragraph("The category chosen with each recorded root cause (the root cause "
                      "itself is free text, sealed when recorded); the five most frequent.",
                      styles["small"]),
        ]),
        KeepTogether([
            Paragraph("Confidentiality and supply chain", styles["h2"]),
            _table(["figure", "value"], [
                *[[f"identity disclosures: {k}", v]
                  for k, v in sorted(figures.get("identity_disclosures", {}).items())],
                ["supply-chain reports", figures.get("supply_chain", {}).get("reports", 0)],
                ["negative-list changes",
                 figures.get("supply_chain", {}).get("negative_list_changes", 0)],
            ], [70 * mm, 25 * mm], font=font),
        ]),
    ]
    other = [[metric, dimension, value] for metric, dimension, value in _flatten("", {
        k: v for k, v in figures.items() if k not in _DRAWN})]
    if other:
        story.append(KeepTogetherSplitAtTop([
            Paragraph("Other figures", styles["h2"]),
            _table(["figure", "dimension", "value"], other, [60 * mm, 40 * mm, 25 * mm],
                   font=font, text_columns=2)]))
    out = io.BytesIO()
    document = SimpleDocTemplate(
        out, pagesize=A4, leftMargin=16 * mm, rightMargin=16 * mm, topMargin=16 * mm,
        bottomMargin=16 * mm, title=f"Hotline quarterly figures {period}", author="Hotline",
        subject=f"Dashboard figures {period}", invariant=True)

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(font, 7.5)
        canvas.drawString(16 * mm, 9 * mm, f"Hotline · {period} · confidential")
        canvas.drawRightString(A4[0] - 16 * mm, 9 * mm, f"page {doc.page}")
        canvas.restoreState()

    document.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()


def _unit_name(org: OrgTree, code: str) -> str:
    return (org.get(code).name_zh or org.get(code).name) if code in org else ""


async def quarterly_pdf(request: web.Request) -> web.Response:
    """``?quarter=2026Q3`` (or ``?year=2026&quarter=3``) plus filters: the figures as PDF."""
    period, wanted, body = await quarter_figures(request)
    deps = request.app[DEPS]
    # reportlab is CPU-bound (tens of ms): keep the event loop free for other officers.
    pdf = await asyncio.to_thread(render_pdf, body, period=period, wanted=wanted, org=deps.org,
                                  viewer_unit=request[ACCOUNT].unit, generated_at=utcnow(),
                                  font_file=deps.settings.pdf_font_file)
    return web.Response(
        body=pdf, content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="hotline-{period}.pdf"',
                 "Cache-Control": "no-store"})


def add_dashboard_pdf_routes(app: web.Application) -> None:
    app.add_routes([web.get("/api/v1/dashboard/quarterly.pdf", quarterly_pdf)])

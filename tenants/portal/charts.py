"""The one chart module: server-side SVG charts (pygal) for the portal, staff views and reports.

Every chart is plain SVG without scripts or external assets, so a page reads without JavaScript
and the same markup prints in a PDF; every chart comes with a text equivalent of its values.
Labels are text nodes written by pygal's XML writer, never markup: only its output is marked safe.
"""

from __future__ import annotations

import datetime as dt
import math
import xml.etree.ElementTree as ET  # noqa: N817
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from zoneinfo import ZoneInfo

import pygal
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from pygal.style import Style

Number = float | int | Decimal

# The portal's palette (static/portal/portal.css); text and series colours keep ≥ 4.5:1 on white.
INK = "#1c2430"
INK_SOFT = "#4b5565"
INK_FAINT = "#6b7482"
LINE = "#dfe3e8"
BRAND = "#1f5f8b"
BRAND_TINT = "#cfe1ee"
BAND_EDGE = "#8fb4cf"
OK = "#1d6b3d"
WARN = "#8a5a00"
BAD = "#a32020"
SERIES_COLOURS = (BRAND, "#b34d00", OK, "#6a3d9a", BAD, "#00727a", WARN, "#8c2d6b")
FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'

WIDTH = 640
HEIGHT = 320
SPARKLINE_WIDTH = 120
SPARKLINE_HEIGHT = 28
NO_DATA = "No data"


@dataclass(frozen=True)
class TextTable:
    """A chart's values as rows of display strings, the first column naming each row."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Chart:
    """A rendered chart: ``svg`` to draw, ``text`` (summary and value table) to put beside it."""

    kind: str
    title: str
    svg: SafeString
    summary: str
    table: TextTable

    @cached_property
    def text(self) -> SafeString:
        head = format_html_join("", '<th scope="col">{}</th>', ((c,) for c in self.table.columns))
        body = format_html_join(
            "",
            "<tr>{}</tr>",
            (
                (
                    format_html(
                        '<th scope="row">{}</th>{}',
                        row[0],
                        format_html_join("", '<td class="num">{}</td>', ((c,) for c in row[1:])),
                    ),
                )
                for row in self.table.rows
            ),
        )
        table = (
            format_html(
                '<table class="table table--compact chart__table"><caption>{}</caption>'
                "<thead><tr>{}</tr></thead><tbody>{}</tbody></table>",
                self.title,
                head,
                body,
            )
            if self.table.rows
            else ""
        )
        return format_html('<p class="chart__summary">{}</p>{}', self.summary, table)

    @property
    def is_empty(self) -> bool:
        return not self.table.rows


@dataclass(frozen=True)
class Series:
    """One line of a line chart: ``(aware datetime, value)`` points; a value of None is a gap."""

    name: str
    points: Sequence[tuple[dt.datetime, Number | None]]
    dashed: bool = False  # a derived line (a trend), drawn dashed
    dots_only: bool = False  # marked points (anomalous days), not joined by a line


@dataclass(frozen=True)
class Band:
    """A shaded range over time behind a line chart's series (e.g. the usual spend, median ± k)."""

    name: str
    points: Sequence[tuple[dt.datetime, Number, Number]]  # (time, low, high)


@dataclass(frozen=True)
class BarSeries:
    name: str
    values: Sequence[Number | None]  # one per category
    colours: Sequence[str] | None = None  # per category, e.g. severity colours


@dataclass(frozen=True)
class PeerBand:
    """Other tenants' scores per axis: the shaded band from minimum to maximum, and the median."""

    minimum: Sequence[Number]
    median: Sequence[Number]
    maximum: Sequence[Number]
    label: str = "Peers"


# --- Numbers and times -------------------------------------------------------------------------


def _clean(value) -> float | None:
    """A value to draw, or None for missing, NaN and infinite ones."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def format_number(value: float | None, unit: str = "") -> str:
    """A value for a table or label: grouped digits, at most two decimals, the unit after it."""
    if value is None:
        return "no data"
    text = f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) < 1e15 else f"{value:.3g}"
    if text in ("-0", ""):
        text = "0"
    return f"{text} {unit}" if unit else text


def _axis_number(value: float) -> str:
    """A short axis label: 1.5 k, 2.3 M, 4 G …, so huge values still fit beside the axis."""
    magnitude = abs(value)
    for threshold, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= threshold:
            if magnitude >= threshold * 1e3 and suffix == "T":
                return f"{value:.2g}"
            return f"{value / threshold:.3g} {suffix}"
    return f"{value:.3g}" if magnitude < 1000 else f"{value:,.0f}"


def _zone_name(tz: dt.tzinfo) -> str:
    return getattr(tz, "key", None) or str(tz)


def _tick_step(span: dt.timedelta, most: int = 8) -> dt.timedelta:
    steps = [dt.timedelta(minutes=m) for m in (5, 15, 30)] + [
        dt.timedelta(hours=h) for h in (1, 3, 6, 12, 24, 48, 24 * 7, 24 * 14, 24 * 28)
    ]
    return next((step for step in steps if span / step <= most), steps[-1])


def _most_ticks(width: int) -> int:
    # A time label needs about 80 px: a small chart gets fewer ticks, never fewer than three.
    return max(3, min(8, width // 80))


def _time_ticks(
    start: dt.datetime, end: dt.datetime, tz: dt.tzinfo, most: int = 8
) -> list[dt.datetime]:
    """Tick times on round wall-clock values of ``tz`` (hours, local midnights) in the range."""
    step = _tick_step(end - start, most)
    local = start.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
    if step >= dt.timedelta(days=1):
        local = local.replace(hour=0, minute=0)
    elif step >= dt.timedelta(hours=1):
        hours = int(step.total_seconds() // 3600)
        local = local.replace(minute=0, hour=local.hour - local.hour % hours)
    else:
        minutes = int(step.total_seconds() // 60)
        local = local.replace(minute=local.minute - local.minute % minutes)
    ticks: list[dt.datetime] = []
    while len(ticks) < 50:
        moment = local.replace(tzinfo=tz)
        if moment > end:
            break
        if moment >= start and (not ticks or moment > ticks[-1]):
            ticks.append(moment)
        local += step
    return ticks


def _time_label(moment: dt.datetime, *, tz: dt.tzinfo, with_date: bool, with_time: bool) -> str:
    local = moment.astimezone(tz)
    date = f"{local.day} {local:%b}"
    if with_date and with_time:
        return f"{date} {local:%H:%M}"
    return date if with_date else f"{local:%H:%M}"


def format_time(moment: dt.datetime, tz: dt.tzinfo) -> str:
    """A time in the table of a chart: date, time and zone abbreviation."""
    local = moment.astimezone(tz)
    return f"{local.day} {local:%b %Y %H:%M} {local.tzname()}"


# --- Rendering ---------------------------------------------------------------------------------


def _style(*, colours: Sequence[str] = SERIES_COLOURS, small: bool = False) -> Style:
    return Style(
        background="transparent",
        plot_background="transparent",
        foreground=INK,
        foreground_strong=INK,
        foreground_subtle=INK_FAINT,
        guide_stroke_color=LINE,
        major_guide_stroke_color=LINE,
        font_family=FONT,
        label_font_size=13,
        major_label_font_size=13,
        value_font_size=13,
        value_label_font_size=13,
        title_font_size=16,
        legend_font_size=13,
        tooltip_font_size=12,
        no_data_font_size=16,
        opacity=".85",
        opacity_hover=".85",
        stroke_opacity="1",
        stroke_opacity_hover="1",
        stroke_width="1.5" if small else "2",
        stroke_width_hover="1.5" if small else "2",
        transition="0s",
        colors=tuple(colours),
    )


def _config(**options) -> dict:
    # No JavaScript (nothing fetched, nothing run); an inline <svg> fragment, no XML prolog.
    base = {
        "js": [],
        "disable_xml_declaration": True,
        "explicit_size": True,  # a size of its own where no stylesheet gives one (PDFs)
        "width": WIDTH,
        "height": HEIGHT,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": None,
        "truncate_legend": -1,
        "truncate_label": -1,
        "margin": 12,
        "margin_right": 36,  # room for the last x label, centred on the plot's edge
        "max_scale": 8,
        "spacing": 12,
        "no_data_text": NO_DATA,
        "print_values": False,
        "tooltip_border_radius": 0,
    }
    base.update(options)
    return base


SVG = "http://www.w3.org/2000/svg"


def _register_svg_namespaces() -> None:
    ET.register_namespace("", SVG)
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")


_register_svg_namespaces()


def _finish(
    markup: str,
    *,
    title: str,
    summary: str,
    kind: str,
    fills: dict[int, tuple] | None = None,
) -> SafeString:
    """Pygal's SVG made self-contained and accessible: its script element (a config blob even
    with ``js=[]``) and stock "Pygal" title removed, role, label, <title> and <desc> added."""
    # Pygal's own output (no DTD, no entities), not user input; parsing drops its comments.
    root = ET.fromstring(markup)  # noqa: S314
    for parent in root.iter():
        for child in list(parent):
            if child.tag == f"{{{SVG}}}script":
                parent.remove(child)
    for child in list(root):
        if child.tag == f"{{{SVG}}}title":
            root.remove(child)
    # A series' area and legend swatch filled apart from its stroke (pygal gives both one colour).
    # A third element, False, leaves the area without an outline (a band's closing edges).
    for index, (colour, opacity, *outline) in (fills or {}).items():
        for group in root.iter(f"{{{SVG}}}g"):
            classes = group.get("class", "").split()
            if f"serie-{index}" in classes or group.get("id") == f"activate-serie-{index}":
                for shape in group:
                    if shape.tag in (f"{{{SVG}}}path", f"{{{SVG}}}rect"):
                        style = f"fill:{colour};fill-opacity:{opacity}"
                        if outline == [False] and shape.tag == f"{{{SVG}}}path":
                            style += ";stroke:none"
                        shape.set("style", style)
    desc = ET.Element(f"{{{SVG}}}desc")
    desc.text = summary
    root.insert(0, desc)
    heading = ET.Element(f"{{{SVG}}}title")
    heading.text = title
    root.insert(0, heading)
    root.set("role", "img")
    root.set("aria-label", title)
    root.set("data-chart", kind)
    root.set("style", "max-width:100%;height:auto")
    # The prefix map is global: WeasyPrint's import maps "" to another namespace, which would
    # print every later chart as <ns0:svg> (no drawing in a browser). Map it back each time.
    _register_svg_namespaces()
    # ElementTree escaped every text and attribute it wrote, labels included.
    return mark_safe(ET.tostring(root, encoding="unicode"))  # noqa: S308


def _placeholder(*, title: str, message: str, width: int, height: int, kind: str) -> SafeString:
    """The empty chart: a dashed box saying there is nothing to draw, not an empty frame."""
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'role="img" aria-label="{title}" data-chart="{kind}" style="max-width:100%;height:auto" '
        'class="chart-empty"><title>{title}</title><desc>{message}</desc>'
        '<rect x="1" y="1" width="{iw}" height="{ih}" rx="8" fill="#f5f7f9" stroke="{line}" '
        'stroke-dasharray="6 4"/>'
        '<text x="{cx}" y="{cy}" text-anchor="middle" dominant-baseline="middle" fill="{ink}" '
        'font-family="{font}" font-size="{size}">{message}</text></svg>',
        w=width,
        h=height,
        iw=width - 2,
        ih=height - 2,
        cx=width // 2,
        cy=height // 2,
        title=title,
        message=message,
        kind=kind,
        line="#c5ccd5",
        ink=INK_SOFT,
        font=FONT,
        size=11 if height < 60 else 16,
    )


def _render(chart, *, title: str, summary: str, kind: str, fills=None) -> SafeString:
    markup = chart.render(is_unicode=True)
    return _finish(markup, title=title, summary=summary, kind=kind, fills=fills)


def _axis_title(label: str, unit: str) -> str:
    return f"{label} ({unit})" if unit else label


# --- Charts ------------------------------------------------------------------------------------


def line_chart(
    *,
    title: str,
    series: Sequence[Series],
    y_title: str,
    unit: str = "",
    tz: dt.tzinfo | str | None = None,
    target: Number | None = None,
    target_label: str = "Target",
    y_range: tuple[Number, Number] | None = None,
    gap: dt.timedelta | None = None,
    band: Band | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Chart:
    """Values over time, one line per series, times labelled in ``tz`` (default: the current
    zone). A None value, or two points further apart than ``gap``, break the line. ``band``
    shades a range (low to high) behind the lines."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else (tz or timezone.get_current_timezone())
    cleaned = [
        (s.name, sorted(((t, _clean(v)) for t, v in s.points), key=lambda p: p[0])) for s in series
    ]
    band_points = sorted(
        (
            (t, _clean(low), _clean(high))
            for t, low, high in (band.points if band else ())
            if _clean(low) is not None and _clean(high) is not None
        ),
        key=lambda p: p[0],
    )
    times = sorted({t for _name, points in cleaned for t, v in points})
    drawn = [v for _name, points in cleaned for _t, v in points if v is not None]
    x_title = f"Time ({_zone_name(zone)})"
    y_axis = _axis_title(y_title, unit)
    if not drawn:
        summary = f"{title}: no data to show."
        return Chart(
            "line",
            title,
            _placeholder(title=title, message=NO_DATA, width=width, height=height, kind="line"),
            summary,
            TextTable((), ()),
        )

    start, end = times[0], times[-1]
    if band_points:
        start, end = min(start, band_points[0][0]), max(end, band_points[-1][0])
    if start == end:  # one moment: give the axis some width around it
        start, end = start - dt.timedelta(minutes=30), end + dt.timedelta(minutes=30)
    span = end - start
    ticks = _time_ticks(start, end, zone, _most_ticks(width))
    with_time = _tick_step(span, _most_ticks(width)) < dt.timedelta(days=1)
    with_date = span >= dt.timedelta(hours=20) or (
        start.astimezone(zone).date() != end.astimezone(zone).date()
    )

    def x_format(timestamp: float) -> str:
        moment = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
        return _time_label(moment, tz=zone, with_date=with_date, with_time=with_time)

    low = min(drawn + ([float(target)] if target is not None else []) + [p[1] for p in band_points])
    # The target line is drawn in the ink's soft grey, whatever the number of series; a band is
    # its high edge filled with the tint and its low edge cut back out in white (as the radar's).
    colours = (
        ([BAND_EDGE, BAND_EDGE] if band_points else [])
        + [SERIES_COLOURS[i % len(SERIES_COLOURS)] for i in range(len(cleaned))]
        + [INK_SOFT]
    )
    fills = {0: (BRAND_TINT, 0.8, False), 1: ("#ffffff", 1, False)} if band_points else None
    chart = pygal.XY(
        style=_style(colours=colours),
        **_config(
            width=width,
            height=height,
            x_title=x_title,
            y_title=y_axis,
            show_legend=len(cleaned) > 1 or target is not None or bool(band_points),
            allow_interruptions=True,
            xrange=(start.timestamp(), end.timestamp()),
            range=tuple(map(float, y_range)) if y_range else None,
            include_x_axis=y_range is None and low >= 0,
            x_labels=[tick.timestamp() for tick in ticks],
            x_value_formatter=x_format,
            value_formatter=_axis_number,
            show_x_guides=False,
            # Date-and-time labels ("5 Dec 12:00") are wide: more than four would touch.
            x_label_rotation=0 if len(ticks) <= 4 or not (with_date and with_time) else 20,
            dots_size=2.5,
        ),
    )
    if band_points:
        edge = {"fill": True, "show_dots": False, "stroke_style": {"width": 1}}
        chart.add(
            f"{band.name}: high", [(t.timestamp(), high) for t, _l, high in band_points], **edge
        )
        chart.add(f"{band.name}: low", [(t.timestamp(), low) for t, low, _h in band_points], **edge)
    styles = {s.name: s for s in series}
    for name, points in cleaned:
        values: list[tuple[float, float | None]] = []
        for index, (moment, value) in enumerate(points):
            if gap is not None and index and moment - points[index - 1][0] > gap:
                values.append((moment.timestamp() - 1, None))
            values.append((moment.timestamp(), value))
        options: dict = {"show_dots": _needs_dots([v for _x, v in values])}
        if styles[name].dashed:
            options = {"show_dots": False, "stroke_style": {"width": 2, "dasharray": "6, 4"}}
        elif styles[name].dots_only:
            options = {"show_dots": True, "stroke": False, "dots_size": 5}
        chart.add(name, values, **options)
    if target is not None:
        chart.add(
            f"{target_label}: {format_number(float(target), unit)}",
            [(start.timestamp(), float(target)), (end.timestamp(), float(target))],
            show_dots=False,
            stroke_style={"width": 2, "dasharray": "6, 4"},
        )

    by_time = [dict(points) for _name, points in cleaned]
    band_by_time = {t: (low, high) for t, low, high in band_points}
    if band_points:
        times = sorted(set(times) | set(band_by_time))
    band_columns = (f"{band.name}: low", f"{band.name}: high") if band_points else ()
    table = TextTable(
        ("Time",)
        + tuple(_axis_title(name, unit) for name, _p in cleaned)
        + tuple(_axis_title(column, unit) for column in band_columns),
        tuple(
            (format_time(moment, zone),)
            + tuple(
                format_number(values[moment], unit) if moment in values else "—"
                for values in by_time
            )
            + (
                tuple(
                    format_number(edge, unit) if moment in band_by_time else "—"
                    for edge in band_by_time.get(moment, (None, None))
                )
                if band_points
                else ()
            )
            for moment in times
        ),
    )
    parts = []
    for name, points in cleaned:
        present = [v for _t, v in points if v is not None]
        if present:
            parts.append(
                f"{name}: latest {format_number(present[-1], unit)}, lowest "
                f"{format_number(min(present), unit)}, highest {format_number(max(present), unit)}"
            )
        else:
            parts.append(f"{name}: no data")
    summary = (
        f"{title}, {format_time(times[0], zone)} to {format_time(times[-1], zone)}. "
        + "; ".join(parts)
        + (f"; {target_label.lower()} {format_number(float(target), unit)}" if target else "")
        + (
            f"; shaded: {band.name.lower()}, {format_number(min(p[1] for p in band_points), unit)}"
            f" to {format_number(max(p[2] for p in band_points), unit)}"
            if band_points
            else ""
        )
        + "."
    )
    return Chart(
        "line",
        title,
        _render(chart, title=title, summary=summary, kind="line", fills=fills),
        summary,
        table,
    )


def _needs_dots(values: Sequence[float | None], *, short: int = 60) -> bool:
    """Dots on short series, and wherever a point stands alone between gaps (no line to see)."""
    if len(values) <= short:
        return True
    return any(
        value is not None
        and (index == 0 or values[index - 1] is None)
        and (index == len(values) - 1 or values[index + 1] is None)
        for index, value in enumerate(values)
    )


def bar_chart(
    *,
    title: str,
    categories: Sequence[str],
    series: Sequence[BarSeries],
    y_title: str,
    x_title: str,
    unit: str = "",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Chart:
    """Values per category, one bar per series (e.g. incidents by severity, spend vs budget)."""
    cleaned = [(s, [_clean(v) for v in s.values]) for s in series]
    drawn = [v for _s, values in cleaned for v in values if v is not None]
    if not categories or not drawn:
        return Chart(
            "bar",
            title,
            _placeholder(title=title, message=NO_DATA, width=width, height=height, kind="bar"),
            f"{title}: no data to show.",
            TextTable((), ()),
        )
    # Small whole counts (incidents by severity) get whole ticks: no "0.2 incidents".
    whole_ticks = {}
    if all(float(v).is_integer() for v in drawn) and min(drawn) >= 0 and max(drawn) <= 10:
        whole_ticks = {"y_labels": list(range(max(1, int(max(drawn))) + 1))}
    chart = pygal.Bar(
        style=_style(),
        **_config(
            width=width,
            height=height,
            x_title=x_title,
            y_title=_axis_title(y_title, unit),
            x_labels=list(categories),
            **whole_ticks,
            include_x_axis=True,
            show_x_guides=False,
            show_legend=len(series) > 1,
            print_values=len(categories) * len(series) <= 24,
            print_values_position="top",
            value_formatter=_axis_number,
        ),
    )
    for bar_series, values in cleaned:
        if bar_series.colours:
            values = [
                {"value": v, "color": c} for v, c in zip(values, bar_series.colours, strict=False)
            ]
        chart.add(bar_series.name, values)
    table = TextTable(
        (x_title,) + tuple(_axis_title(s.name, unit) for s, _v in cleaned),
        tuple(
            (str(category),) + tuple(format_number(values[i], unit) for _s, values in cleaned)
            for i, category in enumerate(categories)
        ),
    )
    if len(cleaned) == 1:
        values = cleaned[0][1]
        listing = ", ".join(
            f"{category} {format_number(values[i], unit)}" for i, category in enumerate(categories)
        )
    else:
        listing = "; ".join(
            f"{category}: "
            + ", ".join(f"{s.name} {format_number(values[i], unit)}" for s, values in cleaned)
            for i, category in enumerate(categories)
        )
    summary = f"{title}: {listing}."
    return Chart(
        "bar", title, _render(chart, title=title, summary=summary, kind="bar"), summary, table
    )


def radar_chart(
    *,
    title: str,
    axes: Sequence[str],
    scores: Sequence[Number | None],
    name: str = "Score",
    peers: PeerBand | None = None,
    unit: str = "score 0–100",
    width: int = 560,
    height: int = 480,
) -> Chart:
    """Scores 0–100 per axis (e.g. readiness pillars), with the peers' band and median if given."""
    values = [_clean(v) for v in scores][: len(axes)]
    values += [None] * (len(axes) - len(values))
    if not axes or all(v is None for v in values):
        return Chart(
            "radar",
            title,
            _placeholder(title=title, message=NO_DATA, width=width, height=height, kind="radar"),
            f"{title}: no data to show.",
            TextTable((), ()),
        )
    colours = [BRAND]
    fills = None
    chart_series: list[tuple[str, list, dict]] = []
    if peers is not None:
        # The band is the maximum's area, filled, with the minimum's area cut back out in white;
        # both edges keep a visible outline.
        colours = [BAND_EDGE, BAND_EDGE, INK_SOFT, BRAND]
        fills = {0: (BRAND_TINT, 0.8), 1: ("#ffffff", 0.85)}  # the grid shows through a little
        band = {"fill": True, "show_dots": False}
        chart_series += [
            (f"{peers.label}: maximum", [_clean(v) for v in peers.maximum], band),
            (f"{peers.label}: minimum", [_clean(v) for v in peers.minimum], band),
            (
                f"{peers.label}: median",
                [_clean(v) for v in peers.median],
                {"show_dots": False, "stroke_style": {"width": 2, "dasharray": "6, 4"}},
            ),
        ]
    chart_series.append((name, values, {"show_dots": True}))
    chart = pygal.Radar(
        style=_style(colours=colours),
        **_config(
            width=width,
            height=height,
            range=(0, 100),
            y_labels=[0, 20, 40, 60, 80, 100],
            x_title=unit[:1].upper() + unit[1:],
            value_formatter=_axis_number,
            fill=False,
            dots_size=3.5,
        ),
    )
    # Pygal goes round anticlockwise; readers expect the first axis at the top, then clockwise.
    order = [0, *range(len(axes) - 1, 0, -1)]
    chart.x_labels = [str(axes[i]) for i in order]
    for label, points, options in chart_series:
        drawn = [0.0 if v is None else v for v in points]
        chart.add(label, [drawn[i] if i < len(drawn) else 0.0 for i in order], **options)
    columns = ("Axis", name)
    if peers is not None:
        columns += (f"{peers.label} minimum", f"{peers.label} median", f"{peers.label} maximum")
    rows = []
    for i, axis in enumerate(axes):
        row = (str(axis), format_number(values[i]))
        if peers is not None:
            row += tuple(
                format_number(_clean(seq[i]) if i < len(seq) else None)
                for seq in (peers.minimum, peers.median, peers.maximum)
            )
        rows.append(row)
    listing = ", ".join(f"{axis} {format_number(values[i])}" for i, axis in enumerate(axes))
    summary = f"{title} ({unit}): {listing}."
    if peers is not None:
        summary += f" Shaded: the range of {peers.label.lower()}; dashed: their median."
    return Chart(
        "radar",
        title,
        _render(chart, title=title, summary=summary, kind="radar", fills=fills),
        summary,
        TextTable(columns, tuple(rows)),
    )


def sparkline(
    values: Sequence[Number | None],
    *,
    label: str,
    unit: str = "%",
    positions: Sequence[float] | None = None,
    labels: Sequence[str] | None = None,
    value_range: tuple[Number, Number] = (0, 100),
    position_range: tuple[float, float] | None = None,
) -> Chart:
    """A word-sized line of ``values`` (clamped to ``value_range``) for a table cell.

    ``positions`` place the values across the box (default: evenly); ``labels`` name them in the
    text equivalent (default: 1, 2, …). A None value breaks the line.
    """
    low, high = (float(v) for v in value_range)
    cleaned = [_clean(v) for v in values]
    clamped = [None if v is None else min(max(v, low), high) for v in cleaned]
    xs = [float(x) for x in positions] if positions is not None else list(range(len(values)))
    names = list(labels) if labels is not None else [str(i + 1) for i in range(len(values))]
    table = TextTable(
        ("Point", _axis_title("Value", unit)),
        tuple((names[i], format_number(v, unit)) for i, v in enumerate(cleaned)),
    )
    present = [v for v in cleaned if v is not None]
    if not present:
        svg = _placeholder(
            title=label,
            message=NO_DATA,
            width=SPARKLINE_WIDTH,
            height=SPARKLINE_HEIGHT,
            kind="sparkline",
        )
        return Chart("sparkline", label, svg, f"{label}: no data.", TextTable((), ()))
    summary = (
        f"{label}: {len(present)} values, lowest {format_number(min(present), unit)}, "
        f"highest {format_number(max(present), unit)}, latest {format_number(present[-1], unit)}."
    )
    chart = pygal.XY(
        style=_style(small=True),
        **_config(
            width=SPARKLINE_WIDTH,
            height=SPARKLINE_HEIGHT,
            explicit_size=True,
            show_legend=False,
            show_x_labels=False,
            show_y_labels=False,
            show_x_guides=False,
            show_y_guides=False,
            margin=2,
            margin_right=2,
            spacing=0,
            range=(low, high),
            xrange=position_range
            or ((min(xs), max(xs)) if len(xs) > 1 else (xs[0] - 1, xs[0] + 1)),
            allow_interruptions=True,
            classes=[..., "sparkline"],
            dots_size=2,
        ),
    )
    points = list(zip(xs, clamped, strict=True))
    chart.add(label, points, show_dots=_needs_dots(clamped, short=0))
    svg = _render(chart, title=label, summary=summary, kind="sparkline")
    return Chart("sparkline", label, svg, summary, table)

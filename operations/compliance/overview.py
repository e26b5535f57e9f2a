"""The compliance panel of the client overview: each framework's latest score, its change over
the scans drawn, and the scores over time. One query whatever the number of scans."""

from __future__ import annotations

import datetime as dt

from operations.compliance.selectors import score_history_of_tenant
from tenants.portal.charts import Series, line_chart

#: Scans drawn per framework.
TREND_POINTS = 12


def compliance_overview(*, tenant, now: dt.datetime) -> dict:
    history = score_history_of_tenant(tenant=tenant, points=TREND_POINTS)
    by_framework: dict[str, dict] = {}
    for score in history:  # newest first within each framework version
        entry = by_framework.setdefault(
            score.framework.code,
            {"code": score.framework.code, "title": score.framework.title, "points": []},
        )
        if score.score is not None and score.computed_at is not None:
            entry["points"].append((score.computed_at, float(score.score)))
    frameworks = []
    for entry in by_framework.values():
        points = sorted(entry["points"])
        latest = points[-1][1] if points else None
        change = round(points[-1][1] - points[0][1], 1) if len(points) > 1 else None
        frameworks.append({**entry, "points": points, "latest": latest, "change": change})
    chart = line_chart(
        title="Compliance score per framework",
        # The legend names each framework short: "ISO/IEC 42001:2023 …" reads "ISO/IEC 42001".
        series=[Series(entry["title"].split(":")[0], entry["points"]) for entry in frameworks],
        y_title="Score",
        unit="%",
        y_range=(0, 100),
        height=260,
    )
    return {"frameworks": frameworks, "score_chart": chart}

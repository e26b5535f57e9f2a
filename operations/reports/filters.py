"""Filters of the report list (API)."""

from __future__ import annotations

import django_filters

from msp.api.filters import FilterSet
from operations.reports.models import Report, ReportKind, ReportStatus


class ReportFilter(FilterSet):
    kind = django_filters.ChoiceFilter(choices=ReportKind.choices)
    status = django_filters.ChoiceFilter(choices=ReportStatus.choices)
    period = django_filters.CharFilter(field_name="period_label", label="e.g. 2026-11, 2026-Q4")

    class Meta:
        model = Report
        fields = ["kind", "status", "period"]

"""Filters for the compliance lists."""

from __future__ import annotations

import django_filters
from django.utils import timezone

from msp.api.filters import FilterSet
from operations.compliance import selectors
from operations.compliance.models import (
    CheckSeverity,
    Finding,
    FindingStatus,
    Score,
    SubjectType,
    Waiver,
)

EFFECTIVE_STATUSES = [*FindingStatus.choices, ("waived", "Waived")]


class FindingFilter(FilterSet):
    status = django_filters.ChoiceFilter(
        choices=EFFECTIVE_STATUSES,
        method="filter_status",
        label="pass, fail (unwaived), waived or not_applicable",
    )
    check = django_filters.CharFilter(field_name="check_code")
    framework = django_filters.CharFilter(method="filter_framework", label="Framework code")
    control = django_filters.CharFilter(
        method="filter_control", label="A control, as framework:code (e.g. eu-ai-act:art-14)"
    )
    severity = django_filters.ChoiceFilter(choices=CheckSeverity.choices)
    subject_type = django_filters.ChoiceFilter(choices=SubjectType.choices)
    subject = django_filters.NumberFilter(field_name="subject_id", label="Subject id")
    resolved = django_filters.BooleanFilter(
        field_name="resolved_at", lookup_expr="isnull", exclude=True
    )

    class Meta:
        model = Finding
        fields = ["status", "check", "framework", "control", "severity", "subject_type", "subject"]

    def filter_status(self, queryset, name, value):
        return selectors.findings_with_effective_status(queryset, value)

    def filter_framework(self, queryset, name, value):
        return queryset.filter(check_code__in=selectors.checks_for_framework(value))

    def filter_control(self, queryset, name, value):
        return queryset.filter(check_code__in=selectors.checks_for_control(value))


class WaiverFilter(FilterSet):
    check = django_filters.CharFilter(field_name="check_code")
    active = django_filters.BooleanFilter(method="filter_active")
    subject_type = django_filters.ChoiceFilter(choices=SubjectType.choices)
    subject = django_filters.NumberFilter(field_name="subject_id")

    class Meta:
        model = Waiver
        fields = ["check", "active", "subject_type", "subject"]

    def filter_active(self, queryset, name, value):
        now = timezone.now()
        return (
            queryset.filter(expires_at__gt=now) if value else queryset.filter(expires_at__lte=now)
        )


class ScoreFilter(FilterSet):
    framework = django_filters.CharFilter(field_name="framework__code")
    scan = django_filters.NumberFilter(field_name="scan_id")
    since = django_filters.IsoDateTimeFilter(field_name="computed_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="computed_at", lookup_expr="lt")

    class Meta:
        model = Score
        fields = ["framework", "scan", "since", "until"]

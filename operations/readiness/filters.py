"""Filters for the readiness lists."""

from __future__ import annotations

import django_filters

from msp.api.filters import FilterSet
from operations.readiness.models import Assessment, AssessmentStatus, ReadinessScore


class AssessmentFilter(FilterSet):
    status = django_filters.ChoiceFilter(choices=AssessmentStatus.choices)

    class Meta:
        model = Assessment
        fields = ["status"]


class ReadinessScoreFilter(FilterSet):
    computed_after = django_filters.IsoDateTimeFilter(field_name="computed_at", lookup_expr="gte")
    computed_before = django_filters.IsoDateTimeFilter(field_name="computed_at", lookup_expr="lt")
    level = django_filters.NumberFilter()

    class Meta:
        model = ReadinessScore
        fields = ["computed_after", "computed_before", "level"]

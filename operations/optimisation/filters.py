"""Filters of the recommendation list (API)."""

from __future__ import annotations

import django_filters

from msp.api.filters import FilterSet
from operations.optimisation.models import (
    Recommendation,
    RecommendationKind,
    RecommendationStatus,
    SubjectType,
)


class RecommendationFilter(FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=RecommendationKind.choices)
    status = django_filters.MultipleChoiceFilter(choices=RecommendationStatus.choices)
    subject_type = django_filters.ChoiceFilter(choices=SubjectType.choices)
    subject = django_filters.CharFilter(
        field_name="subject_key", label="Subject key, e.g. 'compute:12', 'ai_system:3', 'tenant'"
    )
    min_saving = django_filters.NumberFilter(
        field_name="estimated_monthly_saving", lookup_expr="gte", min_value=0
    )

    class Meta:
        model = Recommendation
        fields = ["kind", "status", "subject_type", "subject", "min_saving"]

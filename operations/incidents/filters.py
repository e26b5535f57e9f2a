"""Filters of the incident and alert rule lists (API); the admin has its own list filters on the
same selectors."""

from __future__ import annotations

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q

from msp.api.filters import FilterSet
from operations.incidents.models import (
    OPEN_STATUSES,
    AlertCondition,
    AlertRule,
    AlertTarget,
    Incident,
    IncidentCategory,
    IncidentSource,
    IncidentStatus,
)
from operations.incidents.selectors import incidents_breaching_within
from operations.telemetry.metrics import METRICS_BY_NAME
from tenants.models import Severity


class _StrictNullBooleanField(forms.NullBooleanField):
    """true / false (or 1 / 0); anything else is a 400 naming the parameter, not "no filter"."""

    widget = forms.TextInput

    def to_python(self, value):
        text = str(value).strip().lower() if value is not None else ""
        if text == "":
            return None
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ValidationError("Give true or false.", code="invalid")

    def validate(self, value):
        pass


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = _StrictNullBooleanField


class IncidentFilter(FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=IncidentStatus.choices)
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    category = django_filters.ChoiceFilter(choices=IncidentCategory.choices)
    source = django_filters.ChoiceFilter(choices=IncidentSource.choices)
    open = StrictBooleanFilter(method="filter_open", label="Open (not resolved)")
    breached = StrictBooleanFilter(method="filter_breached", label="Any SLA breached")
    breaching_within = django_filters.NumberFilter(
        method="filter_breaching_within",
        min_value=0,
        max_value=60 * 24 * 60,
        label="A running SLA clock runs out within this many minutes",
    )
    waiting_on_client = StrictBooleanFilter(
        field_name="waiting_since", lookup_expr="isnull", exclude=True
    )
    serious = StrictBooleanFilter()
    regulator_overdue = StrictBooleanFilter(field_name="regulator_overdue_now")
    assignee = django_filters.NumberFilter(field_name="assignee_id")
    unassigned = StrictBooleanFilter(field_name="assignee", lookup_expr="isnull")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    dedupe_key = django_filters.CharFilter()
    reference = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Incident
        fields: list[str] = []

    def filter_open(self, queryset, name, value):
        if value is None:
            return queryset
        return (
            queryset.filter(status__in=OPEN_STATUSES)
            if value
            else queryset.exclude(status__in=OPEN_STATUSES)
        )

    def filter_breached(self, queryset, name, value):
        breached = Q(ack_breached_at__isnull=False) | Q(resolve_breached_at__isnull=False)
        if value is None:
            return queryset
        return queryset.filter(breached) if value else queryset.exclude(breached)

    def filter_breaching_within(self, queryset, name, value):
        if value is None:
            return queryset
        return incidents_breaching_within(queryset, minutes=float(value))


class AlertRuleFilter(FilterSet):
    enabled = StrictBooleanFilter()
    auto_resolve = StrictBooleanFilter()
    metric = django_filters.ChoiceFilter(choices=[(name, name) for name in sorted(METRICS_BY_NAME)])
    target = django_filters.ChoiceFilter(choices=AlertTarget.choices)
    condition = django_filters.ChoiceFilter(choices=AlertCondition.choices)
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    category = django_filters.ChoiceFilter(choices=IncidentCategory.choices)
    default_rule = django_filters.NumberFilter(field_name="default_rule_id")
    overrides_default = StrictBooleanFilter(
        field_name="default_rule", lookup_expr="isnull", exclude=True
    )

    class Meta:
        model = AlertRule
        fields: list[str] = []

import django_filters

from msp.api.filters import FilterSet
from operations.jobs.models import JobRun


class JobRunFilter(FilterSet):
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    finished = django_filters.BooleanFilter(
        field_name="finished_at", lookup_expr="isnull", exclude=True
    )
    # Plain ids: a fleet parent lies outside the tenant's scope, so no choice lookup.
    parent = django_filters.NumberFilter(field_name="parent_id")
    schedule = django_filters.NumberFilter(field_name="schedule_id")

    class Meta:
        model = JobRun
        fields = {"kind": ["exact", "in"], "status": ["exact", "in"], "trigger": ["exact"]}

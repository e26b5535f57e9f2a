import django_filters

from msp.api.filters import FilterSet
from tenants.models import ApiToken, AuditEvent, Membership, OnboardingStep, Tenant


class TenantFilter(FilterSet):
    class Meta:
        model = Tenant
        fields = {"status": ["exact", "in"], "region": ["exact"], "industry": ["exact"]}


class MembershipFilter(FilterSet):
    class Meta:
        model = Membership
        fields = ["role"]


class OnboardingStepFilter(FilterSet):
    done = django_filters.BooleanFilter(
        field_name="completed_at", lookup_expr="isnull", exclude=True
    )

    class Meta:
        model = OnboardingStep
        fields = ["required"]


class ApiTokenFilter(FilterSet):
    class Meta:
        model = ApiToken
        fields = ["user__username"]


class AuditEventFilter(FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")
    tenant = django_filters.CharFilter(field_name="tenant__slug")

    class Meta:
        model = AuditEvent
        fields = ["action", "object_type", "source", "request_id"]

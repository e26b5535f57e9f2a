"""Incident API serializers. They validate and present; services do the writing."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from msp.api.serializers import StrictSerializer
from operations.incidents.alerting import ALERT_RULE_FIELDS
from operations.incidents.models import (
    AlertRule,
    AlertRuleDefault,
    Incident,
    IncidentStatus,
    Postmortem,
    PostmortemActionItem,
    SeriousIncidentKind,
    TimelineEntry,
)
from operations.incidents.selectors import (
    RULE_SOURCE_DEFAULT,
    RULE_SOURCE_TENANT,
    alert_rule_source,
    incident_allowed_actions,
)
from operations.incidents.services import incident_assignee_check, user_display_name
from operations.inventory.models import AISystem, ComputeResource, Deployment
from operations.telemetry.metrics import METRICS_BY_NAME
from tenants.api.owned import TenantOwnedSerializer, TenantScopedRelatedField
from tenants.models import Severity

User = get_user_model()

_TEXT = 10000


def _is_staff(serializer) -> bool:
    access = serializer.context.get("access")
    return bool(access and access.is_staff)


def _affected_fields() -> dict:
    return {
        "ai_systems": TenantScopedRelatedField(model=AISystem, many=True, required=False),
        "deployments": TenantScopedRelatedField(model=Deployment, many=True, required=False),
        "compute": TenantScopedRelatedField(model=ComputeResource, many=True, required=False),
    }


@extend_schema_field(
    {"type": "string", "enum": IncidentStatus.values}, component_name="IncidentStatusEnum"
)
class IncidentStatusField(serializers.ChoiceField):
    # Its own schema component: "status" is a common field name with other choice sets.
    def __init__(self, **kwargs):
        super().__init__(choices=IncidentStatus.choices, **kwargs)


class IncidentSerializer(TenantOwnedSerializer):
    """An incident as every caller sees it (nothing here is internal)."""

    status = IncidentStatusField(read_only=True)
    # Declared: a read-only model field would lose allow_blank and document "" as off the enum.
    serious_kind = serializers.ChoiceField(
        choices=SeriousIncidentKind.choices, allow_blank=True, read_only=True
    )
    ai_systems = serializers.SerializerMethodField()
    deployments = serializers.SerializerMethodField()
    compute = serializers.SerializerMethodField()
    assignee_name = serializers.SerializerMethodField()
    reporter_name = serializers.CharField(source="reporter_label", read_only=True)
    waiting_on_client = serializers.BooleanField(source="is_waiting_on_client", read_only=True)
    ack_breached = serializers.SerializerMethodField()
    resolve_breached = serializers.SerializerMethodField()
    regulator_overdue = serializers.SerializerMethodField()
    timeline_count = serializers.SerializerMethodField()
    allowed_actions = serializers.SerializerMethodField()

    class Meta:
        model = Incident
        fields = [
            "id",
            "reference",
            "number",
            "title",
            "description",
            "severity",
            "category",
            "status",
            "source",
            "dedupe_key",
            "ai_systems",
            "deployments",
            "compute",
            "assignee",
            "assignee_name",
            "reporter_name",
            "created_at",
            "updated_at",
            "acknowledged_at",
            "mitigated_at",
            "resolved_at",
            "closed_at",
            "ack_target_minutes",
            "resolve_target_minutes",
            "ack_due_at",
            "resolve_due_at",
            "ack_breached",
            "ack_breached_at",
            "resolve_breached",
            "resolve_breached_at",
            "waiting_on_client",
            "waiting_since",
            "serious",
            "serious_kind",
            "aware_at",
            "regulator_deadline",
            "regulator_notified_at",
            "regulator_overdue",
            "timeline_count",
            "allowed_actions",
        ]
        read_only_fields = fields

    def get_ai_systems(self, obj) -> list[int]:
        return [item.pk for item in obj.ai_systems.all()]

    def get_deployments(self, obj) -> list[int]:
        return [item.pk for item in obj.deployments.all()]

    def get_compute(self, obj) -> list[int]:
        return [item.pk for item in obj.compute.all()]

    def get_assignee_name(self, obj) -> str:
        return user_display_name(obj.assignee) if obj.assignee_id else ""

    def get_ack_breached(self, obj) -> bool:
        return obj.ack_breached_at is not None

    def get_resolve_breached(self, obj) -> bool:
        return obj.resolve_breached_at is not None

    def get_regulator_overdue(self, obj) -> bool:
        annotated = getattr(obj, "regulator_overdue_now", None)
        return bool(annotated) if annotated is not None else obj.regulator_overdue

    def get_timeline_count(self, obj) -> int | None:
        return getattr(obj, "timeline_count", None)

    def get_allowed_actions(self, obj) -> list[str]:
        return incident_allowed_actions(obj, self.context["access"])


class TimelineEntrySerializer(serializers.ModelSerializer):
    author_name = serializers.CharField(source="author_label", read_only=True)

    class Meta:
        model = TimelineEntry
        fields = ["id", "kind", "internal", "body", "data", "author_name", "created_at"]
        read_only_fields = fields


class IncidentDetailSerializer(IncidentSerializer):
    """The detail view adds the timeline the caller may see (the view passes it in)."""

    timeline = serializers.SerializerMethodField()

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "timeline"]
        read_only_fields = fields

    def get_timeline(self, obj) -> list[dict]:
        return TimelineEntrySerializer(self.context["timeline"], many=True).data


class IncidentCreateSerializer(TenantOwnedSerializer):
    """What a client or staff member gives to raise an incident."""

    ai_systems = _affected_fields()["ai_systems"]
    deployments = _affected_fields()["deployments"]
    compute = _affected_fields()["compute"]

    class Meta:
        model = Incident
        fields = [
            "title",
            "description",
            "severity",
            "category",
            "dedupe_key",
            "ai_systems",
            "deployments",
            "compute",
        ]


# Fields that move clocks or the timeline, and where to change them instead.
_NOT_HERE = {
    "status": "Change the status with the actions: …/acknowledge, …/investigate, …/mitigate, "
    "…/resolve, …/close, …/reopen.",
    "severity": "Change the severity with …/severity (it recomputes the SLA clocks).",
    "assignee": "Assign the incident with …/assign.",
}


class IncidentUpdateSerializer(TenantOwnedSerializer):
    """What MSP staff may edit in place (PATCH)."""

    ai_systems = _affected_fields()["ai_systems"]
    deployments = _affected_fields()["deployments"]
    compute = _affected_fields()["compute"]
    serious_kind = serializers.ChoiceField(
        choices=SeriousIncidentKind.choices, required=False, allow_blank=True
    )

    class Meta:
        model = Incident
        fields = [
            "title",
            "description",
            "category",
            "dedupe_key",
            "ai_systems",
            "deployments",
            "compute",
            "serious",
            "serious_kind",
            "aware_at",
            "regulator_notified_at",
        ]

    def to_internal_value(self, data):
        if isinstance(data, dict):
            misplaced = {name: [message] for name, message in _NOT_HERE.items() if name in data}
            if misplaced:
                raise serializers.ValidationError(misplaced)
        return super().to_internal_value(data)


class _NoteMixin:
    """``internal`` defaults to True for MSP staff and is refused for clients."""

    def validate_internal(self, value):
        if value and not _is_staff(self):
            raise serializers.ValidationError("Only MSP staff can write internal notes.")
        return value

    def resolved_internal(self) -> bool:
        return self.validated_data.get("internal", _is_staff(self))


class TransitionSerializer(_NoteMixin, StrictSerializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=_TEXT)
    internal = serializers.BooleanField(required=False)


class CommentSerializer(_NoteMixin, StrictSerializer):
    body = serializers.CharField(max_length=_TEXT)
    internal = serializers.BooleanField(required=False)


class SeveritySerializer(_NoteMixin, StrictSerializer):
    severity = serializers.ChoiceField(choices=Severity.choices)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=_TEXT)
    internal = serializers.BooleanField(required=False)


class WaitOnClientSerializer(StrictSerializer):
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=_TEXT,
        help_text="What the client needs to do; the client sees it.",
    )


class EmptySerializer(StrictSerializer):
    pass


class AssignSerializer(StrictSerializer):
    assignee = serializers.IntegerField(
        allow_null=True, help_text="User id of an MSP admin or assigned engineer; null unassigns."
    )

    def validate_assignee(self, value):
        try:
            return incident_assignee_check(tenant=self.context["tenant"], assignee=value)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.message_dict["assignee"]) from error


class ActionItemSerializer(StrictSerializer):
    description = serializers.CharField(max_length=500)
    owner = serializers.CharField(max_length=200)
    due_date = serializers.DateField(required=False, allow_null=True)
    done = serializers.BooleanField(required=False, default=False)


class PostmortemSerializer(StrictSerializer):
    summary = serializers.CharField(max_length=_TEXT)
    impact = serializers.CharField(required=False, allow_blank=True, max_length=_TEXT)
    timeline_excerpt = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=20000,
        help_text="Left out on the first save: drafted from the client-visible timeline.",
    )
    root_cause = serializers.CharField(required=False, allow_blank=True, max_length=_TEXT)
    action_items = ActionItemSerializer(many=True, required=False)

    def validate_action_items(self, value):
        if len(value) > 100:
            raise serializers.ValidationError("At most 100 action items.")
        return value


class PostmortemActionItemOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = PostmortemActionItem
        fields = ["description", "owner", "due_date", "done"]
        read_only_fields = fields


class PostmortemOutSerializer(serializers.ModelSerializer):
    incident = serializers.CharField(source="incident.reference", read_only=True)
    action_items = PostmortemActionItemOutSerializer(many=True, read_only=True)
    updated_by = serializers.CharField(source="updated_by_label", read_only=True)

    class Meta:
        model = Postmortem
        fields = [
            "incident",
            "summary",
            "impact",
            "timeline_excerpt",
            "root_cause",
            "action_items",
            "created_at",
            "updated_at",
            "updated_by",
        ]
        read_only_fields = fields


class _FlexibleDateTimeField(serializers.Field):
    """An ISO date (midnight UTC) or an ISO date-time."""

    default_error_messages = {"invalid": "Give an ISO date (2026-01-31) or date-time."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            moment = parse_datetime(data)
            if moment is None:
                day = parse_date(data)
                if day is None:
                    self.fail("invalid")
                moment = dt.datetime.combine(day, dt.time.min)
        except ValueError:
            self.fail("invalid")
        if timezone.is_naive(moment):
            moment = moment.replace(tzinfo=dt.UTC)
        return moment

    def to_representation(self, value):
        return value.isoformat()


class MetricsWindowSerializer(StrictSerializer):
    """``?from=&to=``: incidents raised in [from, to); the last 30 days by default."""

    def get_fields(self):
        return {
            "from": _FlexibleDateTimeField(required=False),
            "to": _FlexibleDateTimeField(required=False),
        }

    def validate(self, attrs):
        end = attrs.get("to") or timezone.now()
        start = attrs.get("from") or end - dt.timedelta(days=30)
        if start >= end:
            raise serializers.ValidationError({"from": "'from' must be before 'to'."})
        if end - start > dt.timedelta(days=3660):
            raise serializers.ValidationError({"from": "The window is at most ten years."})
        return {"from": start, "to": end}


class MetricsRowSerializer(serializers.Serializer):
    incidents = serializers.IntegerField()
    acknowledged = serializers.IntegerField()
    resolved = serializers.IntegerField()
    mtta_seconds = serializers.FloatField(allow_null=True)
    mttr_seconds = serializers.FloatField(allow_null=True)
    ack_sla_attainment = serializers.FloatField(allow_null=True)
    resolve_sla_attainment = serializers.FloatField(allow_null=True)
    ack_breaches = serializers.IntegerField()
    resolve_breaches = serializers.IntegerField()


class SeverityMetricsSerializer(MetricsRowSerializer):
    severity = serializers.CharField()


class TenantMetricsSerializer(serializers.Serializer):
    """Documents the shape of the metrics responses (they are built by the selectors)."""

    overall = MetricsRowSerializer()
    by_severity = SeverityMetricsSerializer(many=True)


class MetricsTenantSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


class FleetTenantMetricsSerializer(TenantMetricsSerializer):
    tenant = MetricsTenantSerializer()


class FleetMetricsSerializer(serializers.Serializer):
    """Documents ``GET /api/v1/incidents/metrics``: the window and one row per tenant."""

    def get_fields(self):
        return {
            "from": serializers.DateTimeField(),
            "to": serializers.DateTimeField(),
            "results": FleetTenantMetricsSerializer(many=True),
        }


# --- Alert rules ---------------------------------------------------------------------------------

# The fields a rule is written with: the services accept exactly these.
_RULE_FIELDS = list(ALERT_RULE_FIELDS)


class AlertRuleSerializer(TenantOwnedSerializer):
    """A tenant's rule. With ``default_rule`` (on create only) it overrides that MSP-wide
    default: the fields left out are copied from it, and ``"enabled": false`` switches it off."""

    metric = serializers.ChoiceField(choices=sorted(METRICS_BY_NAME), required=False)
    default_rule = serializers.PrimaryKeyRelatedField(
        queryset=AlertRuleDefault.objects.all(), required=False, allow_null=True
    )
    dedupe_prefix = serializers.CharField(read_only=True)

    class Meta:
        model = AlertRule
        fields = [
            "id",
            *_RULE_FIELDS,
            "default_rule",
            "dedupe_prefix",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "dedupe_prefix", "created_at", "updated_at"]
        # Checked by the service, after an override has copied its default's fields.
        extra_kwargs = {
            "name": {"required": False},
            "condition": {"required": False},
            "threshold": {"required": False},
        }


class AlertRuleDefaultSerializer(serializers.ModelSerializer):
    dedupe_prefix = serializers.CharField(read_only=True)

    class Meta:
        model = AlertRuleDefault
        fields = ["id", *_RULE_FIELDS, "dedupe_prefix", "created_at", "updated_at"]
        read_only_fields = fields


class AlertRuleInForceSerializer(serializers.Serializer):
    """A rule evaluated for the tenant: its own (``source: tenant``, overrides included) or an
    MSP-wide default it has not replaced (``source: default``)."""

    id = serializers.IntegerField()
    source = serializers.SerializerMethodField()
    default_rule = serializers.SerializerMethodField()
    dedupe_prefix = serializers.CharField()
    name = serializers.CharField()
    metric = serializers.CharField()
    target = serializers.CharField()
    resource_pattern = serializers.CharField()
    site_code = serializers.CharField()
    gpu_model = serializers.CharField()
    environment = serializers.CharField()
    condition = serializers.CharField()
    threshold = serializers.FloatField(allow_null=True)
    window_minutes = serializers.IntegerField()
    severity = serializers.CharField()
    category = serializers.CharField()
    auto_resolve = serializers.BooleanField()

    # A plain string in the schema: an enum here would collide with the incident's "source".
    @extend_schema_field(
        {"type": "string", "description": f"{RULE_SOURCE_TENANT} or {RULE_SOURCE_DEFAULT}"}
    )
    def get_source(self, obj) -> str:
        return alert_rule_source(obj)

    def get_default_rule(self, obj) -> int | None:
        return getattr(obj, "default_rule_id", None)


class AlertOutcomeSerializer(serializers.Serializer):
    rule_id = serializers.IntegerField()
    rule_source = serializers.CharField()
    rule_name = serializers.CharField()
    resource_kind = serializers.CharField()
    resource_id = serializers.IntegerField()
    resource_name = serializers.CharField()
    state = serializers.ChoiceField(
        choices=["opened", "appended", "firing", "resolved", "cleared"],
        help_text="opened / appended (an incident was opened or added to), firing (still, "
        "already reported within the window), resolved (auto-resolved), cleared (cleared, "
        "the rule does not auto-resolve).",
    )
    incident_id = serializers.IntegerField(allow_null=True)
    incident = serializers.CharField(help_text="The incident's reference, e.g. ACME-42.")
    lowest = serializers.FloatField(allow_null=True, help_text="None for a no-data rule.")
    highest = serializers.FloatField(allow_null=True, help_text="None for a no-data rule.")
    samples = serializers.IntegerField(help_text="Samples in the window (0 for no-data rules).")
    last_sample_at = serializers.DateTimeField(
        allow_null=True, help_text="The resource's latest sample of the metric, if any."
    )


class AlertEvaluateSerializer(StrictSerializer):
    dry_run = serializers.BooleanField(
        default=False, help_text="Report what would happen, write nothing."
    )


class AlertEvaluationSerializer(serializers.Serializer):
    as_of = serializers.DateTimeField()
    dry_run = serializers.BooleanField()
    rules = serializers.IntegerField(help_text="Rules in force that were evaluated.")
    counts = serializers.DictField(child=serializers.IntegerField())
    outcomes = AlertOutcomeSerializer(many=True)

"""What the gate endpoints and the pipeline answer: a gate report and its override."""

from __future__ import annotations

from rest_framework import serializers

from msp.api.serializers import StrictSerializer
from operations.readiness.gates import GATE_STATUSES


class GateLinkSerializer(serializers.Serializer):
    label = serializers.CharField()
    kind = serializers.CharField()
    id = serializers.IntegerField()


class GateCriterionSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    explanation = serializers.CharField()
    applies = serializers.BooleanField()
    passed = serializers.BooleanField()
    detail = serializers.CharField()
    links = GateLinkSerializer(many=True)


class GateOverrideSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reason = serializers.CharField()
    granted_by = serializers.CharField(source="granted_by.username", allow_null=True, default=None)
    granted_at = serializers.DateTimeField()
    failing_criteria = serializers.ListField(child=serializers.DictField())


def override_data(report) -> dict | None:
    """The report's latest override with whether it clears the move now (None without one)."""
    if report.override is None:
        return None
    return {**GateOverrideSerializer(report.override).data, "in_force": report.override_in_force}


class GateOverrideStateSerializer(GateOverrideSerializer):
    in_force = serializers.BooleanField(
        help_text="Granted during the current pilot and covering every failing criterion."
    )


class GateReportSerializer(serializers.Serializer):
    """``…/ai-systems/{id}/gates``: each criterion, the outcome and the override."""

    ai_system = serializers.DictField(help_text="id, name, stage, stage_changed_at, days_in_pilot")
    passed = serializers.BooleanField(help_text="Every criterion passes.")
    status = serializers.ChoiceField(choices=GATE_STATUSES)
    cleared = serializers.BooleanField(
        help_text="Pilot → production may go ahead: passed, or an override in force."
    )
    criteria = GateCriterionSerializer(many=True)
    override = GateOverrideStateSerializer(allow_null=True)


def gate_report_data(*, ai_system, report) -> dict:
    return {
        "ai_system": {
            "id": ai_system.pk,
            "name": ai_system.name,
            "stage": ai_system.stage,
            "stage_changed_at": serializers.DateTimeField().to_representation(
                ai_system.stage_changed_at
            ),
            "days_in_pilot": report.days_in_pilot,
        },
        "passed": report.passed,
        "status": report.status,
        "cleared": report.cleared,
        "criteria": report.criteria,
        "override": override_data(report),
    }


class GateOverrideRequestSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=4000, help_text="Why the system may go live anyway.")


class PipelineOverrideSerializer(serializers.Serializer):
    reason = serializers.CharField()
    granted_by = serializers.CharField(allow_null=True)
    granted_at = serializers.DateTimeField()
    in_force = serializers.BooleanField()


class PipelineRowSerializer(serializers.Serializer):
    tenant = serializers.DictField(help_text="slug and name")
    ai_system = serializers.DictField(help_text="id, name, stage, risk_tier")
    stage_changed_at = serializers.DateTimeField()
    days_in_pilot = serializers.IntegerField(allow_null=True)
    stalled = serializers.BooleanField()
    gate_status = serializers.ChoiceField(choices=GATE_STATUSES)
    blocking = serializers.ListField(child=serializers.DictField(), help_text="key and title")
    override = PipelineOverrideSerializer(allow_null=True)


class PipelineFiguresSerializer(serializers.Serializer):
    systems = serializers.IntegerField()
    by_stage = serializers.DictField(child=serializers.IntegerField())
    pilots_blocked = serializers.IntegerField()
    median_days_pilot_to_production = serializers.FloatField(allow_null=True)
    promotions_counted = serializers.IntegerField()
    pilots_stalled = serializers.IntegerField()
    stalled_after_days = serializers.IntegerField()
    most_common_blocker = serializers.DictField(allow_null=True, help_text="key, title, pilots")


class PipelineSerializer(serializers.Serializer):
    figures = PipelineFiguresSerializer()
    tenants = serializers.ListField(child=serializers.DictField(), help_text="slug and name")
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = PipelineRowSerializer(many=True)

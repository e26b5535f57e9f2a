from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from msp.api.serializers import StrictSerializer
from operations.jobs.models import JobLog, JobRun, JobStatus, JobTrigger, LogLevel


def _choice_field(name: str, choices):
    """A choice field with its own schema component: "status" and "level" are common names."""

    @extend_schema_field(
        {"type": "string", "enum": [value for value, _ in choices]}, component_name=name
    )
    class Field(serializers.ChoiceField):
        def __init__(self, **kwargs):
            super().__init__(choices=choices, **kwargs)

    Field.__name__ = name.removesuffix("Enum") + "Field"
    return Field


JobStatusField = _choice_field("JobStatusEnum", JobStatus.choices)
JobTriggerField = _choice_field("JobTriggerEnum", JobTrigger.choices)
JobLogLevelField = _choice_field("JobLogLevelEnum", LogLevel.choices)


class JobLogSerializer(serializers.ModelSerializer):
    level = JobLogLevelField(read_only=True)

    class Meta:
        model = JobLog
        fields = ["id", "at", "level", "message", "attempt"]
        read_only_fields = fields


class TriggeredBySerializer(serializers.Serializer):
    type = JobTriggerField()
    label = serializers.CharField()


class JobRunSerializer(serializers.ModelSerializer):
    """A run as clients see it. The traceback is added for MSP staff only."""

    status = JobStatusField(read_only=True)
    triggered_by = serializers.SerializerMethodField()
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    traceback = serializers.SerializerMethodField(
        help_text="Only for MSP staff; absent for client users."
    )

    class Meta:
        model = JobRun
        fields = [
            "id",
            "task_id",
            "kind",
            "status",
            "progress",
            "progress_message",
            "parameters",
            "result",
            "error",
            "traceback",
            "attempts",
            "max_attempts",
            "triggered_by",
            "schedule",
            "parent",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "cancel_requested_at",
            "cancel_requested_by",
        ]
        read_only_fields = fields

    @extend_schema_field(TriggeredBySerializer)
    def get_triggered_by(self, run: JobRun) -> dict:
        return {"type": run.trigger, "label": run.triggered_by_label}

    def get_traceback(self, run: JobRun) -> str | None:
        return run.traceback

    def to_representation(self, instance):
        data = super().to_representation(instance)
        access = self.context.get("access")
        if access is None or not access.is_staff:
            # Tracebacks show internals: never to client users, through any endpoint.
            data.pop("traceback", None)
        return data


class JobRunDetailSerializer(JobRunSerializer):
    logs = serializers.SerializerMethodField()
    logs_truncated = serializers.SerializerMethodField()

    class Meta(JobRunSerializer.Meta):
        fields = [*JobRunSerializer.Meta.fields, "logs", "logs_truncated"]
        read_only_fields = fields

    @extend_schema_field(JobLogSerializer(many=True))
    def get_logs(self, run: JobRun) -> list:
        return JobLogSerializer(self.context["log_tail"][0], many=True).data

    def get_logs_truncated(self, run: JobRun) -> bool:
        return self.context["log_tail"][1]


class JobTriggerSerializer(StrictSerializer):
    kind = serializers.CharField(max_length=64)
    parameters = serializers.JSONField(required=False, default=dict)

    def validate_parameters(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Expected an object.")
        return value


class JobKindSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    parameters = serializers.DictField()
    can_trigger = serializers.BooleanField()


class JobLogPageSerializer(serializers.Serializer):
    results = JobLogSerializer(many=True)
    next_after = serializers.IntegerField()

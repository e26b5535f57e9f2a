"""Telemetry API shapes. The ingest serializers document the format only: batches are checked
by ``services`` in plain loops, never through a serializer per sample."""

from __future__ import annotations

from rest_framework import serializers

from msp.api.serializers import StrictModelSerializer, StrictSerializer
from operations.telemetry.metrics import METRICS_BY_NAME
from operations.telemetry.models import TelemetryPolicy


class SampleSerializer(serializers.Serializer):
    """One sample. Name the resource once: ``resource``, ``compute_id``, ``deployment_id`` or
    ``gpu_id``."""

    resource = serializers.CharField(
        required=False,
        help_text="Natural key: 'compute:<hostname>', 'deployment:<name>' or "
        "'gpu:<hostname>/<index>' ('gpu:<hostname>/<index>/<MIG instance>', 'gpu:GPU-<uuid>').",
    )
    compute_id = serializers.IntegerField(required=False, help_text="Compute resource id.")
    deployment_id = serializers.IntegerField(required=False, help_text="Deployment id.")
    gpu_id = serializers.IntegerField(required=False, help_text="GPU id (inventory gpus).")
    metric = serializers.ChoiceField(
        choices=sorted(METRICS_BY_NAME), help_text="See GET telemetry/metrics."
    )
    ts = serializers.CharField(
        help_text="ISO 8601 with a UTC offset ('2026-11-25T10:00:00Z') or Unix seconds. At "
        "most 5 minutes ahead, and within the tenant's raw retention."
    )
    value = serializers.FloatField(help_text="Finite, within the metric's range.")


class SampleBatchSerializer(serializers.Serializer):
    samples = SampleSerializer(many=True, help_text="1 to 10,000 samples.")


class IngestResultSerializer(serializers.Serializer):
    received = serializers.IntegerField(help_text="Samples in the request (after aggregation).")
    inserted = serializers.IntegerField(help_text="Samples stored by this request.")
    duplicates = serializers.IntegerField(help_text="Samples already stored: skipped.")


class PrometheusResultSerializer(IngestResultSerializer):
    series = serializers.IntegerField(help_text="Series of accepted dcgm-exporter fields.")
    hosts = serializers.IntegerField(help_text="Compute resources they mapped to.")
    gpus = serializers.IntegerField(help_text="GPUs (and MIG instances) they mapped to.")
    learned_gpus = serializers.IntegerField(
        help_text="GPUs seen for the first time: added to the inventory (audited)."
    )
    ignored_families = serializers.ListField(
        child=serializers.CharField(), help_text="Metric families not accepted (ignored)."
    )


class SeriesQuerySerializer(StrictSerializer):
    """``?resource=compute:gpu-node-01&metric=gpu_utilization&from=…&to=…&step=auto``;
    one GPU of it with ``&gpu=3`` (index, ``3/7`` for a MIG instance, or its UUID)."""

    resource = serializers.CharField(required=False, max_length=300)
    compute_id = serializers.IntegerField(required=False, min_value=1)
    deployment_id = serializers.IntegerField(required=False, min_value=1)
    gpu_id = serializers.IntegerField(required=False, min_value=1)
    gpu = serializers.CharField(
        required=False,
        max_length=100,
        help_text="With a compute resource: one of its GPUs, by index ('3'), index and MIG "
        "instance ('3/7') or UUID.",
    )
    metric = serializers.ChoiceField(choices=sorted(METRICS_BY_NAME))
    step = serializers.ChoiceField(choices=["auto", "raw", "1h", "1d"], default="auto")

    def get_fields(self):
        fields = super().get_fields()
        # "from" is a Python keyword: declared here rather than as class attributes.
        fields["from"] = serializers.DateTimeField(
            required=False, help_text="Start (inclusive); default: 24 hours before 'to'."
        )
        fields["to"] = serializers.DateTimeField(
            required=False, help_text="End (exclusive); default: now."
        )
        return fields

    def validate(self, attrs):
        named = [
            name for name in ("resource", "compute_id", "deployment_id", "gpu_id") if name in attrs
        ]
        if len(named) != 1:
            raise serializers.ValidationError(
                {
                    "resource": [
                        "Name the resource once: resource, compute_id, deployment_id or gpu_id."
                    ]
                }
            )
        if "gpu" in attrs and not (
            "compute_id" in attrs or attrs.get("resource", "").startswith("compute:")
        ):
            raise serializers.ValidationError(
                {"gpu": ["Give the GPU's compute resource: resource=compute:… or compute_id."]}
            )
        start, end = attrs.get("from"), attrs.get("to")
        if start is not None and end is not None and start >= end:
            raise serializers.ValidationError({"to": ["Must be after 'from'."]})
        return attrs


class PointSerializer(serializers.Serializer):
    ts = serializers.DateTimeField()
    value = serializers.FloatField(required=False, help_text="Raw points.")
    min = serializers.FloatField(required=False, help_text="Rolled-up points.")
    max = serializers.FloatField(required=False)
    avg = serializers.FloatField(required=False)
    count = serializers.IntegerField(required=False)


class SeriesResourceSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["compute", "deployment", "gpu"])
    id = serializers.IntegerField()
    name = serializers.CharField()


class SeriesMetricSerializer(serializers.Serializer):
    name = serializers.CharField()
    unit = serializers.CharField()


class SeriesSerializer(serializers.Serializer):
    resource = SeriesResourceSerializer()
    metric = SeriesMetricSerializer()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    step = serializers.ChoiceField(choices=["raw", "1h", "1d"])
    points = PointSerializer(many=True)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("start")
        fields["to"] = fields.pop("end")
        return fields


class MetricSerializer(serializers.Serializer):
    name = serializers.CharField()
    unit = serializers.CharField()
    minimum = serializers.FloatField()
    maximum = serializers.FloatField()
    resources = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField()
    dcgm_fields = serializers.ListField(child=serializers.CharField())


class TelemetryPolicySerializer(StrictModelSerializer):
    # null while the tenant runs on the defaults (no policy row yet).
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = TelemetryPolicy
        fields = ["raw_retention_days", "rollup_retention_days", "updated_at"]
        read_only_fields = ["updated_at"]

"""Telemetry endpoints under ``/api/v1/tenants/{slug}/telemetry/``.

Ingest (``samples``, ``prometheus``, ``remote-write``) needs a token with the ``ingest`` scope
and a role that may write; the body is read and decoded by ``parsers`` (size limits, gzip,
snappy) and checked by the services in plain loops. Reads (``series``, ``metrics``,
``policy``) need ``read``; changing the retention policy is for MSP staff.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from django.core.exceptions import ValidationError
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import exceptions, status
from rest_framework.response import Response

from msp.api.throttling import IngestRateThrottle
from operations.telemetry import forwarding, selectors, services
from operations.telemetry.api import serializers as s
from operations.telemetry.api.parsers import (
    json_samples_document,
    read_body,
    read_remote_write_body,
)
from operations.telemetry.metrics import (
    DCGM_FIELDS,
    METRICS,
    METRICS_BY_NAME,
    RESOURCE_KIND_BY_NAME,
    RESOURCE_KIND_LABELS,
)
from operations.telemetry.models import TelemetryPolicy, TelemetrySample
from operations.telemetry.prometheus import telemetry_ingest_prometheus
from operations.telemetry.remote_write import telemetry_ingest_remote_write
from tenants.api.base import TenantScopedAPIView
from tenants.models import TokenScope

_JSON_EXAMPLE = {
    "samples": [
        {
            "resource": "compute:gpu-node-01",
            "metric": "gpu_utilization",
            "ts": "2026-11-25T10:00:00Z",
            "value": 93.5,
        },
        {"compute_id": 12, "metric": "gpu_power_watts", "ts": 1795600800, "value": 2810},
        {
            "resource": "deployment:fraud-scoring-prod",
            "metric": "inference_latency_p95_ms",
            "ts": "2026-11-25T10:00:00+01:00",
            "value": 87.2,
        },
    ]
}
_DCGM_EXAMPLE = """# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-5fd4…",Hostname="gpu-node-01",modelName="NVIDIA H100 80GB HBM3"} 97
DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-0b71…",Hostname="gpu-node-01",modelName="NVIDIA H100 80GB HBM3"} 91
"""  # noqa: E501
_GZIP = OpenApiParameter(
    "Content-Encoding",
    str,
    OpenApiParameter.HEADER,
    enum=["gzip", "identity"],
    description="gzip bodies are inflated with the same size limit on the decompressed bytes.",
)


class _TelemetryView(TenantScopedAPIView):
    model = TelemetrySample
    filter_backends: list = []
    pagination_class = None


class _IngestView(_TelemetryView):
    write_token_scope = TokenScope.INGEST
    # Its own bucket per token: telemetry agents do not eat the API budget.
    throttle_classes = [IngestRateThrottle]


class _ScrapeIngestView(_IngestView):
    """The dcgm-exporter routes: parsed into the database, or forwarded (VictoriaMetrics)."""

    def uses_tenant_rows(self, request) -> bool:
        # Forwarding reads and writes no table: no transaction, no scope to set.
        return not forwarding.telemetry_forwarding()


class SampleIngestView(_IngestView):
    """Ingest a JSON batch of samples: all stored or none.

    Body: ``{"samples": [...]}`` with 1 to 10,000 samples. Each sample names its resource
    once — ``"resource": "compute:<hostname>"``, ``"deployment:<name>"`` or
    ``"gpu:<hostname>/<index>"`` (``gpu:<hostname>/<index>/<MIG instance>`` for a MIG instance,
    ``gpu:GPU-<uuid>`` for a whole GPU) as natural keys, or ``"compute_id"`` /
    ``"deployment_id"`` / ``"gpu_id"`` — and has ``metric`` (see ``telemetry/metrics``),
    ``ts`` (ISO 8601 with a UTC offset, or Unix seconds; at most 5 minutes ahead and within the
    tenant's raw retention) and a finite numeric ``value`` within the metric's range.

    Any invalid sample refuses the batch (400, nothing stored) with one message per problem,
    keyed ``samples.<index>.<field>``; the first 100 samples in error are listed. A sample
    already stored (same resource, metric and ts) is skipped and counted in ``duplicates``, so
    re-sending a batch is safe. ``Content-Encoding: gzip`` is accepted; bodies over
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (10 MiB by default), before or after inflating, get 413.
    Needs an API token with the ``ingest`` scope and a role that may write. Ingest is throttled
    per token in a bucket of its own (``ingest`` rate), apart from the token's API calls.
    """

    @extend_schema(
        request=s.SampleBatchSerializer,
        responses=s.IngestResultSerializer,
        parameters=[_GZIP],
        examples=[OpenApiExample("Three samples", value=_JSON_EXAMPLE, request_only=True)],
    )
    def post(self, request, tenant_slug: str):
        body = read_body(request, media_types=("application/json",))
        # The API's JSON rules (depth, Unicode); non-finite values are refused per sample.
        document = json_samples_document(body)
        if not isinstance(document, dict):
            raise exceptions.ValidationError({"samples": ["This field is required."]})
        unknown = sorted(set(document) - {"samples"})
        if unknown or "samples" not in document:
            errors = {name: ["Unknown field."] for name in unknown}
            if "samples" not in document:
                errors["samples"] = ["This field is required."]
            raise exceptions.ValidationError(errors)
        result = services.telemetry_ingest_batch(tenant=self.tenant, samples=document["samples"])
        return Response(result.as_dict())


def _parse_ts_parameter(raw: str) -> dt.datetime:
    try:
        value = float(raw)
    except ValueError:
        value = raw
    try:
        return services.parse_timestamp(value)
    except ValueError as exc:
        raise ValidationError({"ts": [str(exc)]}) from exc


class PrometheusIngestView(_ScrapeIngestView):
    """Ingest a dcgm-exporter scrape (Prometheus text exposition): all stored or none.

    ``Content-Type: text/plain`` (``version=0.0.4``), optionally gzip. Accepted families:
    ``DCGM_FI_DEV_GPU_UTIL``, ``DCGM_FI_DEV_FB_USED``, ``DCGM_FI_DEV_FB_FREE``,
    ``DCGM_FI_DEV_POWER_USAGE``, ``DCGM_FI_DEV_GPU_TEMP``, ``DCGM_FI_DEV_XID_ERRORS``,
    ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` and ``DCGM_FI_PROF_PIPE_TENSOR_ACTIVE``; others are ignored
    and listed in ``ignored_families``. A series maps to the compute resource whose hostname
    is its ``Hostname`` label, else the one with a GPU of its ``UUID`` label (inventory GPUs or
    ``gpu_uuids``). Each series with a ``gpu`` label is stored as that GPU's own series (kind
    ``gpu``: the node's GPU at that index, and MIG instance ``GPU_I_ID`` if any); a GPU seen
    for the first time is added to the inventory (``gpus``; audited, ``learned_gpus``). The
    GPUs of one host also become one node sample per metric and time: mean utilisation and
    activity (profiling ratios as %), summed memory and power, hottest temperature, highest
    XID. ``received`` counts both.
    Samples without a timestamp take ``?ts=`` (ISO 8601 or Unix seconds) or the receive time.
    Errors (unknown host, NaN, out of range …) are keyed by the series.

    With ``TELEMETRY_BACKEND=victoriametrics`` the text is not parsed here: it is forwarded as
    is to VictoriaMetrics under the tenant's label and answered 202 (no body); every family is
    kept, hosts are mapped when read, new GPUs are learned by a periodic job, and a body
    VictoriaMetrics refuses is a 400 (see docs/telemetry-backends.md).
    """

    @extend_schema(
        request={"text/plain": OpenApiTypes.STR},
        responses={
            200: s.PrometheusResultSerializer,
            202: OpenApiResponse(description="Forwarded to VictoriaMetrics (that backend only)."),
        },
        parameters=[
            _GZIP,
            OpenApiParameter("ts", str, description="Time of samples without a timestamp."),
        ],
        examples=[OpenApiExample("dcgm-exporter", value=_DCGM_EXAMPLE, request_only=True)],
    )
    def post(self, request, tenant_slug: str):
        received_at = timezone.now().replace(microsecond=0)
        body = read_body(request, media_types=("text/plain",))
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError("The body is not UTF-8 text.") from exc
        raw_ts = request.query_params.get("ts")
        if forwarding.telemetry_forwarding():
            forwarding.telemetry_forward_prometheus(
                tenant=self.tenant,
                body=body,
                default_ts=_parse_ts_parameter(raw_ts) if raw_ts else None,
            )
            return Response(status=status.HTTP_202_ACCEPTED)
        default_ts = _parse_ts_parameter(raw_ts) if raw_ts else received_at
        result = telemetry_ingest_prometheus(tenant=self.tenant, text=text, default_ts=default_ts)
        return Response(result.as_dict())


#: Ignored families named in the answer's header (the rest are counted): bounds its size.
MAX_IGNORED_SHOWN = 50


def _remote_write_headers(result) -> dict[str, str]:
    """What the text route answers in JSON, as headers of the 204 (whose body is empty)."""
    counts = result.ingest.as_dict()
    ignored = counts.get("ignored_families", [])
    shown = [quote(name, safe=":") for name in ignored[:MAX_IGNORED_SHOWN]]
    if len(ignored) > MAX_IGNORED_SHOWN:
        shown.append(f"+{len(ignored) - MAX_IGNORED_SHOWN} more")
    headers = {
        f"X-Groundwork-{key.title()}": str(counts[key])
        for key in ("received", "inserted", "duplicates")
        if key in counts
    }
    headers["X-Groundwork-Stale-Markers"] = str(result.stale_markers)
    if shown:
        headers["X-Groundwork-Ignored-Families"] = ",".join(shown)
    return headers


_REMOTE_WRITE_HEADERS = {
    "X-Groundwork-Received": "Samples stored or already there (one per host, metric and time).",
    "X-Groundwork-Inserted": "Samples newly stored.",
    "X-Groundwork-Duplicates": "Samples already stored (a resent batch).",
    "X-Groundwork-Stale-Markers": "Prometheus staleness markers skipped.",
    "X-Groundwork-Ignored-Families": "Families not ingested, comma-separated, URL-encoded; at "
    f"most {MAX_IGNORED_SHOWN} named, then '+N more'. Absent when none.",
}


class RemoteWriteView(_ScrapeIngestView):
    """Prometheus remote write 1.0: a Prometheus server, vmagent or an OpenTelemetry Collector
    pushes the dcgm-exporter series it scrapes. All stored or none.

    The body is a snappy-compressed (block format, not framed) protobuf
    ``prometheus.WriteRequest``, sent with ``Content-Encoding: snappy``, ``Content-Type:
    application/x-protobuf`` and ``X-Prometheus-Remote-Write-Version: 0.1.0``. Series map to
    compute resources as on ``telemetry/prometheus`` (``Hostname``, else ``UUID``); the metric
    is the ``__name__`` label; families outside the dcgm-exporter fields are ignored.
    Timestamps are milliseconds; staleness markers (NaN ``0x7ff0000000000002``) are skipped.

    Answers 204 with the counts in ``X-Groundwork-*`` headers. Invalid input (an unknown host, a
    NaN, a timestamp outside the window, bytes that are not a WriteRequest) is a 400 that
    Prometheus does not retry: the batch is dropped, and the error body says why. A body over
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` compressed, or declaring more once decompressed, is a 413;
    another content type or encoding (remote write 2.0 included) a 415.

    With ``TELEMETRY_BACKEND=victoriametrics`` the body is forwarded still compressed to
    VictoriaMetrics' ``/api/v1/write`` under the tenant's label (204, no count headers); a
    body it refuses is a 400.
    """

    @extend_schema(
        operation_id="telemetry_remote_write",
        request={"application/x-protobuf": OpenApiTypes.BINARY},
        parameters=[
            OpenApiParameter(
                "Content-Encoding",
                str,
                OpenApiParameter.HEADER,
                required=True,
                enum=["snappy"],
                description="Snappy block format, as every remote write sender sends.",
            ),
            OpenApiParameter(
                "X-Prometheus-Remote-Write-Version",
                str,
                OpenApiParameter.HEADER,
                enum=["0.1.0"],
                description="Sent by Prometheus; remote write 1.0 is what is accepted.",
            ),
            *(
                OpenApiParameter(
                    name,
                    str if name.endswith("Families") else int,
                    OpenApiParameter.HEADER,
                    description=description,
                    response=[204],
                )
                for name, description in _REMOTE_WRITE_HEADERS.items()
            ),
        ],
        responses={204: OpenApiResponse(description="Stored (or already stored).")},
    )
    def post(self, request, tenant_slug: str):
        if forwarding.telemetry_forwarding():
            body = read_remote_write_body(request, decompress=False)
            forwarding.telemetry_forward_remote_write(tenant=self.tenant, body=body)
            return Response(status=status.HTTP_204_NO_CONTENT)
        data = read_remote_write_body(request)
        result = telemetry_ingest_remote_write(tenant=self.tenant, data=data)
        return Response(status=status.HTTP_204_NO_CONTENT, headers=_remote_write_headers(result))


class SeriesView(_TelemetryView):
    """Points of one series for charts: raw samples or hourly / daily rollups.

    ``resource`` (``compute:<hostname>`` / ``deployment:<name>`` /
    ``gpu:<hostname>/<index>[/<MIG instance>]``) or ``compute_id`` / ``deployment_id`` /
    ``gpu_id``; with a compute resource, ``gpu`` picks one of its GPUs (index, ``index/MIG
    instance`` or UUID) and answers that GPU's own series (``resource.kind`` ``gpu``, named
    ``<hostname>/<index>``); ``metric``; ``from`` (default 24 h before ``to``) and ``to`` (default
    now), ISO 8601; ``step``: ``raw``, ``1h``, ``1d`` or ``auto`` (raw up to a day, hourly up
    to 31 days, daily beyond; hourly when a day holds more than 10,000 raw points). Rolled-up
    points carry min, max, avg and count; an hour appears once the rollup job has run after
    its samples arrived (every few minutes). A resource of another tenant is unknown (400).
    """

    @extend_schema(parameters=[s.SeriesQuerySerializer], responses=s.SeriesSerializer)
    def get(self, request, tenant_slug: str):
        query = s.SeriesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        resource = self._resource(params)
        end = params.get("to") or timezone.now()
        start = params.get("from") or end - dt.timedelta(days=1)
        if "from" in params and "to" not in params and start >= end:
            raise exceptions.ValidationError({"from": ["Must be in the past."]})
        metric = METRICS_BY_NAME[params["metric"]]
        if resource.kind not in metric.kinds:
            kind = RESOURCE_KIND_LABELS[resource.kind]
            raise exceptions.ValidationError(
                {"metric": [f"Metric '{metric.name}' does not apply to {kind}s."]}
            )
        series = selectors.telemetry_series(
            tenant=self.tenant,
            resource=resource,
            metric=metric,
            start=start.astimezone(dt.UTC),
            end=end.astimezone(dt.UTC),
            step=params["step"],
        )
        if series is None:
            raise exceptions.ValidationError(
                {
                    "step": [
                        f"More than {selectors.MAX_RAW_POINTS} raw points in this range: "
                        "use step=1h or a shorter range."
                    ]
                }
            )
        return Response(
            {
                "resource": series.resource.as_dict(),
                "metric": {"name": metric.name, "unit": metric.unit},
                "from": series.start,
                "to": series.end,
                "step": series.step,
                "points": series.points,
            }
        )

    def _resource(self, params) -> selectors.ResourceRef:
        if "resource" in params:
            kind_name, _sep, name = params["resource"].partition(":")
            kind = RESOURCE_KIND_BY_NAME.get(kind_name)
            if kind is None or not name:
                raise exceptions.ValidationError({"resource": [services._RESOURCE_FORMAT]})
            found = selectors.telemetry_resource_get(tenant=self.tenant, kind=kind, name=name)
            field, shown = "resource", f"'{name}'"
        else:
            field = next(
                name for name in ("compute_id", "deployment_id", "gpu_id") if name in params
            )
            kind = RESOURCE_KIND_BY_NAME[field.removesuffix("_id")]
            found = selectors.telemetry_resource_get(
                tenant=self.tenant, kind=kind, resource_id=params[field]
            )
            shown = f"id {params[field]}"
        if found is None:
            label = RESOURCE_KIND_LABELS[kind]
            raise exceptions.ValidationError({field: [f"Unknown {label} {shown}."]})
        if "gpu" in params:
            gpu = selectors.telemetry_gpu_get(tenant=self.tenant, compute=found, gpu=params["gpu"])
            if gpu is None:
                raise exceptions.ValidationError(
                    {"gpu": [f"Compute resource '{found.name}' has no GPU '{params['gpu']}'."]}
                )
            return gpu
        return found


class MetricsView(_TelemetryView):
    """The metric catalogue: names, units, ranges, resources, and the dcgm-exporter fields."""

    @extend_schema(responses=s.MetricSerializer(many=True))
    def get(self, request, tenant_slug: str):
        dcgm: dict[str, list[str]] = {}
        for field, mapping in DCGM_FIELDS.items():
            dcgm.setdefault(mapping.metric.name, []).append(field)
        return Response(
            [{**metric.as_dict(), "dcgm_fields": dcgm.get(metric.name, [])} for metric in METRICS]
        )


class PolicyView(_TelemetryView):
    """The tenant's telemetry retention: raw samples (default 30 days) and hourly rollups
    (default 400 days). Everyone in the tenant may read it; MSP staff change it."""

    model = TelemetryPolicy
    serializer_class = s.TelemetryPolicySerializer
    write_capability = "staff_write"

    def get(self, request, tenant_slug: str):
        policy = selectors.telemetry_policy_get(tenant=self.tenant)
        return Response(self.get_serializer(policy).data)

    def patch(self, request, tenant_slug: str):
        policy = selectors.telemetry_policy_get(tenant=self.tenant)
        serializer = self.get_serializer(policy, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        policy = services.telemetry_policy_update(tenant=self.tenant, **serializer.validated_data)
        return Response(self.get_serializer(policy).data)

"""Prometheus text exposition from NVIDIA's dcgm-exporter, turned into telemetry samples.

The text is parsed by ``exposition.iter_samples`` (read as prometheus_client's parser reads it,
several times faster). Families
listed in ``metrics.DCGM_FIELDS`` are kept; any other family (dcgm-exporter exports many:
clocks, PCIe, NVLink …) is ignored and named in the answer.

Each series is mapped to a compute resource of the tenant: by its ``Hostname`` label when a
compute resource has that hostname, otherwise by its ``UUID`` label when that GPU UUID is in a
compute resource's ``gpu_uuids``. Series of one host, metric and time (one per GPU) become one
sample (mean, sum or max across the GPUs: see ``metrics``). A sample without a timestamp gets
``default_ts`` (the request's receive time, or its ``?ts=``).

All or nothing, like the JSON batch: an unknown host, a NaN or infinite value, a timestamp out
of the accepted window, or an aggregate out of the metric's range refuses the whole text, with
errors keyed by the series (``DCGM_FI_DEV_GPU_UTIL{gpu="0",Hostname="x"}``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from operations.inventory.models import ComputeResource
from operations.telemetry.exposition import ExpositionError, iter_samples
from operations.telemetry.metrics import DCGM_FIELDS, ResourceKind
from operations.telemetry.services import (
    MAX_REPORTED_ERRORS,
    IngestResult,
    TimeWindow,
    telemetry_store_rows,
)

#: Series of accepted families per request (a few hundred GPUs' worth of scrapes).
MAX_SERIES = 10_000
_AGGREGATES = {
    "mean": lambda values: math.fsum(values) / len(values),
    "sum": math.fsum,
    "max": max,
}


@dataclass
class PrometheusResult:
    ingest: IngestResult
    series: int
    hosts: int
    ignored_families: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            **self.ingest.as_dict(),
            "series": self.series,
            "hosts": self.hosts,
            "ignored_families": self.ignored_families,
        }


def _series_key(name: str, labels: dict) -> str:
    shown = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return f"{name}{{{shown}}}"


class _Errors:
    def __init__(self):
        self.fields: dict[str, list[str]] = {}
        self.count = 0

    def add(self, key: str, message: str) -> None:
        self.count += 1
        if len(self.fields) < MAX_REPORTED_ERRORS:
            self.fields.setdefault(key, []).append(message)

    def raise_if_any(self) -> None:
        if not self.count:
            return
        fields = dict(self.fields)
        if self.count > len(self.fields):
            fields["body"] = [f"{self.count} errors; the first {len(self.fields)} are listed."]
        raise ValidationError(fields)


def _compute_index(tenant, hostnames: set[str], uuids: set[str]):
    """hostname → id and GPU UUID → id for the tenant's compute, in one query."""
    by_host: dict[str, int] = {}
    by_uuid: dict[str, int] = {}
    if not hostnames and not uuids:
        return by_host, by_uuid
    wanted = Q(hostname__in=hostnames)
    if uuids:
        # GPU UUIDs are a JSON list: fetch the GPU-bearing rows and match them here (portable).
        wanted |= Q(gpu_count__gt=0) | Q(kind__in=["gpu_node", "gpu_cluster"])
    rows = ComputeResource.objects.filter(tenant=tenant).filter(wanted)
    for pk, hostname, gpu_uuids in rows.values_list("pk", "hostname", "gpu_uuids"):
        if hostname in hostnames:
            by_host[hostname] = pk
        for gpu_uuid in gpu_uuids or ():
            if isinstance(gpu_uuid, str) and gpu_uuid in uuids:
                by_uuid[gpu_uuid] = pk
    return by_host, by_uuid


#: One parsed series value: (family name, labels, value, timestamp in seconds or None).
SeriesValue = tuple[str, dict[str, str], float, float | None]


def parse_exposition(text: str) -> tuple[list[SeriesValue], set[str]]:
    """The accepted families' series values of a scrape, and the names of the families ignored.

    Raises ``ValidationError`` (key ``body``) for text that is not the exposition format, and
    for more than ``MAX_SERIES`` series of accepted families.
    """
    ignored: set[str] = set()
    series: list[SeriesValue] = []
    accepted = DCGM_FIELDS.keys()
    try:
        for sample in iter_samples(text, empty_families=ignored):
            if sample[0] in accepted:
                series.append(sample)
            else:
                ignored.add(sample[0])
    except ExpositionError as exc:
        raise ValidationError(
            {"body": [f"Not valid Prometheus text exposition: {exc}"[:500]]}
        ) from exc
    ignored -= accepted
    if len(series) > MAX_SERIES:
        raise ValidationError(
            {"body": [f"At most {MAX_SERIES} series of accepted metrics; got {len(series)}."]}
        )
    return series, ignored


def telemetry_ingest_prometheus(
    *, tenant, text: str, default_ts: dt.datetime, now: dt.datetime | None = None
) -> PrometheusResult:
    """Parse a dcgm-exporter scrape, map it to compute resources and store it idempotently."""
    series, ignored = parse_exposition(text)
    return telemetry_ingest_series(
        tenant=tenant, series=series, ignored=ignored, default_ts=default_ts, now=now
    )


def telemetry_ingest_series(
    *,
    tenant,
    series: list[SeriesValue],
    default_ts: dt.datetime,
    ignored: set[str] = frozenset(),
    now: dt.datetime | None = None,
) -> PrometheusResult:
    """Map parsed dcgm-exporter series (from a text scrape or a remote write) to the tenant's
    compute resources and store them idempotently, all or nothing."""
    window = TimeWindow.for_tenant(tenant, now or timezone.now())

    hostnames = {labels["Hostname"] for _n, labels, _v, _t in series if labels.get("Hostname")}
    uuids = {labels["UUID"] for _n, labels, _v, _t in series if labels.get("UUID")}
    by_host, by_uuid = _compute_index(tenant, hostnames, uuids)

    errors = _Errors()
    groups: dict[tuple[int, str, dt.datetime], list[float]] = {}
    host_label: dict[int, str] = {}
    for name, labels, value, timestamp in series:
        key = _series_key(name, labels)
        hostname, gpu_uuid = labels.get("Hostname", ""), labels.get("UUID", "")
        compute_id = by_host.get(hostname) or by_uuid.get(gpu_uuid)
        if compute_id is None:
            errors.add(
                key,
                f"Unknown compute resource: no hostname '{hostname}' and no GPU UUID "
                f"'{gpu_uuid}' in this tenant's inventory.",
            )
            continue
        if not math.isfinite(value):
            errors.add(key, "Expected a finite number (not NaN or infinity).")
            continue
        if timestamp is None:
            ts = default_ts
        else:
            try:
                ts = dt.datetime.fromtimestamp(float(timestamp), tz=dt.UTC)
            except (OverflowError, OSError, ValueError):
                errors.add(key, "Timestamp out of range.")
                continue
        problem = window.problem(ts)
        if problem:
            errors.add(key, problem)
            continue
        groups.setdefault((compute_id, name, ts), []).append(value * DCGM_FIELDS[name].scale)
        host_label.setdefault(compute_id, hostname or gpu_uuid)

    rows = []
    for (compute_id, name, ts), values in groups.items():
        dcgm = DCGM_FIELDS[name]
        value = float(_AGGREGATES[dcgm.aggregate](values))
        metric = dcgm.metric
        if not metric.minimum <= value <= metric.maximum:
            errors.add(
                f'{name}{{Hostname="{host_label[compute_id]}"}} @ {ts.isoformat()}',
                f"Out of range for {metric.name}: {metric.minimum:g} to {metric.maximum:g} "
                f"(got {value:g} from {len(values)} series).",
            )
            continue
        rows.append((tenant.id, ResourceKind.COMPUTE.value, compute_id, metric.code, ts, value))
    errors.raise_if_any()

    hours = {ts.replace(minute=0, second=0, microsecond=0) for _c, _n, ts in groups}
    inserted = telemetry_store_rows(tenant=tenant, rows=rows, hours=hours) if rows else 0
    return PrometheusResult(
        ingest=IngestResult(received=len(rows), inserted=inserted),
        series=len(series),
        hosts=len({compute_id for compute_id, _n, _t in groups}),
        ignored_families=sorted(ignored),
    )

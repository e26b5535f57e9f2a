"""Forwarding ingest on VictoriaMetrics: Groundwork authenticates, labels and forwards.

With ``TELEMETRY_BACKEND=victoriametrics`` the dcgm-exporter routes do not parse samples:
after the token, the size limits and the media type are checked (``api.parsers``), the body
goes as is to VictoriaMetrics, which parses it —

- ``telemetry/prometheus`` (text exposition) to ``/api/v1/import/prometheus``, ``?ts=`` as
  its ``timestamp`` (milliseconds) for samples without one;
- ``telemetry/remote-write`` (snappy protobuf, still compressed) to ``/api/v1/write``;

with ``extra_label`` query arguments that VictoriaMetrics sets on every series, *replacing* a
label of the same name in the payload (proved against the real server by
``tests/telemetry/victoriametrics/test_forwarding.py``):

- the tenant label (``TELEMETRY_TENANT_LABEL``) = the authenticated tenant's value: a payload's
  own ``tenant="other"`` is overwritten, so a tenant can only ever write its own label space;
- ``kind="scrape"``: a forwarded series never poses as one of Groundwork's own
  ``kind``/``resource_id`` series (those come only from the JSON route, checked);
- ``groundwork`` = ``TELEMETRY_INSTANCE`` when set.

Readers find the forwarded series by their dcgm-exporter labels (``backends.dcgm_read``), and
the GPU inventory job learns new GPUs from them (``telemetry_gpus_discover``). Nothing is
written to the database per request.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from operations.telemetry.api.parsers import REMOTE_WRITE_MEDIA_TYPE
from operations.telemetry.tenant_label import tenant_label_name, tenant_label_value

#: The ``kind`` label value of forwarded series (not a kind of Groundwork's own series).
FORWARDED_KIND = "scrape"


def telemetry_forwarding() -> bool:
    """Whether the dcgm-exporter routes forward their bodies (VictoriaMetrics) or parse them."""
    return settings.TELEMETRY_BACKEND == "victoriametrics"


def _extra_labels(tenant) -> list[tuple[str, str]]:
    labels = [
        ("extra_label", f"{tenant_label_name()}={tenant_label_value(tenant.id)}"),
        ("extra_label", f"kind={FORWARDED_KIND}"),
    ]
    if settings.TELEMETRY_INSTANCE:
        labels.append(("extra_label", f"groundwork={settings.TELEMETRY_INSTANCE}"))
    return labels


def _client():
    from operations.telemetry.backends.victoriametrics import victoriametrics_client

    return victoriametrics_client()


def telemetry_forward_prometheus(*, tenant, body: bytes, default_ts: dt.datetime | None) -> None:
    """Forward a text exposition (already inflated and size-checked) under ``tenant``'s label.

    ``default_ts``: the time of samples without a timestamp (else VictoriaMetrics' receive time).
    """
    params = _extra_labels(tenant)
    if default_ts is not None:
        params.append(("timestamp", str(int(default_ts.timestamp() * 1000))))
    _client().forward(
        "/api/v1/import/prometheus",
        body,
        params=params,
        headers={"Content-Type": "text/plain"},
    )


def telemetry_forward_remote_write(*, tenant, body: bytes) -> None:
    """Forward a remote write 1.0 body (snappy-compressed ``WriteRequest``, as received and
    size-checked) under ``tenant``'s label."""
    _client().forward(
        "/api/v1/write",
        body,
        params=_extra_labels(tenant),
        headers={
            "Content-Type": REMOTE_WRITE_MEDIA_TYPE,
            "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
        },
    )


def telemetry_gpus_discover(*, tenant, now: dt.datetime | None = None) -> dict:
    """Learn the tenant's new (and swapped) GPUs from the dcgm-exporter series in
    VictoriaMetrics over the last ``TELEMETRY_DISCOVERY_MINUTES``, as ingest learns them from a
    parsed scrape on the built-in store (audited); mark the hours they cover for the rollup.

    One instant query: the last time of each (host, GPU, UUID, model, MIG profile); the newest
    label set of each GPU position counts (a swapped GPU's old series lingers for a while).
    Series of hosts not in the inventory are skipped (counted), as nothing reads them.
    """
    from operations.inventory.selectors import gpu_fleet_index
    from operations.inventory.services import (
        gpu_devices_learn,
        gpu_devices_relabel,
        gpu_devices_touch,
    )
    from operations.telemetry.backends import dcgm_read
    from operations.telemetry.backends.victoriametrics import to_ms
    from operations.telemetry.metrics import DCGM_FIELDS
    from operations.telemetry.models import TelemetryDirtyHour
    from operations.telemetry.prometheus import _target

    now = now or timezone.now()
    start = now - dt.timedelta(minutes=settings.TELEMETRY_DISCOVERY_MINUTES)
    labels = ", ".join((*dcgm_read.PLACE_LABELS, "GPU_I_PROFILE", "modelName"))
    query = (
        f"max by ({labels}) (tlast_over_time("
        f"{dcgm_read.dcgm_selector(tenant.id, DCGM_FIELDS)}"
        f"[{settings.TELEMETRY_DISCOVERY_MINUTES}m]))"
    )
    results = _client().query(query, at_ms=to_ms(now), fresh=True)
    newest: dict[tuple[str, str, str], dict[str, str]] = {}
    for result in sorted(results, key=lambda result: -float(result["value"][1])):
        found = result["metric"]
        place = (found.get("Hostname", ""), found.get("gpu", ""), found.get("GPU_I_ID", ""))
        newest.setdefault(place, found)
    names = {(found.get("Hostname", ""), found.get("UUID", "")) for found in newest.values()}
    fleet = gpu_fleet_index(tenant=tenant, names=names)
    to_learn: dict = {}
    relabelled: dict = {}
    seen, unmapped = set(), 0
    for found in newest.values():
        compute_id, key, _shown, problem = _target(found, fleet, to_learn, relabelled)
        if compute_id is None or problem:
            unmapped += 1
        elif key is not None:
            seen.add(key)
    hours = []
    with transaction.atomic():
        gpu_devices_learn(tenant=tenant, labels_by_key=to_learn, now=now)
        gpu_devices_relabel(tenant=tenant, fleet=fleet, labels_by_key=relabelled)
        gpu_devices_touch(tenant=tenant, fleet=fleet, keys=seen - to_learn.keys(), now=now)
        if len(newest) > unmapped:
            hour = start.replace(minute=0, second=0, microsecond=0)
            while hour <= now:
                hours.append(hour)
                hour += dt.timedelta(hours=1)
            TelemetryDirtyHour.objects.bulk_create(
                [TelemetryDirtyHour(tenant=tenant, hour=hour) for hour in hours]
            )
    return {
        "series": len(newest),
        "unmapped": unmapped,
        "learned_gpus": len(to_learn),
        "relabelled_gpus": len(relabelled),
        "hours_marked": len(hours),
    }

"""Reading dcgm-exporter's own series in VictoriaMetrics by their labels.

Forwarded scrapes (``telemetry/prometheus``, ``telemetry/remote-write`` on this backend) and an
MSP's own vmagent writing straight into VictoriaMetrics leave dcgm-exporter's series as they
are: ``DCGM_FI_DEV_GPU_UTIL{Hostname="…", gpu="0", UUID="GPU-…", GPU_I_ID="…", <tenant>}``.
Groundwork reads them as its catalogue metrics, mapping labels to inventory ids in the
database, inside the tenant's scope:

- a compute resource is its ``Hostname`` label, or (a Kubernetes pod's hostname) the UUID of
  one of its GPUs (``GpuDevice.uuid`` or ``ComputeResource.gpu_uuids``): ``gpu_fleet_index``,
  the same mapping ingest used;
- a GPU is (compute, ``gpu`` index, ``GPU_I_ID``): a ``GpuDevice`` (learned by the inventory
  job from these series);
- each catalogue metric is its dcgm family, scaled (``metrics.DCGM_FIELDS``, the one table);
- a node's value at a time is the field's aggregate (mean, sum or max) of its GPUs' values at
  that time (``prometheus._AGGREGATES``), as ingest computed it on the built-in store.

Selectors are built here only from the family table and database values (hostnames, UUIDs),
quoted and regex-escaped, always under the exact tenant matcher (``dcgm_selector``).
Instant MetricsQL answers what is per series (last times, reporting); the node aggregate over a
window needs each time's GPUs together, so windows and rollups read the raw points
(``/api/v1/export``) and aggregate per time.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from contextlib import contextmanager

from django.conf import settings

from operations.inventory.models import ComputeResource, GpuDevice
from operations.inventory.selectors import gpu_fleet_index
from operations.telemetry.metrics import DCGM_FIELDS, ResourceKind
from operations.telemetry.prometheus import _AGGREGATES, _gpu_key
from tenants.scoping import active_scope, tenant_scope

COMPUTE, GPU = ResourceKind.COMPUTE.value, ResourceKind.GPU.value
#: Catalogue metric code → its dcgm family name.
FAMILY_OF_METRIC: dict[int, str] = {field.metric.code: name for name, field in DCGM_FIELDS.items()}
#: The labels that name a series' node and GPU.
PLACE_LABELS = ("Hostname", "UUID", "gpu", "GPU_I_ID")


def dcgm_metric(kind: int, metric: int) -> str | None:
    """The dcgm family read for ``metric`` of resources of ``kind``; None when there is none."""
    if int(kind) not in (COMPUTE, GPU):
        return None
    return FAMILY_OF_METRIC.get(int(metric))


def dcgm_selector(
    tenant_id: int,
    families: Iterable[str],
    *,
    hostnames: Iterable[str] = (),
    uuids: Iterable[str] = (),
) -> str:
    """``{<tenant>, __name__=~"DCGM_…", Hostname=…}``: families only from the table, hosts and
    UUIDs (database values) quoted and regex-escaped; always the tenant's exact matcher."""
    from operations.telemetry.backends.victoriametrics import (
        INSTANCE_LABEL,
        _matcher,
        quote,
        tenant_matcher,
    )

    names = sorted(set(families))
    if not names or any(name not in DCGM_FIELDS for name in names):
        raise ValueError(f"not dcgm families of the catalogue: {names!r}")
    matchers = [tenant_matcher(tenant_id)]
    if settings.TELEMETRY_INSTANCE:
        matchers.append(f"{INSTANCE_LABEL}={quote(settings.TELEMETRY_INSTANCE)}")
    matchers.append(_matcher("__name__", names))
    hostnames, uuids = sorted(set(hostnames)), sorted(set(uuids))
    if hostnames:
        matchers.append(_matcher("Hostname", hostnames))
    if uuids:
        matchers.append(_matcher("UUID", uuids))
    return "{" + ", ".join(matchers) + "}"


@contextmanager
def _scope_of(tenant_id: int):
    """The tenant's scope for the inventory lookups (kept when already active: no savepoint)."""
    scope = active_scope()
    if scope is not None and int(tenant_id) in scope.tenant_ids:
        yield
        return
    with tenant_scope(int(tenant_id)):
        yield


class Places:
    """Maps dcgm label sets to (compute id, GPU id or None), through the tenant's inventory."""

    def __init__(self, tenant_id: int, label_sets: Iterable[dict]):
        label_sets = list(label_sets)
        names = {(labels.get("Hostname", ""), labels.get("UUID", "")) for labels in label_sets}
        with _scope_of(tenant_id):
            self.fleet = gpu_fleet_index(tenant=tenant_id, names=names)

    def of(self, labels: dict) -> tuple[int | None, int | None]:
        fleet = self.fleet
        compute_id = fleet.by_host.get(labels.get("Hostname", "")) or fleet.by_uuid.get(
            labels.get("UUID", "")
        )
        if compute_id is None or not labels.get("gpu"):
            return compute_id, None
        known = fleet.gpus.get(_gpu_key(compute_id, labels))
        return compute_id, known[0] if known else None


def _place_labels(labels: dict) -> dict:
    return {name: labels[name] for name in PLACE_LABELS if name in labels}


def dcgm_points(client, tenant_id: int, *, start_ms: int, end_ms: int, selectors: list[str]):
    """Every GPU's own points and every node's aggregate per time of the dcgm series matching
    ``selectors`` in [start, end] (both included), scaled: {(kind, resource id, metric code):
    {ms: value}}."""
    series: dict[frozenset, tuple[dict, list, list]] = {}
    for selector in selectors:
        for line in client.export(selector, start_ms=start_ms, end_ms=end_ms):
            key = frozenset(line["metric"].items())
            # A series matched by several selectors (Hostname and UUID) counts once.
            series.setdefault(key, (line["metric"], line["timestamps"], line["values"]))
    if not series:
        return {}
    places = Places(tenant_id, (labels for labels, _t, _v in series.values()))
    points: dict[tuple[int, int, int], dict[int, float]] = defaultdict(dict)
    node_values: dict[tuple[int, str], dict[int, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for labels, stamps, values in series.values():
        family = labels.get("__name__", "")
        field = DCGM_FIELDS.get(family)
        compute_id, gpu_id = places.of(labels) if field else (None, None)
        if compute_id is None:
            continue
        scale = field.scale
        gpu_points = points[(GPU, gpu_id, field.metric.code)] if gpu_id is not None else None
        node = node_values[(compute_id, family)]
        for ms, value in zip(stamps, values, strict=True):
            scaled = value * scale
            if gpu_points is not None:
                gpu_points.setdefault(ms, scaled)
            node[ms].append(scaled)
    for (compute_id, family), by_time in node_values.items():
        field = DCGM_FIELDS[family]
        aggregate = _AGGREGATES[field.aggregate]
        points[(COMPUTE, compute_id, field.metric.code)] = {
            ms: float(values[0] if len(values) == 1 else aggregate(values))
            for ms, values in by_time.items()
        }
    return dict(points)


def resource_selectors(tenant_id: int, kind: int, resource_id: int, family: str) -> list[str]:
    """The selectors of one compute resource's or GPU's dcgm series (by hostname, and by its
    GPUs' UUIDs for series whose Hostname is a pod's)."""
    with _scope_of(tenant_id):
        return _resource_selectors(tenant_id, kind, resource_id, family)


def _resource_selectors(tenant_id: int, kind: int, resource_id: int, family: str) -> list[str]:
    if int(kind) == GPU:
        gpu = (
            GpuDevice.objects.filter(pk=resource_id, tenant_id=tenant_id)
            .values("compute_id")
            .first()
        )
        if gpu is None:
            return []
        resource_id = gpu["compute_id"]
    compute = (
        ComputeResource.objects.filter(pk=resource_id, tenant_id=tenant_id)
        .values("hostname", "gpu_uuids")
        .first()
    )
    if compute is None:
        return []
    uuids = {uuid for uuid in compute["gpu_uuids"] or () if isinstance(uuid, str) and uuid}
    uuids |= {
        uuid
        for uuid in GpuDevice.objects.filter(
            compute_id=resource_id, tenant_id=tenant_id
        ).values_list("uuid", flat=True)
        if uuid
    }
    selectors = [dcgm_selector(tenant_id, [family], hostnames=[compute["hostname"]])]
    if uuids:
        selectors.append(dcgm_selector(tenant_id, [family], uuids=uuids))
    return selectors


def place_results(tenant_id: int, results: list[dict]) -> list[tuple[int, int | None, dict]]:
    """(compute id, GPU id or None, result) of each instant query result that maps to the
    tenant's inventory."""
    places = Places(tenant_id, (result["metric"] for result in results))
    placed = []
    for result in results:
        compute_id, gpu_id = places.of(result["metric"])
        if compute_id is not None:
            placed.append((compute_id, gpu_id, result))
    return placed


def window_of(points: dict[int, float]):
    """(min, max, count, first ms, last ms) of a series' points."""
    values = points.values()
    return min(values), max(values), len(points), min(points), max(points)


def stamp(ms: int) -> dt.datetime:
    from operations.telemetry.backends.victoriametrics import from_ms

    return from_ms(ms)

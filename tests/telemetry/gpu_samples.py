"""Per-GPU test data: a node's GPU rows in the inventory and samples in their own series
(``ResourceKind.GPU``, resource id = the GPU's id), stored through telemetry's store service
inside the tenant's scope, the way ingest stores them."""

from __future__ import annotations

import datetime as dt

from operations.inventory.models import GpuDevice
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from operations.telemetry.services import telemetry_rollup_pending, telemetry_store_rows
from tenants.scoping import tenant_scope


def make_node_gpus(tenant, node, count: int | None = None) -> list[GpuDevice]:
    """GPUs 0 … count − 1 of ``node`` (its ``gpu_count`` by default), with its UUIDs and model.
    Found or created: inventory may already have learned them from the node's UUIDs."""
    count = node.gpu_count if count is None else count
    uuids = list(node.gpu_uuids or [])
    gpus = []
    with tenant_scope(tenant.id):
        for index in range(count):
            gpu, _created = GpuDevice.objects.get_or_create(
                tenant=tenant,
                compute=node,
                index=index,
                mig_instance="",
                defaults={
                    "uuid": uuids[index] if index < len(uuids) else "",
                    "model_name": node.gpu_model,
                },
            )
            gpus.append(gpu)
    return gpus


def store_gpu_samples(
    tenant,
    gpu: GpuDevice,
    metric: str,
    values,
    *,
    start: dt.datetime,
    step: dt.timedelta = dt.timedelta(minutes=5),
) -> None:
    """``values`` for one GPU's series of ``metric`` from ``start``, one every ``step``."""
    code = METRICS_BY_NAME[metric].code
    rows = [
        (tenant.id, ResourceKind.GPU.value, gpu.pk, code, start + i * step, float(value))
        for i, value in enumerate(values)
    ]
    hours = {ts.replace(minute=0, second=0, microsecond=0) for *_, ts, _value in rows}
    with tenant_scope(tenant.id):
        telemetry_store_rows(tenant=tenant, rows=rows, hours=hours)


def store_gpu_hours(tenant, gpu: GpuDevice, metric: str, hours: list[dt.datetime], value) -> None:
    """A sample at half past each of ``hours`` (``value``: a number or hour → number), then
    the hourly rollup, as the scheduled job would run it."""
    code = METRICS_BY_NAME[metric].code
    rows = [
        (
            tenant.id,
            ResourceKind.GPU.value,
            gpu.pk,
            code,
            hour + dt.timedelta(minutes=30),
            float(value(hour) if callable(value) else value),
        )
        for hour in hours
    ]
    with tenant_scope(tenant.id):
        telemetry_store_rows(tenant=tenant, rows=rows, hours=set(hours))
        telemetry_rollup_pending(tenant=tenant)

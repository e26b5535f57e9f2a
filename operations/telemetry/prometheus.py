"""Prometheus text exposition from NVIDIA's dcgm-exporter, turned into telemetry samples.

The text is parsed by ``exposition.iter_samples`` (read as prometheus_client's parser reads it,
several times faster). Families
listed in ``metrics.DCGM_FIELDS`` are kept; any other family (dcgm-exporter exports many:
clocks, PCIe, NVLink …) is ignored and named in the answer.

Each series is mapped to a compute resource of the tenant: by its ``Hostname`` label when a
compute resource has that hostname, otherwise by its ``UUID`` label when a GPU of the tenant
(``GpuDevice``, or a UUID listed in ``ComputeResource.gpu_uuids``) has it. One query resolves
the hosts and all their GPUs, kept per process under the inventory's version (see
``_fleet_index``).

A series with a ``gpu`` label is also its GPU's own series (kind GPU, resource = the
``GpuDevice`` at that node, index and MIG instance ``GPU_I_ID``). A GPU not yet in the
inventory is learned on first sight with its ``UUID``, ``modelName`` and ``GPU_I_PROFILE``
(audited, actor = the ingest token), in the same transaction as the samples; a known position
reporting another UUID (a swapped GPU) is relabelled, audited too. ``last_seen_at`` moves at
most once an hour per GPU (one UPDATE).

Series of one host, metric and time (one per GPU) also become one node sample (mean, sum or
max across the GPUs: see ``metrics``), the node aggregate. A sample without a timestamp gets
``default_ts`` (the request's receive time, or its ``?ts=``).

All or nothing, like the JSON batch: an unknown host, a NaN or infinite value, a timestamp out
of the accepted window, a GPU's value or a node aggregate out of the metric's range, or GPU
labels that cannot name a GPU refuse the whole text (nothing stored, no GPU learned), with
errors keyed by the series (``DCGM_FI_DEV_GPU_UTIL{gpu="0",Hostname="x"}``).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from operations.inventory.selectors import (
    GpuFleetIndex,
    GpuKey,
    gpu_fleet_index,
    gpu_fleet_version,
    gpu_key_problem,
)
from operations.inventory.services import (
    gpu_devices_learn,
    gpu_devices_relabel,
    gpu_devices_touch,
)
from operations.telemetry.exposition import ExpositionError, iter_samples
from operations.telemetry.metrics import DCGM_FIELDS, ResourceKind
from operations.telemetry.services import (
    MAX_REPORTED_ERRORS,
    IngestResult,
    TimeWindow,
    telemetry_store_blocks,
)
from operations.telemetry.storage import Blocks

#: Series of accepted families per request (a few hundred GPUs' worth of scrapes).
MAX_SERIES = 10_000
#: Fleet indexes kept in this process, per (tenant id, names of the scrape), with the inventory
#: version they were read at (``gpu_fleet_version``); the least recently used go first.
_FLEETS: OrderedDict[tuple[int, frozenset], tuple[str, GpuFleetIndex]] = OrderedDict()
_FLEETS_KEPT = 256
_FLEETS_LOCK = threading.Lock()
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
    gpus: int = 0
    learned_gpus: int = 0
    ignored_families: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            **self.ingest.as_dict(),
            "series": self.series,
            "hosts": self.hosts,
            "gpus": self.gpus,
            "learned_gpus": self.learned_gpus,
            "ignored_families": self.ignored_families,
        }


def _gpu_key(compute_id: int, labels: dict) -> GpuKey:
    """(compute, gpu index, MIG instance) of a series with a ``gpu`` label; index -1 when the
    label is not an index (no GPU has it: ``gpu_key_problem`` names the fault)."""
    raw = labels["gpu"]
    index = int(raw) if raw.isdigit() and len(raw) <= 5 else -1
    return (compute_id, index, labels.get("GPU_I_ID", ""))


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
    compute resources and their GPUs, and store them idempotently, all or nothing.

    Each series with a ``gpu`` label is stored as its GPU's own series (kind GPU, scaled and
    range-checked); every series also counts towards its node's aggregate (kind COMPUTE). A GPU
    not yet in the inventory is learned (audited) in the same transaction as the samples.
    """
    now = now or timezone.now()
    window = TimeWindow.for_tenant(tenant, now)

    # Label sets repeat (dcgm-exporter gives a GPU the same labels in every family, and the
    # text parser hands out one dict per distinct label text): each is resolved once, by
    # identity, and the per-series loop does only what differs per series.
    distinct = {id(labels): labels for _n, labels, _v, _t in series}
    names = {(labels.get("Hostname", ""), labels.get("UUID", "")) for labels in distinct.values()}
    fleet = _fleet_index(tenant, names)
    to_learn: dict[GpuKey, dict[str, str]] = {}
    relabelled: dict[GpuKey, dict[str, str]] = {}
    targets = {
        label_id: _target(labels, fleet, to_learn, relabelled)
        for label_id, labels in distinct.items()
    }

    errors = _Errors()
    groups: dict[tuple[int, str, dt.datetime], list[float]] = {}
    gpu_groups: dict[tuple[GpuKey, str, dt.datetime], list[float]] = {}
    host_label: dict[int, str] = {}
    times: dict = {}  # raw timestamp → (ts, problem): each distinct time checked once
    scales = {name: dcgm.scale for name, dcgm in DCGM_FIELDS.items()}
    isfinite = math.isfinite
    for name, labels, value, timestamp in series:
        compute_id, key, shown, problem = targets[id(labels)]
        if compute_id is None:
            errors.add(_series_key(name, labels), problem)
            continue
        if not isfinite(value):
            errors.add(_series_key(name, labels), "Expected a finite number (not NaN or infinity).")
            continue
        moment = times.get(timestamp)
        if moment is None:
            moment = times[timestamp] = _checked_time(timestamp, default_ts, window)
        ts, time_problem = moment
        if time_problem:
            errors.add(_series_key(name, labels), time_problem)
            continue
        if problem:
            errors.add(_series_key(name, labels), problem)
            continue
        scaled = value * scales[name]
        if key is not None:
            group = gpu_groups.get((key, name, ts))
            if group is None:
                gpu_groups[(key, name, ts)] = [scaled]
            else:
                group.append(scaled)
        group = groups.get((compute_id, name, ts))
        if group is None:
            groups[(compute_id, name, ts)] = [scaled]
            host_label.setdefault(compute_id, shown)
        else:
            group.append(scaled)

    # Straight into storage blocks (series and UTC hour → {ts: value}), no row tuples.
    tenant_id = tenant.id
    compute_kind, gpu_kind = ResourceKind.COMPUTE.value, ResourceKind.GPU.value
    metrics = {name: dcgm.metric for name, dcgm in DCGM_FIELDS.items()}
    hour_of: dict[dt.datetime, dt.datetime] = {}
    for ts in {ts for _c, _n, ts in groups}:
        hour_of[ts] = ts.replace(minute=0, second=0, microsecond=0)
    blocks: Blocks = {}
    for (compute_id, name, ts), values in groups.items():
        value = _checked_aggregate(
            name,
            values,
            ts,
            lambda c=compute_id, n=name: f'{n}{{Hostname="{host_label[c]}"}}',
            errors,
        )
        if value is not None:
            _file(
                blocks,
                (tenant_id, compute_kind, compute_id, metrics[name].code, hour_of[ts]),
                ts,
                value,
            )
    gpu_values = []
    for (key, name, ts), values in gpu_groups.items():
        metric = metrics[name]
        if len(values) == 1 and metric.minimum <= values[0] <= metric.maximum:
            gpu_values.append((key, metric.code, ts, values[0]))  # a GPU's own series: as is
            continue
        value = _checked_aggregate(
            name, values, ts, lambda k=key, n=name: _gpu_shown(n, k, host_label), errors
        )
        if value is not None:
            gpu_values.append((key, metric.code, ts, value))
    errors.raise_if_any()

    with transaction.atomic(savepoint=False):
        gpu_ids = {key: known[0] for key, known in fleet.gpus.items()}
        gpu_ids.update(gpu_devices_learn(tenant=tenant, labels_by_key=to_learn, now=now))
        gpu_devices_relabel(tenant=tenant, fleet=fleet, labels_by_key=relabelled)
        seen = {key for key, _code, _ts, _v in gpu_values}
        gpu_devices_touch(tenant=tenant, fleet=fleet, keys=seen - to_learn.keys(), now=now)
        for key, code, ts, value in gpu_values:
            _file(blocks, (tenant_id, gpu_kind, gpu_ids[key], code, hour_of[ts]), ts, value)
        received = sum(map(len, blocks.values()))
        inserted = (
            telemetry_store_blocks(tenant=tenant, blocks=blocks, hours=set(hour_of.values()))
            if blocks
            else 0
        )
    return PrometheusResult(
        ingest=IngestResult(received=received, inserted=inserted),
        series=len(series),
        hosts=len({compute_id for compute_id, _n, _t in groups}),
        gpus=len({key for key, _n, _t in gpu_groups}),
        learned_gpus=len(to_learn),
        ignored_families=sorted(ignored),
    )


def _fleet_index(tenant, names: set[tuple[str, str]]) -> GpuFleetIndex:
    """``gpu_fleet_index`` of the scrape's names, kept while the tenant's inventory is unchanged
    (a scrape names the same hosts and GPUs every time): one small query instead of loading
    every GPU. Any write to the tenant's compute resources or GPUs (a GPU learned, relabelled
    or touched, a host renamed or deleted) changes the version, and the index is read again."""
    version = gpu_fleet_version(tenant=tenant)
    if version is None:
        return gpu_fleet_index(tenant=tenant, names=names)
    key = (tenant.id, frozenset(names))
    with _FLEETS_LOCK:
        kept = _FLEETS.get(key)
        if kept is not None and kept[0] == version:
            _FLEETS.move_to_end(key)
            return kept[1]
    fleet = gpu_fleet_index(tenant=tenant, names=names)
    with _FLEETS_LOCK:
        _FLEETS[key] = (version, fleet)
        while len(_FLEETS) > _FLEETS_KEPT:
            _FLEETS.popitem(last=False)
    return fleet


def _target(labels: dict, fleet, to_learn: dict, relabelled: dict):
    """(compute id, GPU key or None, the host as shown in messages, problem or None) of a
    label set; compute id None when no compute resource matches (the problem says why).

    A GPU not in ``fleet`` is noted in ``to_learn``, one reporting another UUID at a known
    position in ``relabelled`` (the first label set of each wins)."""
    hostname, gpu_uuid = labels.get("Hostname", ""), labels.get("UUID", "")
    compute_id = fleet.by_host.get(hostname) or fleet.by_uuid.get(gpu_uuid)
    if compute_id is None:
        return (
            None,
            None,
            "",
            f"Unknown compute resource: no hostname '{hostname}' and no GPU UUID "
            f"'{gpu_uuid}' in this tenant's inventory.",
        )
    shown = hostname or gpu_uuid
    if not labels.get("gpu"):
        return compute_id, None, shown, None
    key = _gpu_key(compute_id, labels)
    known = fleet.gpus.get(key)
    if known is None or (gpu_uuid and known[1] != gpu_uuid):
        # Labels are checked only for a GPU to record: known ones cost a lookup.
        problem = gpu_key_problem(key, labels)
        if problem:
            return compute_id, None, shown, problem
        if known is None:
            to_learn.setdefault(key, labels)
        else:
            relabelled.setdefault(key, labels)  # a GPU swapped at this position
    return compute_id, key, shown, None


def _file(blocks: Blocks, series_hour: tuple, ts: dt.datetime, value: float) -> None:
    """File a sample in its block; of equal samples the first stays (as ``group_blocks``)."""
    block = blocks.get(series_hour)
    if block is None:
        blocks[series_hour] = {ts: value}
    else:
        block.setdefault(ts, value)


def _gpu_shown(name: str, key: GpuKey, host_label: dict) -> str:
    shown = f'{name}{{Hostname="{host_label[key[0]]}",gpu="{key[1]}"'
    return shown + (f',GPU_I_ID="{key[2]}"}}' if key[2] else "}")


def _checked_time(timestamp, default_ts: dt.datetime, window: TimeWindow):
    """(ts, problem or None) of a series' timestamp (seconds, or None for ``default_ts``)."""
    if timestamp is None:
        ts = default_ts
    else:
        try:
            ts = dt.datetime.fromtimestamp(float(timestamp), tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None, "Timestamp out of range."
    return ts, window.problem(ts)


def _checked_aggregate(name: str, values: list[float], ts, shown, errors: _Errors):
    """The field's aggregate of ``values`` when it is in the metric's range, else None (and an
    error naming ``shown()``: built only then)."""
    dcgm = DCGM_FIELDS[name]
    # One value (a GPU's own series) is its own mean, sum and max.
    value = float(values[0] if len(values) == 1 else _AGGREGATES[dcgm.aggregate](values))
    metric = dcgm.metric
    if metric.minimum <= value <= metric.maximum:
        return value
    errors.add(
        f"{shown()} @ {ts.isoformat()}",
        f"Out of range for {metric.name}: {metric.minimum:g} to {metric.maximum:g} "
        f"(got {value:g} from {len(values)} series).",
    )
    return None

"""Prometheus text exposition from NVIDIA's dcgm-exporter, turned into telemetry samples.

The text is parsed by ``exposition.iter_samples`` (read as prometheus_client's parser reads it,
several times faster). Families
listed in ``metrics.DCGM_FIELDS`` are kept; any other family (dcgm-exporter exports many:
clocks, PCIe, NVLink …) is ignored and named in the answer.

Each series is mapped to a compute resource of the tenant: by its ``Hostname`` label when a
compute resource has that hostname, otherwise by its ``UUID`` label when a GPU of the tenant
(``GpuDevice``, or a UUID listed in ``ComputeResource.gpu_uuids``) has it. One query resolves
the hosts and all their GPUs, kept per process under the inventory's version (see
``_fleet_index``). A scrape repeats its series keys (``name{labels``) every time: what each
resolved to is kept per tenant under that version too (``_kept_targets``), so a known line
costs a lookup and ``float()``; labels are parsed and checked only for a key not seen since
the inventory last changed, and a series with something to record (a GPU to learn or
relabel) or something wrong is never kept.

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
import gc
import math
import threading
from collections import OrderedDict
from contextlib import contextmanager
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
from operations.telemetry.exposition import ExpositionError, SampleColumns, scan_samples
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
#: Resolved series keys kept in this process per tenant (``_kept_targets``), at most this many
#: in all (a 3,200-series scrape keeps 3,200; a few hundred bytes each); the tenant least
#: recently seen goes first.
_TARGETS: OrderedDict[int, _KeptTargets] = OrderedDict()
_TARGETS_KEPT = 60_000
_CODES = {name: dcgm.metric.code for name, dcgm in DCGM_FIELDS.items()}
_RANGES = {
    name: (dcgm.metric.code, dcgm.metric.minimum, dcgm.metric.maximum)
    for name, dcgm in DCGM_FIELDS.items()
}
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


def parse_scrape(text: str) -> tuple[SampleColumns, set[str]]:
    """The accepted families' samples of a scrape as columns, and the names of the families
    ignored.

    Raises ``ValidationError`` (key ``body``) for text that is not the exposition format, and
    for more than ``MAX_SERIES`` series of accepted families.
    """
    try:
        columns = scan_samples(text, accepted=DCGM_FIELDS)
    except ExpositionError as exc:
        raise ValidationError(
            {"body": [f"Not valid Prometheus text exposition: {exc}"[:500]]}
        ) from exc
    if len(columns.entries) > MAX_SERIES:
        raise ValidationError(
            {
                "body": [
                    f"At most {MAX_SERIES} series of accepted metrics; got {len(columns.entries)}."
                ]
            }
        )
    return columns, columns.families - DCGM_FIELDS.keys()


def parse_exposition(text: str) -> tuple[list[SeriesValue], set[str]]:
    """``parse_scrape`` as a list of series values."""
    columns, ignored = parse_scrape(text)
    series = [
        (name, labels, value, stamp)
        for (_key, name, labels), value, stamp in zip(
            columns.entries, columns.values, columns.stamps, strict=True
        )
    ]
    return series, ignored


def telemetry_ingest_prometheus(
    *, tenant, text: str, default_ts: dt.datetime, now: dt.datetime | None = None
) -> PrometheusResult:
    """Parse a dcgm-exporter scrape, map it to compute resources and store it idempotently."""
    with collector_paused():
        columns, ignored = parse_scrape(text)
        return telemetry_ingest_columns(
            tenant=tenant, columns=columns, ignored=ignored, default_ts=default_ts, now=now
        )


def telemetry_ingest_series(
    *,
    tenant,
    series: list[SeriesValue],
    default_ts: dt.datetime,
    ignored: set[str] = frozenset(),
    now: dt.datetime | None = None,
) -> PrometheusResult:
    """``telemetry_ingest_columns`` of parsed series values (a remote write's, say)."""
    with collector_paused():
        return _ingest_series(
            tenant=tenant, series=series, ignored=ignored, default_ts=default_ts, now=now
        )


def _ingest_series(*, tenant, series, default_ts, ignored, now) -> PrometheusResult:
    # Its own frame: the columns are freed before the collector runs again.
    columns = SampleColumns()
    # The family and label pairs, in order, as the series' key: a sender repeats them.
    columns.entries = [((name, *labels.items()), name, labels) for name, labels, _v, _t in series]
    columns.values = [value for _n, _l, value, _t in series]
    columns.stamps = [stamp for _n, _l, _v, stamp in series]
    return telemetry_ingest_columns(
        tenant=tenant, columns=columns, ignored=ignored, default_ts=default_ts, now=now
    )


@contextmanager
def collector_paused():
    """Python's cyclic garbage collector off for the duration (unless already off).

    A scrape makes some 10^5 short-lived objects, all freed by reference counting; meanwhile
    the collector ran a dozen times a request and promoted what was alive to the old
    generation, so every few requests a full collection walked the whole process (measured:
    more CPU than the mapping itself). Nothing here makes reference cycles to wait for.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class _Target:
    """Where the samples of one series (family and label set) go, and what is wrong with it."""

    __slots__ = (
        "name",
        "labels",
        "compute_id",
        "gpu_key",
        "shown",
        "problem",
        "scale",
        "minimum",
        "maximum",
        "node_slot",
        "node_index",
        "gpu_slot",
        "gpu_series",
    )

    def __init__(self, name: str, labels: dict, target: tuple, kept: _KeptTargets, gpu_id):
        self.name, self.labels = name, labels
        self.compute_id, self.gpu_key, self.shown, self.problem = target
        dcgm = DCGM_FIELDS[name]
        self.scale, self.minimum, self.maximum = (
            dcgm.scale,
            dcgm.metric.minimum,
            dcgm.metric.maximum,
        )
        # Group keys: the node's aggregate (also as a small number), the GPU's own series.
        self.node_slot = (self.compute_id, name)
        self.node_index = kept.node_index(self.node_slot)
        self.gpu_slot = None if self.gpu_key is None else (self.gpu_key, name)
        # Its GPU's stored series but the hour, when the GPU is known.
        self.gpu_series = (
            None
            if self.gpu_key is None or gpu_id is None
            else (kept.tenant_id, ResourceKind.GPU.value, gpu_id, dcgm.metric.code)
        )


class _KeptTargets:
    """The targets of a tenant's series keys, valid while its inventory is at ``version``, and
    the GPUs (``GpuFleetIndex.gpus``) they were resolved with. A key is a text line's up to its
    last ``}`` (``exposition.Entry``) or a tuple of the family and label pairs: never equal."""

    __slots__ = ("tenant_id", "version", "by_key", "fleet", "node_slots", "_node_indexes")

    def __init__(self, tenant_id: int, version: str | None):
        self.tenant_id, self.version = tenant_id, version
        self.by_key: dict[str | tuple, _Target] = {}
        self.fleet = GpuFleetIndex()
        self.node_slots: list[tuple[int, str]] = []  # (compute id, family) by node index
        self._node_indexes: dict[tuple[int, str], int] = {}

    def node_index(self, slot: tuple[int, str]) -> int:
        with _FLEETS_LOCK:  # one number a slot, whichever thread resolves it first
            index = self._node_indexes.get(slot)
            if index is None:
                index = self._node_indexes[slot] = len(self.node_slots)
                self.node_slots.append(slot)
            return index


def _kept_targets(tenant) -> _KeptTargets:
    """The tenant's kept targets, emptied when its inventory changed (a GPU learned, relabelled
    or touched, a host renamed or deleted: ``gpu_fleet_version``); a fresh one where the
    database cannot tell the version (SQLite)."""
    version = gpu_fleet_version(tenant=tenant)
    if version is None:
        return _KeptTargets(tenant.id, None)
    with _FLEETS_LOCK:
        kept = _TARGETS.get(tenant.id)
        if kept is None or kept.version != version:
            kept = _TARGETS[tenant.id] = _KeptTargets(tenant.id, version)
        _TARGETS.move_to_end(tenant.id)
        total = sum(len(other.by_key) for other in _TARGETS.values())
        while total > _TARGETS_KEPT and len(_TARGETS) > 1:
            _key, dropped = _TARGETS.popitem(last=False)
            total -= len(dropped.by_key)
        if total > _TARGETS_KEPT:
            kept.by_key.clear()
    return kept


def _resolve(tenant, columns: SampleColumns, kept: _KeptTargets):
    """The target of every sample (in order), the GPUs to learn and to relabel, and whether
    some target has a problem. Series keys seen before under this inventory version cost a
    lookup; the others are resolved with one fleet index of their names, and kept when
    nothing is wrong with them and nothing is to be recorded for them."""
    entries = columns.entries
    by_key = kept.by_key
    targets = [by_key.get(entry[0]) for entry in entries]
    to_learn: dict[GpuKey, dict[str, str]] = {}
    relabelled: dict[GpuKey, dict[str, str]] = {}
    if None not in targets:
        return targets, to_learn, relabelled, False
    missed = [index for index, target in enumerate(targets) if target is None]
    # Label sets repeat (dcgm-exporter gives a GPU the same labels in every family, and the
    # parser hands out one dict per distinct label text): each is resolved once, by identity.
    distinct = {id(entries[index][2]): entries[index][2] for index in missed}
    names = {(labels.get("Hostname", ""), labels.get("UUID", "")) for labels in distinct.values()}
    fleet = _fleet_index(tenant, names, kept.version)
    kept.fleet.gpus.update(fleet.gpus)
    resolved: dict[int, tuple[tuple, bool]] = {}
    made: dict[tuple[str, int], _Target] = {}
    flagged = False
    for index in missed:
        key, name, labels = entries[index]
        label_id = id(labels)
        target = made.get((name, label_id))
        if target is None:
            found = resolved.get(label_id)
            if found is None:
                target_tuple = _target(labels, fleet, to_learn, relabelled)
                found = resolved[label_id] = (target_tuple, _settled(target_tuple, labels, fleet))
            known = fleet.gpus.get(found[0][1])
            target = made[(name, label_id)] = _Target(
                name, labels, found[0], kept, None if known is None else known[0]
            )
            if key is not None and found[1]:
                by_key[key] = target
            flagged = flagged or target.problem is not None or target.compute_id is None
        targets[index] = target
    return targets, to_learn, relabelled, flagged


def _settled(target: tuple, labels: dict, fleet: GpuFleetIndex) -> bool:
    """Whether a label set's target may be kept: a known host, nothing wrong, and its GPU (if
    any) known at that place with that UUID (nothing to learn or relabel)."""
    compute_id, key, _shown, problem = target
    if compute_id is None or problem is not None:
        return False
    if key is None:
        return True
    known = fleet.gpus.get(key)
    gpu_uuid = labels.get("UUID", "")
    return known is not None and (not gpu_uuid or known[1] == gpu_uuid)


def _all_finite(values: list[float]) -> bool:
    """True when every value is finite (a sum in C); False may also mean an overflowing sum."""
    try:
        return math.isfinite(math.fsum(values))
    except (OverflowError, ValueError):
        return False


def telemetry_ingest_columns(
    *,
    tenant,
    columns: SampleColumns,
    default_ts: dt.datetime,
    ignored: set[str] = frozenset(),
    now: dt.datetime | None = None,
) -> PrometheusResult:
    """Map parsed dcgm-exporter samples (from a text scrape or a remote write) to the tenant's
    compute resources and their GPUs, and store them idempotently, all or nothing.

    Each series with a ``gpu`` label is stored as its GPU's own series (kind GPU, scaled and
    range-checked); every series also counts towards its node's aggregate (kind COMPUTE). A GPU
    not yet in the inventory is learned (audited) in the same transaction as the samples.
    """
    now = now or timezone.now()
    window = TimeWindow.for_tenant(tenant, now)
    kept = _kept_targets(tenant)
    targets, to_learn, relabelled, flagged = _resolve(tenant, columns, kept)
    values, stamps = columns.values, columns.stamps
    moments = {stamp: _checked_time(stamp, default_ts, window) for stamp in set(stamps)}

    errors = _Errors()
    if flagged or not _all_finite(values) or any(problem for _ts, problem in moments.values()):
        targets, values, stamps = _without_refused(targets, values, stamps, moments, errors)

    ts_of = {stamp: ts for stamp, (ts, _problem) in moments.items()}
    hour_of = {ts: ts.replace(minute=0, second=0, microsecond=0) for ts in ts_of.values()}
    one_time = None
    if len(hour_of) == 1 and not to_learn and not relabelled:
        ((ts, hour),) = hour_of.items()
        one_time = _one_time_groups(targets, values, ts, hour)
    if one_time is not None:
        nodes, gpu_blocks, seen = one_time
        node_groups = [(kept.node_slots[index], ts, group) for index, group in nodes.items()]
        gpu_values = []
    else:
        node_groups, gpu_groups = _groups(targets, values, stamps, ts_of)
        gpu_blocks, seen = {}, {key for (key, _n), _t in gpu_groups}

    def host_label(compute_id: int) -> str:
        # For messages only: the host as the first of its series showed it.
        return next(target.shown for target in targets if target.compute_id == compute_id)

    # Straight into storage blocks (series and UTC hour → {ts: value}), no row tuples.
    tenant_id = tenant.id
    compute_kind, gpu_kind = ResourceKind.COMPUTE.value, ResourceKind.GPU.value
    blocks: Blocks = {}
    for (compute_id, name), ts, group in node_groups:
        value = _checked_aggregate(
            name,
            group,
            ts,
            lambda c=compute_id, n=name: f'{n}{{Hostname="{host_label(c)}"}}',
            errors,
        )
        if value is not None:
            _file(
                blocks,
                (tenant_id, compute_kind, compute_id, _CODES[name], hour_of[ts]),
                ts,
                value,
            )
    if one_time is None:
        gpu_values = []
        for ((key, name), ts), group in gpu_groups.items():
            code, minimum, maximum = _RANGES[name]
            if len(group) == 1 and minimum <= group[0] <= maximum:
                gpu_values.append((key, code, ts, group[0]))  # a GPU's own series: as is
                continue
            value = _checked_aggregate(
                name, group, ts, lambda k=key, n=name: _gpu_shown(n, k, host_label(k[0])), errors
            )
            if value is not None:
                gpu_values.append((key, code, ts, value))
    errors.raise_if_any()

    fleet = kept.fleet
    with transaction.atomic(savepoint=False):
        gpu_ids = {key: known[0] for key, known in fleet.gpus.items()} if gpu_values else {}
        gpu_ids.update(gpu_devices_learn(tenant=tenant, labels_by_key=to_learn, now=now))
        gpu_devices_relabel(tenant=tenant, fleet=fleet, labels_by_key=relabelled)
        gpu_devices_touch(tenant=tenant, fleet=fleet, keys=seen - to_learn.keys(), now=now)
        for key, code, ts, value in gpu_values:
            _file(blocks, (tenant_id, gpu_kind, gpu_ids[key], code, hour_of[ts]), ts, value)
        blocks.update(gpu_blocks)
        received = sum(map(len, blocks.values()))
        inserted = (
            telemetry_store_blocks(tenant=tenant, blocks=blocks, hours=set(hour_of.values()))
            if blocks
            else 0
        )
    return PrometheusResult(
        ingest=IngestResult(received=received, inserted=inserted),
        series=len(columns.entries),
        hosts=len({compute_id for (compute_id, _n), _t, _g in node_groups}),
        gpus=len(seen),
        learned_gpus=len(to_learn),
        ignored_families=sorted(ignored),
    )


def _one_time_groups(targets: list[_Target], values: list[float], ts, hour):
    """The usual scrape, all at one time, every GPU known: its GPUs' blocks straight away,
    its nodes' values by node index, and the GPUs seen; None when some GPU series is out of
    range or given twice (``_groups`` then aggregates, or names the fault)."""
    gpu_blocks: Blocks = {}
    nodes: dict[int, list[float]] = {}
    gpu_samples = 0
    for target, value in zip(targets, values, strict=True):
        scaled = value * target.scale
        series = target.gpu_series
        if series is not None:
            if not target.minimum <= scaled <= target.maximum:
                return None
            gpu_blocks[(*series, hour)] = {ts: scaled}
            gpu_samples += 1
        group = nodes.get(target.node_index)
        if group is None:
            nodes[target.node_index] = [scaled]
        else:
            group.append(scaled)
    if len(gpu_blocks) != gpu_samples:
        return None
    return nodes, gpu_blocks, {target.gpu_key for target in targets} - {None}


def _groups(targets: list[_Target], values: list[float], stamps: list, ts_of: dict):
    """The samples grouped by node, family and time (as ``[(slot, ts, values)]``) and by GPU,
    family and time (``{(slot, ts): values}``), each in order of first appearance."""
    groups: dict[tuple[tuple[int, str], dt.datetime], list[float]] = {}
    gpu_groups: dict[tuple[tuple[GpuKey, str], dt.datetime], list[float]] = {}
    for target, value, stamp in zip(targets, values, stamps, strict=True):
        ts = ts_of[stamp]
        scaled = value * target.scale
        slot = target.gpu_slot
        if slot is not None:
            group = gpu_groups.get((slot, ts))
            if group is None:
                gpu_groups[(slot, ts)] = [scaled]
            else:
                group.append(scaled)
        group = groups.get((target.node_slot, ts))
        if group is None:
            groups[(target.node_slot, ts)] = [scaled]
        else:
            group.append(scaled)
    return [(slot, ts, group) for (slot, ts), group in groups.items()], gpu_groups


def _without_refused(targets, values, stamps, moments, errors: _Errors):
    """The samples without those refused one by one (each error noted, in order)."""
    kept_targets, kept_values, kept_stamps = [], [], []
    isfinite = math.isfinite
    for target, value, stamp in zip(targets, values, stamps, strict=True):
        if target.compute_id is None:
            problem = target.problem
        elif not isfinite(value):
            problem = "Expected a finite number (not NaN or infinity)."
        else:
            problem = moments[stamp][1] or target.problem
        if problem:
            errors.add(_series_key(target.name, target.labels), problem)
            continue
        kept_targets.append(target)
        kept_values.append(value)
        kept_stamps.append(stamp)
    return kept_targets, kept_values, kept_stamps


def _fleet_index(tenant, names: set[tuple[str, str]], version: str | None) -> GpuFleetIndex:
    """``gpu_fleet_index`` of the scrape's names, kept while the tenant's inventory is unchanged
    (a scrape names the same hosts and GPUs every time): one small query instead of loading
    every GPU. Any write to the tenant's compute resources or GPUs (a GPU learned, relabelled
    or touched, a host renamed or deleted) changes the version (``gpu_fleet_version``), and
    the index is read again."""
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


def _gpu_shown(name: str, key: GpuKey, host: str) -> str:
    shown = f'{name}{{Hostname="{host}",gpu="{key[1]}"'
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

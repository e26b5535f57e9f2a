"""Telemetry writes: ingest, hourly rollups, retention, partitions and the retention policy.

Tenant services take ``tenant=`` and must run inside that tenant's scope (the API base and
``TenantScopedTask`` provide it); fleet services (``telemetry_partitions_*``) run outside any
scope and touch no tenant's rows.

Ingest is the hot path. A batch is checked in plain loops (no serializer objects per sample):
resources are resolved with one query per resource kind, each distinct timestamp is parsed
once, and a sample that fails the quick checks is looked at again slowly to name every problem.
The same loop files each sample in its storage block (series and UTC hour, see ``storage``).
A batch is all or nothing: any invalid sample raises ``ValidationError`` with fields such as
``samples.17.metric`` and nothing is written. Storing is idempotent: a sample's identity is
(tenant, resource, metric, ts), and a re-sent one counts as a duplicate.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from operations.inventory.models import ComputeResource, Deployment
from operations.inventory.selectors import gpus_by_reference
from operations.telemetry.metrics import (
    METRICS_BY_NAME,
    RESOURCE_KIND_BY_NAME,
    RESOURCE_KIND_LABELS,
    ResourceKind,
)
from operations.telemetry.models import (
    MIN_RAW_RETENTION_DAYS,
    TelemetryDirtyHour,
    TelemetryMonthlyCost,
    TelemetryPolicy,
    TelemetryRollup,
)
from operations.telemetry.selectors import (
    telemetry_longest_raw_retention_days,
    telemetry_policy_get,
    telemetry_retention_for,
)
from operations.telemetry.storage import Blocks, Row, group_blocks, sample_store
from tenants.audit import audited_create, audited_update
from tenants.scoping import active_scope

MAX_BATCH = 10_000
MAX_FUTURE = dt.timedelta(minutes=5)
#: Errors listed per refused batch; the rest are counted, so a bad batch stays a small answer.
MAX_REPORTED_ERRORS = 100
RETENTION_DELETE_BATCH = 10_000
_SAMPLE_FIELDS = frozenset(
    {"resource", "compute_id", "deployment_id", "gpu_id", "metric", "ts", "value"}
)
_REFERENCE_HELP = "Name the resource once: 'resource', 'compute_id', 'deployment_id' or 'gpu_id'."
_RESOURCE_FORMAT = (
    "Expected 'compute:<hostname>', 'deployment:<name>' or 'gpu:<hostname>/<index>' "
    "('gpu:<hostname>/<index>/<MIG instance>', 'gpu:GPU-<uuid>')."
)
_TS_FORMAT = (
    "Expected an ISO 8601 time with a UTC offset (e.g. '2026-11-25T10:00:00Z') or Unix seconds."  # noqa: E501
)
_ID_FIELDS = {
    "compute_id": ResourceKind.COMPUTE.value,
    "deployment_id": ResourceKind.DEPLOYMENT.value,
    "gpu_id": ResourceKind.GPU.value,
}
# name → (code, minimum, maximum, resource kinds, name): one tuple lookup on the hot path.
_METRIC_TABLE = {
    name: (m.code, m.minimum, m.maximum, m.kinds, name) for name, m in METRICS_BY_NAME.items()
}


class _Invalid(Exception):
    """A sample failed a quick check: look at it again slowly to name the problem."""


@dataclass(frozen=True)
class IngestResult:
    received: int
    inserted: int

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted

    def as_dict(self) -> dict:
        return {"received": self.received, "inserted": self.inserted, "duplicates": self.duplicates}


class BatchErrors:
    """Per-sample errors as ``<prefix>.<index>.<field>``; listed up to a limit, all counted."""

    def __init__(self, prefix: str = "samples"):
        self.prefix = prefix
        self.fields: dict[str, list[str]] = {}
        self.invalid: set = set()
        self.listed: set = set()

    def add(self, item, field: str | None, message: str) -> None:
        self.invalid.add(item)
        if item not in self.listed:
            if len(self.listed) >= MAX_REPORTED_ERRORS:
                return
            self.listed.add(item)
        key = f"{self.prefix}.{item}" if field is None else f"{self.prefix}.{item}.{field}"
        self.fields.setdefault(key, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.invalid)

    def raise_if_any(self) -> None:
        if not self.invalid:
            return
        fields = dict(self.fields)
        listed = len(self.listed)
        if len(self.invalid) > listed:
            fields[self.prefix] = [
                f"{len(self.invalid)} samples are invalid; the first {listed} are listed."
            ]
        raise ValidationError(fields)


def _require_scope_of(tenant) -> None:
    scope = active_scope()
    if scope is None or tenant.id not in scope.tenant_ids:
        raise RuntimeError(f"run telemetry services inside tenant_scope({tenant.id})")


# --- Timestamps ---------------------------------------------------------------------------------


class TimeWindow:
    """Accepted sample times: within the tenant's raw retention, at most ``MAX_FUTURE`` ahead.

    The retention is looked up only for a time older than the shortest retention allowed
    (a day): recent samples, the usual case, cost no query.
    """

    def __init__(self, tenant, now: dt.datetime):
        self.tenant = tenant
        self.latest = now + MAX_FUTURE
        self.surely_kept = now - dt.timedelta(days=MIN_RAW_RETENTION_DAYS)
        self.now = now
        self._retention_days: int | None = None

    @classmethod
    def for_tenant(cls, tenant, now: dt.datetime) -> TimeWindow:
        return cls(tenant, now)

    @property
    def retention_days(self) -> int:
        if self._retention_days is None:
            self._retention_days = telemetry_retention_for(tenant=self.tenant).raw_days
        return self._retention_days

    def problem(self, ts: dt.datetime) -> str | None:
        if ts > self.latest:
            return "More than 5 minutes in the future."
        if ts < self.surely_kept and ts < self.now - dt.timedelta(days=self.retention_days):
            return f"Older than this tenant's raw retention ({self.retention_days} days)."
        return None


def parse_timestamp(raw) -> dt.datetime:
    """An aware UTC datetime from ISO 8601 text with an offset, or from Unix seconds."""
    kind = raw.__class__
    if kind is str:
        try:
            parsed = dt.datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError(_TS_FORMAT) from None
        if parsed.tzinfo is None:
            raise ValueError("Give the time zone: a UTC offset or 'Z'.")
        return parsed.astimezone(dt.UTC)
    if kind is int or kind is float:
        if not math.isfinite(raw):
            raise ValueError(_TS_FORMAT)
        try:
            return dt.datetime.fromtimestamp(raw, tz=dt.UTC)
        except (OverflowError, OSError) as exc:
            raise ValueError(_TS_FORMAT) from exc
    raise ValueError(_TS_FORMAT)


def _checked_timestamp(raw, window: TimeWindow) -> dt.datetime | None:
    try:
        ts = parse_timestamp(raw)
    except ValueError:
        return None
    return None if window.problem(ts) else ts


# --- Resources ----------------------------------------------------------------------------------


def _parse_reference(reference: str) -> tuple[int, str] | None:
    kind_name, sep, key = reference.partition(":")
    kind = RESOURCE_KIND_BY_NAME.get(kind_name)
    if not sep or kind is None or not key:
        return None
    return kind, key


def _resolve_resources(
    *, tenant, names: dict[int, set[str]], ids: dict[int, set[int]]
) -> tuple[dict[tuple[int, str], int], dict[int, set[int]]]:
    """(natural key → id, valid ids per kind), with one query per kind that is named."""
    by_name: dict[tuple[int, str], int] = {}
    valid: dict[int, set[int]] = {kind: set() for kind in ResourceKind.values}
    gpu = ResourceKind.GPU.value
    if names[gpu] or ids[gpu]:
        resolved, known = gpus_by_reference(tenant=tenant, references=names[gpu], ids=ids[gpu])
        valid[gpu] = set(known)
        by_name.update({(gpu, reference): pk for reference, pk in resolved.items()})
    for kind, model, key in (
        (ResourceKind.COMPUTE.value, ComputeResource, "hostname"),
        (ResourceKind.DEPLOYMENT.value, Deployment, "name"),
    ):
        wanted_names, wanted_ids = names[kind], ids[kind]
        if not wanted_names and not wanted_ids:
            continue
        found = model.objects.filter(tenant=tenant).filter(
            Q(**{f"{key}__in": wanted_names}) | Q(pk__in=wanted_ids)
        )
        for pk, name in found.values_list("pk", key):
            valid[kind].add(pk)
            if name in wanted_names:
                by_name[(kind, name)] = pk
    return by_name, valid


# --- Ingest -------------------------------------------------------------------------------------


def _diagnose(
    index: int,
    sample,
    *,
    errors: BatchErrors,
    targets: dict,
    window: TimeWindow,
) -> None:
    """Name every problem of one sample (the slow path; only for samples that failed)."""
    if not isinstance(sample, dict):
        errors.add(index, None, "Expected an object with a resource, metric, ts and value.")
        return
    for field in sorted(set(sample) - _SAMPLE_FIELDS, key=str):
        errors.add(index, str(field), "Unknown field.")
    named = [
        field for field in ("resource", "compute_id", "deployment_id", "gpu_id") if field in sample
    ]
    kind = None
    if len(named) != 1:
        errors.add(index, "resource", _REFERENCE_HELP)
    elif named[0] == "resource":
        reference = sample["resource"]
        parsed = _parse_reference(reference) if isinstance(reference, str) else None
        if parsed is None:
            errors.add(index, "resource", _RESOURCE_FORMAT)
        else:
            kind = parsed[0]
            if targets.get(reference) is None:
                errors.add(
                    index, "resource", f"Unknown {RESOURCE_KIND_LABELS[kind]} '{parsed[1]}'."
                )
    else:
        field = named[0]
        value = sample[field]
        kind = _ID_FIELDS[field]
        if value.__class__ is not int:
            errors.add(index, field, "Expected an integer id.")
        elif targets.get((field, value)) is None:
            errors.add(index, field, f"Unknown {RESOURCE_KIND_LABELS[kind]} id {value}.")
    metric = None
    if "metric" not in sample:
        errors.add(index, "metric", "This field is required.")
    else:
        name = sample["metric"]
        metric = _METRIC_TABLE.get(name) if isinstance(name, str) else None
        if metric is None:
            shown = name if isinstance(name, str) else repr(name)
            errors.add(index, "metric", f"Unknown metric '{shown}'.")
        elif kind is not None and kind not in metric[3]:
            errors.add(
                index, "metric", f"Metric '{name}' does not apply to {RESOURCE_KIND_LABELS[kind]}s."
            )
    if "ts" not in sample:
        errors.add(index, "ts", "This field is required.")
    else:
        try:
            ts = parse_timestamp(sample["ts"])
        except ValueError as exc:
            errors.add(index, "ts", str(exc))
        else:
            problem = window.problem(ts)
            if problem:
                errors.add(index, "ts", problem)
    if "value" not in sample:
        errors.add(index, "value", "This field is required.")
        return
    value = sample["value"]
    if value.__class__ not in (int, float):
        errors.add(index, "value", "Expected a number.")
    elif not math.isfinite(value):
        errors.add(index, "value", "Expected a finite number (not NaN or infinity).")
    elif metric is not None and not metric[1] <= value <= metric[2]:
        code, low, high, _kinds, name = metric
        errors.add(index, "value", f"Out of range for {name}: {low:g} to {high:g}.")
    elif index not in errors.invalid:
        # Passed every check here but not the quick ones: should not happen; never store it.
        errors.add(index, None, "Invalid sample.")


def telemetry_validate_samples(
    *, tenant, samples, now: dt.datetime | None = None
) -> tuple[Blocks, set[dt.datetime]]:
    """Check a batch and turn it into storage blocks and the UTC hours they touch.

    Blocks are keyed (tenant, kind, resource, metric code, UTC hour) and map each instant to
    its value; of equal samples in the batch the first stays. Raises ``ValidationError``
    naming every offending sample (``samples.<i>.<field>``).
    """
    if not isinstance(samples, list):
        raise ValidationError({"samples": ["Expected a list of samples."]})
    if not samples:
        raise ValidationError({"samples": ["Send at least one sample."]})
    if len(samples) > MAX_BATCH:
        raise ValidationError(
            {"samples": [f"At most {MAX_BATCH} samples per batch; got {len(samples)}."]}
        )
    window = TimeWindow.for_tenant(tenant, now or timezone.now())

    # Pass 1: the distinct references, resolved with one query per resource kind.
    # Strings and None only: a list or object given as the resource is not hashable.
    given = {
        reference
        for sample in samples
        if sample.__class__ is dict
        and ((reference := sample.get("resource")) is None or reference.__class__ is str)
    }
    references = given - {None}
    # Samples naming their resource by id (the rarer form): looked for only when there are.
    by_id = (
        [s for s in samples if s.__class__ is dict and s.get("resource") is None]
        if None in given
        else []
    )
    names: dict[int, set[str]] = {kind: set() for kind in ResourceKind.values}
    ids: dict[int, set[int]] = {kind: set() for kind in ResourceKind.values}
    parsed_references = {}
    for reference in references:
        parsed = _parse_reference(reference)
        if parsed is not None:
            parsed_references[reference] = parsed
            names[parsed[0]].add(parsed[1])
    for field, kind in _ID_FIELDS.items():
        ids[kind] = {v for s in by_id if (v := s.get(field)).__class__ is int}
    by_name, valid_ids = _resolve_resources(tenant=tenant, names=names, ids=ids)
    # Reference (a string, or (field, id)) → (kind, resource id).
    targets: dict = {}
    for reference, (kind, name) in parsed_references.items():
        if (kind, name) in by_name:
            targets[reference] = (kind, by_name[(kind, name)])
    for field, kind in _ID_FIELDS.items():
        for pk in valid_ids[kind] & ids[kind]:
            targets[(field, pk)] = (kind, pk)

    # Pass 2: the quick checks, filing each sample in its block; anything odd goes to
    # _diagnose.
    errors = BatchErrors()
    blocks: Blocks = {}
    tenant_id = tenant.id
    metric_table = _METRIC_TABLE
    times: dict = {}  # raw ts → (ts, its UTC hour), or None when refused
    for index, sample in enumerate(samples):
        try:
            if sample.__class__ is not dict or len(sample) != 4:
                raise _Invalid
            reference = sample.get("resource")
            if reference is None:
                if "compute_id" in sample:
                    field = "compute_id"
                else:
                    field = "gpu_id" if "gpu_id" in sample else "deployment_id"
                pk = sample[field]
                if pk.__class__ is not int:
                    raise _Invalid
                target = targets[(field, pk)]
            else:
                target = targets[reference]
            code, low, high, kinds, _name = metric_table[sample["metric"]]
            kind = target[0]
            if kind not in kinds:
                raise _Invalid
            raw_ts = sample["ts"]
            moment = times.get(raw_ts, False)
            if moment is False:
                ts = _checked_timestamp(raw_ts, window)
                moment = times[raw_ts] = (
                    None if ts is None else (ts, ts.replace(minute=0, second=0, microsecond=0))
                )
            if moment is None:
                raise _Invalid
            value = sample["value"]
            value_class = value.__class__
            if value_class is int:
                value = float(value)
            elif value_class is not float:
                raise _Invalid
            # NaN fails every comparison, and the bounds are finite: no separate check.
            if not low <= value <= high:
                raise _Invalid
            ts, hour = moment
            key = (tenant_id, kind, target[1], code, hour)
            block = blocks.get(key)
            if block is None:
                blocks[key] = {ts: value}
            elif ts not in block:
                block[ts] = value
        except (_Invalid, KeyError, TypeError):
            _diagnose(index, sample, errors=errors, targets=targets, window=window)
    errors.raise_if_any()
    hours = {moment[1] for moment in times.values() if moment}
    return blocks, hours


def telemetry_store_blocks(*, tenant, blocks: Blocks, hours: Iterable[dt.datetime]) -> int:
    """Store checked blocks of ``tenant`` and mark their hours for the rollup; return how many
    samples were new."""
    _require_scope_of(tenant)
    store = sample_store()
    # One transaction for samples and markers; inside the request's, no extra savepoint (an
    # error rolls the whole request back anyway).
    with transaction.atomic(savepoint=False):
        if store.marks_dirty_hours:
            # In the same statement, and only the hours that received samples.
            return store.insert_blocks(blocks, mark_dirty_hours=True)
        inserted = store.insert_blocks(blocks)
        if inserted:
            TelemetryDirtyHour.objects.bulk_create(
                [TelemetryDirtyHour(tenant=tenant, hour=hour) for hour in sorted(set(hours))]
            )
    return inserted


def telemetry_store_rows(*, tenant, rows: Sequence[Row], hours: Iterable[dt.datetime]) -> int:
    """Store checked rows of ``tenant`` and mark their hours for the rollup; return how many
    were new."""
    return telemetry_store_blocks(tenant=tenant, blocks=group_blocks(rows), hours=hours)


def telemetry_ingest_batch(*, tenant, samples, now: dt.datetime | None = None) -> IngestResult:
    """Check a JSON batch of samples (all or nothing) and store it idempotently."""
    _require_scope_of(tenant)
    blocks, hours = telemetry_validate_samples(tenant=tenant, samples=samples, now=now)
    inserted = telemetry_store_blocks(tenant=tenant, blocks=blocks, hours=hours)
    return IngestResult(received=len(samples), inserted=inserted)


# --- Rollups ------------------------------------------------------------------------------------


@transaction.atomic
def telemetry_rollup_pending(*, tenant, now: dt.datetime | None = None) -> dict:
    """Recompute every hour that received samples since its last rollup.

    The markers read are deleted and their hours recomputed in one transaction: a batch that
    commits meanwhile leaves its own marker (not among those read) for the next run, so late
    data is always rolled up; recomputing an hour replaces its rows, so re-running is harmless.
    """
    _require_scope_of(tenant)
    now = now or timezone.now()
    markers = list(TelemetryDirtyHour.objects.filter(tenant=tenant).values_list("pk", "hour"))
    if not markers:
        return {"hours": 0, "rollups": 0}
    marker_ids = [pk for pk, _hour in markers]
    for start in range(0, len(marker_ids), 1000):
        TelemetryDirtyHour.objects.filter(pk__in=marker_ids[start : start + 1000]).delete()
    # An hour that retention has begun to delete keeps the rollup it has: recomputing it
    # from what is left would understate it.
    kept_from = now - dt.timedelta(days=telemetry_retention_for(tenant=tenant).raw_days)
    hours = sorted({hour for _pk, hour in markers if hour >= kept_from})
    store = sample_store()
    rollups = sum(store.rollup_hour(tenant_id=tenant.id, hour=hour, now=now) for hour in hours)
    telemetry_monthly_costs_refresh(tenant=tenant, hours=hours, now=now)
    return {"hours": len(hours), "rollups": rollups}


@transaction.atomic
def telemetry_rollup_window(
    *, tenant, start: dt.datetime, end: dt.datetime, now: dt.datetime | None = None
) -> dict:
    """Recompute every hour in [start, end) whatever the markers say (repairs, backfills)."""
    _require_scope_of(tenant)
    now = now or timezone.now()
    hour = start.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    store, rollups, recomputed = sample_store(), 0, []
    while hour < end:
        rollups += store.rollup_hour(tenant_id=tenant.id, hour=hour, now=now)
        recomputed.append(hour)
        hour += dt.timedelta(hours=1)
    telemetry_monthly_costs_refresh(tenant=tenant, hours=recomputed, now=now)
    return {"hours": len(recomputed), "rollups": rollups}


def _month_start(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(month: dt.datetime) -> dt.datetime:
    return (month + dt.timedelta(days=32)).replace(day=1)


def telemetry_monthly_costs_refresh(
    *, tenant, hours: Iterable[dt.datetime], now: dt.datetime | None = None
) -> int:
    """Recompute the month's cost (``TelemetryMonthlyCost``) of every resource with a cost
    rollup in ``hours`` (just recomputed), from all its cost rollups of that UTC month; return
    the rows written. Two queries per month touched (one, usually).

    Called by the rollup services after they recompute hours, so the stored month-to-date spend
    is as current as the rollups it is summed from.
    """
    _require_scope_of(tenant)
    now = now or timezone.now()
    cost = METRICS_BY_NAME["cost_per_hour"].code
    by_month: dict[dt.datetime, list[dt.datetime]] = {}
    for hour in hours:
        by_month.setdefault(_month_start(hour), []).append(hour)
    written = 0
    for month, month_hours in sorted(by_month.items()):
        rollups = TelemetryRollup.objects.filter(tenant=tenant, metric=cost).order_by()
        series = set(
            rollups.filter(bucket__gte=min(month_hours), bucket__lte=max(month_hours))
            .values_list("resource_kind", "resource_id")
            .distinct()
        )
        if not series:
            continue
        touched = Q()
        for kind in {kind for kind, _resource in series}:
            ids = [resource for series_kind, resource in series if series_kind == kind]
            touched |= Q(resource_kind=kind, resource_id__in=ids)
        totals = (
            rollups.filter(touched, bucket__gte=month, bucket__lt=_next_month(month))
            .values("resource_kind", "resource_id")
            .annotate(total=Sum("avg_value"), count=Count("id"))
        )
        rows = [
            TelemetryMonthlyCost(
                tenant=tenant,
                resource_kind=row["resource_kind"],
                resource_id=row["resource_id"],
                month=month.date(),
                cost=row["total"],
                hours=row["count"],
                computed_at=now,
            )
            for row in totals
        ]
        TelemetryMonthlyCost.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["tenant", "month", "resource_kind", "resource_id"],
            update_fields=["cost", "hours", "computed_at"],
        )
        written += len(rows)
    return written


# --- Retention ----------------------------------------------------------------------------------


def telemetry_retention_enforce(
    *, tenant, now: dt.datetime | None = None, batch: int = RETENTION_DELETE_BATCH
) -> dict:
    """Delete the tenant's raw samples and rollups older than its retention, in batches."""
    _require_scope_of(tenant)
    now = now or timezone.now()
    retention = telemetry_retention_for(tenant=tenant)
    raw_cutoff = now - dt.timedelta(days=retention.raw_days)
    store = sample_store()
    samples = 0
    while True:
        with transaction.atomic():
            deleted = store.delete_samples_before(
                tenant_id=tenant.id, cutoff=raw_cutoff, batch=batch
            )
        samples += deleted
        if deleted < batch:
            break
    rollup_cutoff = now - dt.timedelta(days=retention.rollup_days)
    rollups = 0
    while True:
        with transaction.atomic():
            old = TelemetryRollup.objects.filter(tenant=tenant, bucket__lt=rollup_cutoff)
            ids = list(old.order_by("bucket").values_list("pk", flat=True)[:batch])
            deleted = TelemetryRollup.objects.filter(pk__in=ids).delete()[0] if ids else 0
        rollups += deleted
        if deleted < batch:
            break
    # A month's cost goes with the last of its rollups.
    TelemetryMonthlyCost.objects.filter(
        tenant=tenant, month__lt=_month_start(rollup_cutoff).date()
    ).delete()
    return {"samples": samples, "rollups": rollups}


def telemetry_partitions_ensure(*, now: dt.datetime | None = None, ahead: int = 2) -> list[str]:
    """Make the daily partitions from yesterday to ``ahead`` days on (PostgreSQL; fleet-wide)."""
    today = (now or timezone.now()).astimezone(dt.UTC).date()
    days = [today + dt.timedelta(days=offset) for offset in range(-1, ahead + 1)]
    with transaction.atomic():
        return sample_store().ensure_partitions(days)


def telemetry_partitions_drop_expired(*, now: dt.datetime | None = None) -> list[str]:
    """Drop the partitions older than the longest raw retention in force (PostgreSQL).

    Tenants with a shorter retention lose their older rows by ``telemetry_retention_enforce``.
    """
    store = sample_store()
    if not store.partitioned:
        return []
    longest = telemetry_longest_raw_retention_days()
    cutoff = (now or timezone.now()) - dt.timedelta(days=longest)
    with transaction.atomic():
        # A day is dropped only when all of it is past the cutoff.
        return store.drop_partitions_before(cutoff.astimezone(dt.UTC).date())


# --- Policy -------------------------------------------------------------------------------------


@transaction.atomic
def telemetry_policy_update(*, tenant, **fields) -> TelemetryPolicy:
    """Set the tenant's retention (creating its policy row on first change), audited."""
    _require_scope_of(tenant)
    policy = telemetry_policy_get(tenant=tenant)
    if policy.pk is None:
        for name, value in fields.items():
            setattr(policy, name, value)
        return audited_create(tenant=tenant, instance=policy)
    return audited_update(tenant=tenant, instance=policy, data=fields)

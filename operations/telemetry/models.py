"""Telemetry: raw samples, hourly rollups, the hours waiting to be rolled up, retention policy.

``TelemetrySample`` is one row per (tenant, resource, metric, instant): the sample's identity,
so a re-sent sample is recognised and skipped. The model is ``managed = False`` and read-only
in practice: on PostgreSQL ``telemetry_sample`` is a ``security_invoker`` view unnesting
``telemetry_sample_block`` (migrations 0003, 0011), where a row holds one resource's samples
(all its metrics) of one batch within one UTC hour as parallel arrays, range-partitioned by
day with forced row-level security on the parent and every partition; on SQLite it is a plain
table with the composite primary key. See ``storage`` for why (ingest speed) and how
idempotency is kept without a per-sample unique index. The storage has no foreign keys: the
tenant comes from the request's scope (checked again by RLS on PostgreSQL), the resource from
the inventory lookup of the same batch, and a per-row referential check would cost the hot
path more than the rest of the insert.

Every write goes through ``services``; raw SQL lives in ``storage``.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from operations.telemetry.metrics import METRIC_CHOICES, ResourceKind
from tenants.scoping import TenantOwnedModel

DEFAULT_RAW_RETENTION_DAYS = 30
DEFAULT_ROLLUP_RETENTION_DAYS = 400
MIN_RAW_RETENTION_DAYS = 1
MAX_RAW_RETENTION_DAYS = 400


class TelemetrySample(TenantOwnedModel):
    pk = models.CompositePrimaryKey("tenant", "resource_kind", "resource_id", "metric", "ts")
    resource_kind = models.SmallIntegerField(choices=ResourceKind.choices)
    resource_id = models.BigIntegerField()
    metric = models.SmallIntegerField(choices=METRIC_CHOICES)
    ts = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        managed = False
        db_table = "telemetry_sample"

    def __str__(self) -> str:
        return f"{self.get_metric_display()} {self.resource_kind}:{self.resource_id} @ {self.ts}"


class TelemetryRollup(TenantOwnedModel):
    """Min, max, mean and count of one series over one UTC hour, recomputed whole."""

    resource_kind = models.SmallIntegerField(choices=ResourceKind.choices)
    resource_id = models.BigIntegerField()
    metric = models.SmallIntegerField(choices=METRIC_CHOICES)
    bucket = models.DateTimeField(help_text="Start of the UTC hour.")
    min_value = models.FloatField()
    max_value = models.FloatField()
    avg_value = models.FloatField()
    sample_count = models.PositiveIntegerField()
    computed_at = models.DateTimeField()

    class Meta:
        db_table = "telemetry_rollup"
        ordering = ["bucket"]
        constraints = [
            # Serves the upsert of a recomputed hour and the series query (prefix + range).
            models.UniqueConstraint(
                fields=["tenant", "resource_kind", "resource_id", "metric", "bucket"],
                name="telemetry_rollup_identity",
            )
        ]
        indexes = [
            # Retention deletes a tenant's oldest hours.
            models.Index(fields=["tenant", "bucket"], name="telemetry_rollup_tenant_hour"),
            # Covering for a window of one metric over many tenants (the fleet's GPU column reads
            # a day of 1,000 tenants from the index alone: 3-4x faster than through the table).
            models.Index(
                fields=["tenant", "metric", "bucket", "resource_kind", "resource_id", "avg_value"],
                name="telemetry_rollup_metric_window",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} {self.resource_kind}:{self.resource_id} {self.bucket}"


class TelemetryMonthlyCost(TenantOwnedModel):
    """What one resource cost in one UTC month so far: the sum of its hourly mean
    ``cost_per_hour`` rollups, kept by the rollup job whenever it recomputes an hour of the month
    (so the fleet's month-to-date spend is read from one row per resource, not every hour)."""

    resource_kind = models.SmallIntegerField(choices=ResourceKind.choices)
    resource_id = models.BigIntegerField()
    month = models.DateField(help_text="First day of the UTC month.")
    cost = models.FloatField(help_text="Sum of the month's hourly mean cost per hour.")
    hours = models.PositiveIntegerField(help_text="Hours with a cost rollup.")
    computed_at = models.DateTimeField()

    class Meta:
        db_table = "telemetry_monthly_cost"
        constraints = [
            # Serves the rollup job's upsert and the fleet's read (tenants, month).
            models.UniqueConstraint(
                fields=["tenant", "month", "resource_kind", "resource_id"],
                name="telemetry_monthly_cost_identity",
            )
        ]

    def __str__(self) -> str:
        return f"{self.resource_kind}:{self.resource_id} {self.month:%Y-%m} {self.cost:.2f}"


class TelemetryDirtyHour(TenantOwnedModel):
    """An hour that received samples since it was last rolled up (appended at ingest).

    Insert-only at ingest, so concurrent batches never wait on each other; the rollup job
    deletes the markers it read and recomputes their hours in the same transaction.
    """

    hour = models.DateTimeField()
    marked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "telemetry_dirty_hour"

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.hour}"


class TelemetryPolicy(TenantOwnedModel):
    """How long a tenant's raw samples and hourly rollups are kept (defaults without a row)."""

    raw_retention_days = models.PositiveIntegerField(
        default=DEFAULT_RAW_RETENTION_DAYS,
        validators=[
            MinValueValidator(MIN_RAW_RETENTION_DAYS),
            MaxValueValidator(MAX_RAW_RETENTION_DAYS),
        ],
        help_text="Raw samples older than this are deleted; samples older cannot be ingested.",
    )
    rollup_retention_days = models.PositiveIntegerField(
        default=DEFAULT_ROLLUP_RETENTION_DAYS,
        validators=[MinValueValidator(30), MaxValueValidator(3650)],
        help_text="Hourly rollups older than this are deleted.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "telemetry_policy"
        verbose_name = "telemetry policy"
        verbose_name_plural = "telemetry policies"
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="telemetry_policy_one_per_tenant")
        ]

    def __str__(self) -> str:
        return f"raw {self.raw_retention_days} d, rollups {self.rollup_retention_days} d"

    def clean(self) -> None:
        if (
            self.raw_retention_days is not None
            and self.rollup_retention_days is not None
            and self.raw_retention_days > self.rollup_retention_days
        ):
            raise ValidationError(
                {"rollup_retention_days": "Rollups must be kept at least as long as raw samples."}
            )

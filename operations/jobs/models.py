"""Job runs, their log lines, their schedules, and the outbox that carries them to the broker.

``JobRun`` and ``JobLog`` are tenant-owned, with one declared exception: a *fleet* run (the
parent of a fleet-wide fan-out, or an MSP-wide maintenance run) has no tenant. Such rows hold
no tenant data (counts and MSP-level messages only; every tenant's own work is a child run in
that tenant). The fail-closed default manager never returns them; ``JobRun.fleet`` is the
separately named manager that does, and on PostgreSQL their row-level security policy admits
tenant-less rows besides the scope's tenants (``operations.jobs.rls``).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from tenants.scoping import TenantOwnedModel


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class JobTrigger(models.TextChoices):
    USER = "user", "User"
    TOKEN = "token", "API token"
    SCHEDULE = "schedule", "Schedule"
    PARENT = "parent", "Fleet run"
    SYSTEM = "system", "System"


class LogLevel(models.TextChoices):
    DEBUG = "debug", "Debug"
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


class FleetRunManager(models.Manager):
    """Runs that belong to no tenant. A separate name, so that reaching them is explicit."""

    def get_queryset(self):
        return super().get_queryset().filter(tenant__isnull=True)


def _fleet_tenant_field(*, db_index: bool = True):
    # Nullable on purpose: a fleet run has no tenant (see the module docstring).
    return models.ForeignKey(
        "tenants.Tenant",
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        null=True,
        blank=True,
        db_index=db_index,
    )


def _set_when_present(*fields: tuple[str, str]) -> list[models.Index]:
    """Indexes on nullable columns that hold only the rows where the column is set.

    A run's status changes twice in its life (claim, finish), and PostgreSQL writes a new entry
    into every index for each of those updates; an index whose condition the row does not meet
    gets none. Most runs have no parent, schedule, token, user or dedupe key, so these cost a
    run nothing, yet still serve lookups of a value (and ``SET NULL`` when a user goes away).
    """
    return [
        models.Index(fields=[field], condition=models.Q(**{f"{field}__isnull": False}), name=name)
        for field, name in fields
    ]


class JobSchedule(TenantOwnedModel):
    """A tenant's recurring job: a django-celery-beat ``PeriodicTask`` plus what it submits."""

    key = models.CharField(max_length=100, help_text="e.g. nightly:compliance_scan")
    kind = models.CharField(max_length=64)
    parameters = models.JSONField(encoder=DjangoJSONEncoder, default=dict, blank=True)
    periodic_task = models.OneToOneField(
        PeriodicTask, on_delete=models.CASCADE, related_name="job_schedule"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="jobs_schedule_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.tenant_id})"


class JobRun(TenantOwnedModel):
    """One run of a job kind: created first, then sent; its ``task_id`` is the Celery task id."""

    # No index of its own: ``jobs_run_tenant_recent`` starts with the tenant.
    tenant = _fleet_tenant_field(db_index=False)
    task_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    queue = models.CharField(max_length=64, default="jobs")
    parameters = models.JSONField(encoder=DjangoJSONEncoder, default=dict, blank=True)
    result = models.JSONField(
        encoder=DjangoJSONEncoder, default=dict, blank=True, help_text="Summary the kind returned."
    )
    # Shown to everyone who may see the run; the traceback is for MSP staff only.
    error = models.CharField(max_length=500, blank=True)
    traceback = models.TextField(blank=True)
    progress = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    progress_message = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)

    trigger = models.CharField(max_length=20, choices=JobTrigger.choices)
    triggered_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    triggered_by_token = models.ForeignKey(
        "tenants.ApiToken",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    triggered_by_label = models.CharField(max_length=200, blank=True)
    schedule = models.ForeignKey(
        JobSchedule,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="runs",
        db_index=False,
    )
    parent = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="children",
        db_index=False,
    )
    # Set by submitters that may repeat themselves (beat redelivering a schedule's tick);
    # unique where set (``jobs_run_dedupe_key``).
    dedupe_key = models.CharField(max_length=120, null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_by = models.CharField(max_length=200, blank=True)
    # When the reaper last re-sent a run whose message was lost (None: only the first send).
    requeued_at = models.DateTimeField(null=True, blank=True)
    # Keys of the ``run.once`` units already committed, with the values they returned.
    checkpoints = models.JSONField(encoder=DjangoJSONEncoder, default=dict, blank=True)

    # A fleet parent's children, counted as they finish (the parent's aggregate progress).
    children_total = models.PositiveIntegerField(default=0)
    children_succeeded = models.PositiveIntegerField(default=0)
    children_failed = models.PositiveIntegerField(default=0)
    children_cancelled = models.PositiveIntegerField(default=0)
    awaiting_children = models.BooleanField(default=False)

    fleet = FleetRunManager()

    class Meta:
        default_manager_name = "objects"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="jobs_run_tenant_recent"),
            # The reaper's view: unfinished runs only (a finished run leaves this index).
            models.Index(
                fields=["status", "lease_expires_at"],
                condition=models.Q(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]),
                name="jobs_run_status_lease",
            ),
            # What went wrong, by kind, across tenants. Partial: a run is inserted queued and
            # updated twice, and every index its new row version meets gets an entry each time;
            # queued and running runs are in ``jobs_run_status_lease``, and succeeded ones (most
            # of the table) are found better by a scan than by an index.
            models.Index(
                fields=["kind", "status"],
                condition=models.Q(status__in=[JobStatus.FAILED, JobStatus.CANCELLED]),
                name="jobs_run_kind_unsuccessful",
            ),
            *_set_when_present(
                ("parent", "jobs_run_parent"),
                ("schedule", "jobs_run_schedule"),
                ("triggered_by_user", "jobs_run_by_user"),
                ("triggered_by_token", "jobs_run_by_token"),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="jobs_run_progress"),
            models.UniqueConstraint(
                fields=["dedupe_key"],
                condition=models.Q(dedupe_key__isnull=False),
                name="jobs_run_dedupe_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"

    @property
    def is_fleet(self) -> bool:
        return self.tenant_id is None

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def children_finished(self) -> int:
        return self.children_succeeded + self.children_failed + self.children_cancelled

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or timezone.now()
        return round((end - self.started_at).total_seconds(), 3)


class JobLog(TenantOwnedModel):
    """One log line of a run, written in batches by the worker."""

    tenant = _fleet_tenant_field()
    run = models.ForeignKey(JobRun, on_delete=models.CASCADE, related_name="logs")
    at = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=10, choices=LogLevel.choices, default=LogLevel.INFO)
    message = models.TextField()
    attempt = models.PositiveIntegerField(default=0)

    fleet = FleetRunManager()

    class Meta:
        default_manager_name = "objects"
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "id"], name="jobs_log_run")]

    def __str__(self) -> str:
        return f"[{self.level}] {self.message[:60]}"


class JobDispatch(models.Model):
    """The outbox: a task message stored in the sender's transaction, deleted once sent.

    Holds routing only (task name, ids, queue); no tenant data, so the drain reads it across
    tenants like the broker itself would.
    """

    task_name = models.CharField(max_length=200)
    task_id = models.CharField(max_length=64, db_index=True)
    kwargs = models.JSONField(encoder=DjangoJSONEncoder, default=dict)
    queue = models.CharField(max_length=64)
    options = models.JSONField(encoder=DjangoJSONEncoder, default=dict, blank=True)
    label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["available_at", "id"]
        indexes = [models.Index(fields=["available_at", "id"], name="jobs_dispatch_due")]
        verbose_name = "job dispatch (outbox)"
        verbose_name_plural = "job dispatches (outbox)"

    def __str__(self) -> str:
        return self.label or f"{self.task_name} {self.task_id}"

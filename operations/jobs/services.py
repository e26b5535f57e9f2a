"""Writes of the job engine: submit, cancel, recover, and the schedules that submit by night.

Every run is a ``JobRun`` row created first, in the submitter's transaction, with its message in
the outbox; the message is sent when the transaction commits (see ``operations.jobs.outbox``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from operations.jobs.broker import broker_view
from operations.jobs.conf import engine_settings
from operations.jobs.exceptions import JobStateConflict, UnknownJobKind
from operations.jobs.execution import (
    _one_round_trip,
    cancel_children,
    dispatch_runs,
    drop_broken_connection,
    engine_cursor,
    execute_message,
    finalise_parent_if_done,
    forget_prepared_statements,
    gave_up_message,
    logs_in,
    prepared_statement,
    record_child_outcomes,
    run_from_values,
    runs_in,
    submit_lock_key,
)
from operations.jobs.lifecycle import job_failed_notify
from operations.jobs.models import (
    JobDispatch,
    JobLog,
    JobRun,
    JobSchedule,
    JobStatus,
    JobTrigger,
    LogLevel,
)
from operations.jobs.outbox import (
    outbox_enqueue,
    outbox_send_beside,
    outbox_send_or_store,
    outbox_store_unsent,
)
from operations.jobs.registry import MAINTENANCE_QUEUE, JobKind, get_job_kind, nightly_job_kinds
from tenants.audit import audit_record
from tenants.models import AuditAction, Tenant, TenantStatus
from tenants.scoping import all_tenants_scope, rls_set_statement, scoped_atomic, tenant_scope

logger = logging.getLogger(__name__)

RUN_SCHEDULE_TASK = "jobs.run_schedule"


# --- Submitting -------------------------------------------------------------------------------


def job_kind_or_error(name: str) -> JobKind:
    try:
        return get_job_kind(name)
    except UnknownJobKind:
        raise ValidationError({"kind": [f"Unknown job kind '{name}'."]}, code="invalid") from None


def triggered_by_label(*, trigger: str, user=None, token=None, schedule=None, label: str = ""):
    if label:
        return label[:200]
    if token is not None:
        return f"{token.user.get_username()} (token {token.prefix})"[:200]
    if user is not None:
        return user.get_username()[:200]
    if schedule is not None:
        return f"schedule {schedule.key}"[:200]
    return trigger


def job_submit(
    *,
    tenant: Tenant | None,
    kind: str,
    parameters: dict | None = None,
    trigger: str = JobTrigger.SYSTEM,
    user=None,
    token=None,
    schedule: JobSchedule | None = None,
    dedupe_key: str | None = None,
    label: str = "",
) -> JobRun:
    """Create a queued run of ``kind`` in ``tenant`` (None: an MSP-wide kind) and enqueue it.

    Parameters are validated by the kind. The message leaves when the caller's transaction
    commits; with the broker down it waits in the outbox, and the run is queued all the same.
    With ``dedupe_key``, a second submission returns the first run.
    """
    job_kind = job_kind_or_error(kind)
    cleaned = job_kind.clean_parameters(parameters)
    if job_kind.tenant_scoped and tenant is None:
        raise ValidationError(
            {"tenant": [f"{kind} runs per tenant; use job_submit_fleet for every tenant."]}
        )
    if not job_kind.tenant_scoped and tenant is not None:
        raise ValidationError({"kind": [f"{kind} runs MSP-wide, not in one tenant."]})
    if trigger == JobTrigger.USER and token is not None:
        trigger = JobTrigger.TOKEN
    tenant_id = tenant.id if tenant is not None else None

    def new_run() -> JobRun:
        return _new_run(
            job_kind,
            tenant=tenant,
            parameters=cleaned,
            trigger=trigger,
            user=user,
            token=token,
            schedule=schedule,
            label=label,
        )

    if (
        dedupe_key is None
        and trigger not in (JobTrigger.USER, JobTrigger.TOKEN)
        and _one_round_trip()
    ):
        # Nothing to look up or audit: the run is its own outbox record, sent as it commits.
        return _submit_sending_while_committing(new_run(), job_kind)
    try:
        with scoped_atomic(tenant_id):
            if dedupe_key is not None:
                existing = runs_in(tenant_id).filter(dedupe_key=dedupe_key).first()
                if existing is not None:
                    return existing
            run = new_run()
            run.dedupe_key = dedupe_key
            run.save(force_insert=True)
            if trigger in (JobTrigger.USER, JobTrigger.TOKEN):
                _audit_submit(run)
            dispatch_runs([run], job_kind)
    except IntegrityError:
        if dedupe_key is None:
            raise
        # A concurrent submitter with the same key won; its run is ours.
        with scoped_atomic(tenant_id):
            return runs_in(tenant_id).get(dedupe_key=dedupe_key)
    return run


def _submit_sending_while_committing(run: JobRun, job_kind: JobKind) -> JobRun:
    """Insert ``run`` in a durable transaction of two round trips and send its message while
    that transaction commits (PostgreSQL, outside any transaction; no dedupe key, nothing to
    audit).

    ``scoped_atomic`` would cost five round trips (BEGIN, the scope, the run, its outbox row,
    COMMIT) and the sender a sixth (deleting the sent outbox row). Here the first round trip
    opens the transaction, sets the scope (``set_config(…, true)`` holds for this transaction
    alone), takes the run's submit lock and inserts the run; the second is the COMMIT, as
    durable as ever (no relaxed commit), and the message goes to the broker from the sender
    thread while the COMMIT waits for the disk: the two waits overlap instead of adding up.
    A worker may so receive the message before the run is visible: its claim waits for the
    submit lock, which PostgreSQL releases only once the commit is visible
    (``execution.submit_lock_key``). Should the commit fail, the message names a run that
    never existed, and the worker drops it as missing.

    The queued run is its own outbox record: no outbox row is written unless the broker
    refuses the message, and then it is stored due now, after the commit, for the drain (as
    the on-commit sender leaves it). Only a crash of this process between the commit and the
    send leaves a queued run without a message; recovery re-sends it after
    ``JOBS_QUEUED_RESEND_AFTER_SECONDS``, having checked that it is in neither the outbox nor
    the broker.
    """
    columns, definition = _run_insert_definition()
    # Only the columns a submit sets go as parameters; the others are constants of the
    # prepared statement (their defaults, which ``_new_run`` leaves as they are).
    state = run.__dict__
    values = [state[attname] for attname in columns]
    values[_PARAMETERS_INDEX] = _JSON_DUMPER(values[_PARAMETERS_INDEX])
    sql, params = "BEGIN; SELECT ", []
    if run.tenant_id is not None:
        # What tenant_scope(tenant_id) gives row-level security, for this transaction only.
        statement, statement_params = rls_set_statement([run.tenant_id])
        sql += f"{statement.removeprefix('SELECT ')}, "
        params += statement_params
    sql += "pg_advisory_xact_lock(%s, %s); "
    params += submit_lock_key(run.task_id)
    sending = None
    with engine_cursor() as cursor:
        try:
            prepare, name = prepared_statement("submit", definition)
            sql = sql.replace("BEGIN; ", f"BEGIN; {prepare}", 1)
            sql += f"EXECUTE {name}({', '.join(['%s'] * len(values))})"
            try:
                cursor.execute(sql, params + values)
            except BaseException:
                forget_prepared_statements()
                raise
            for _ in range(sql.count(";")):
                cursor.nextset()
            (run.pk,) = cursor.fetchone()
            messages = [execute_message(run, job_kind)]
            sending = outbox_send_beside(messages)
            cursor.execute("COMMIT")
        except BaseException:
            _roll_back_open_transaction(cursor)
            raise
        finally:
            # Even when the commit failed: the sender thread is done with the message.
            outcome = sending.result() if sending is not None else None
    run._state.adding = False
    run._state.db = connection.alias
    if outcome is None:
        outbox_send_or_store(messages)  # eager tasks run now, after the commit
    else:
        outbox_store_unsent(messages, *outcome)
    return run


def _roll_back_open_transaction(cursor) -> None:
    """End the transaction a failed submit opened with its BEGIN (Django knows nothing of it)."""
    from psycopg.pq import TransactionStatus

    raw = connection.connection
    if raw is None or raw.closed:
        return
    if raw.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        try:
            cursor.execute("ROLLBACK")
        except DatabaseError:
            drop_broken_connection()


# The run's columns a submit sets (attnames, in this order); every other column is inserted
# with its field's default, as ``_new_run`` leaves it.
_SUBMIT_ATTNAMES = (
    "tenant_id",
    "task_id",
    "kind",
    "queue",
    "parameters",
    "max_attempts",
    "trigger",
    "triggered_by_user_id",
    "triggered_by_token_id",
    "triggered_by_label",
    "schedule_id",
    "created_at",
)
_PARAMETERS_INDEX = _SUBMIT_ATTNAMES.index("parameters")


def _JSON_DUMPER(value):
    """The parameters as the column's own encoder writes them (``JobRun.parameters``)."""
    return JobRun._meta.get_field("parameters").get_db_prep_save(value, connection)


_RUN_INSERT: tuple[tuple[str, ...], Callable[[], str]] | None = None


def _run_insert_definition() -> tuple[tuple[str, ...], Callable[[], str]]:
    """The attnames a submit's values come from, and a callable giving its one-row ``INSERT …
    RETURNING id`` as a ``PREPARE`` definition (PostgreSQL; the values' types are the
    columns'), the other columns as constants: their defaults."""
    global _RUN_INSERT
    if _RUN_INSERT is None:

        def definition() -> str:
            from psycopg import sql as pgsql

            quote = connection.ops.quote_name
            raw = connection.connection
            fields = [field for field in JobRun._meta.concrete_fields if not field.primary_key]
            values = []
            for field in fields:
                if field.attname in _SUBMIT_ATTNAMES:
                    values.append(f"${_SUBMIT_ATTNAMES.index(field.attname) + 1}")
                else:
                    default = field.get_db_prep_save(field.get_default(), connection)
                    values.append(pgsql.Literal(default).as_string(raw))
            # Identifiers come from the model's metadata, constants from its defaults (quoted
            # by psycopg); every submitted value is a parameter.
            return (
                f"AS INSERT INTO {quote(JobRun._meta.db_table)} "  # noqa: S608
                f"({', '.join(quote(field.column) for field in fields)}) "
                f"VALUES ({', '.join(values)}) RETURNING id"
            )

        _RUN_INSERT = (_SUBMIT_ATTNAMES, definition)
    return _RUN_INSERT


def job_submit_many(
    *,
    tenant: Tenant | None,
    kind: str,
    parameters: Sequence[dict | None],
    trigger: str = JobTrigger.SYSTEM,
    user=None,
    token=None,
    label: str = "",
) -> list[JobRun]:
    """Submit one run of ``kind`` per entry of ``parameters``, all in one transaction.

    The batch form of :func:`job_submit` (same validation, audit and outbox), for callers that
    have many runs to start at once: one insert for the runs, one for their outbox rows, one
    commit, and their messages go out through one broker connection. All or nothing: one
    invalid entry rejects the batch, naming its index (``parameters[3].seconds``).
    """
    job_kind = job_kind_or_error(kind)
    if job_kind.tenant_scoped and tenant is None:
        raise ValidationError(
            {"tenant": [f"{kind} runs per tenant; use job_submit_fleet for every tenant."]}
        )
    if not job_kind.tenant_scoped and tenant is not None:
        raise ValidationError({"kind": [f"{kind} runs MSP-wide, not in one tenant."]})
    if isinstance(parameters, (dict, str)):
        raise ValidationError({"parameters": ["Expected a list of objects, one per run."]})
    cleaned = []
    for index, entry in enumerate(parameters):
        try:
            cleaned.append(job_kind.clean_parameters(entry))
        except ValidationError as error:
            raise ValidationError(
                {
                    key.replace("parameters", f"parameters[{index}]", 1): value
                    for key, value in error.message_dict.items()
                }
            ) from None
    if not cleaned:
        return []
    if trigger == JobTrigger.USER and token is not None:
        trigger = JobTrigger.TOKEN
    tenant_id = tenant.id if tenant is not None else None
    runs = [
        _new_run(
            job_kind,
            tenant=tenant,
            parameters=entry,
            trigger=trigger,
            user=user,
            token=token,
            label=label,
        )
        for entry in cleaned
    ]
    with scoped_atomic(tenant_id):
        runs_in(tenant_id).bulk_create(runs)
        if trigger in (JobTrigger.USER, JobTrigger.TOKEN):
            for run in runs:
                _audit_submit(run)
        dispatch_runs(runs, job_kind)
    return runs


def _new_run(
    job_kind: JobKind,
    *,
    tenant: Tenant | None,
    parameters: dict,
    trigger: str,
    user=None,
    token=None,
    schedule: JobSchedule | None = None,
    label: str = "",
) -> JobRun:
    """An unsaved queued run of ``job_kind``; ``parameters`` are already cleaned.

    Built from the fields' defaults in column order (``run_from_values``): Django's keyword
    ``__init__`` looks up the default of every field not given, once per run.
    """
    user = user if user is not None and user.is_authenticated else None
    values = _run_defaults()
    values[_RUN_POSITION["tenant_id"]] = tenant.id if tenant is not None else None
    values[_RUN_POSITION["kind"]] = job_kind.name
    values[_RUN_POSITION["queue"]] = job_kind.queue
    values[_RUN_POSITION["parameters"]] = parameters
    values[_RUN_POSITION["max_attempts"]] = job_kind.max_attempts
    values[_RUN_POSITION["trigger"]] = trigger
    values[_RUN_POSITION["triggered_by_user_id"]] = user.pk if user is not None else None
    values[_RUN_POSITION["triggered_by_token_id"]] = token.pk if token is not None else None
    values[_RUN_POSITION["triggered_by_label"]] = triggered_by_label(
        trigger=trigger, user=user, token=token, schedule=schedule, label=label
    )
    values[_RUN_POSITION["schedule_id"]] = schedule.pk if schedule is not None else None
    run = run_from_values(values)
    # As JobRun(tenant=tenant, …) would: the objects given are cached, not fetched again.
    for name, related in (
        ("tenant", tenant),
        ("triggered_by_user", user),
        ("triggered_by_token", token),
        ("schedule", schedule),
    ):
        if related is not None:
            run._state.fields_cache[name] = related
    return run


_RUN_POSITION = {field.attname: index for index, field in enumerate(JobRun._meta.concrete_fields)}


_RUN_DEFAULTS: tuple[list, list] | None = None


def _run_defaults() -> list:
    """A new run's values in column order: each field's default (a fresh one for callables)."""
    global _RUN_DEFAULTS
    if _RUN_DEFAULTS is None:
        fields = JobRun._meta.concrete_fields
        factories = [
            (index, field.default)
            for index, field in enumerate(fields)
            if field.has_default() and callable(field.default)
        ]
        # The rest are immutable: a literal default, or None / "" for a field without one.
        _RUN_DEFAULTS = ([field.get_default() for field in fields], factories)
    constants, factories = _RUN_DEFAULTS
    values = list(constants)
    for index, factory in factories:
        values[index] = factory()
    return values


def job_submit_fleet(
    *,
    kind: str,
    parameters: dict | None = None,
    tenant_ids: list[int] | None = None,
    trigger: str = JobTrigger.USER,
    user=None,
    label: str = "",
) -> JobRun:
    """Create a fleet run: a parent (no tenant) that fans out one child run per tenant.

    ``tenant_ids`` limits it to those tenants; by default it covers every active tenant at the
    time it starts. The parent's progress aggregates its children as they finish.
    """
    job_kind = job_kind_or_error(kind)
    if not job_kind.tenant_scoped:
        raise ValidationError({"kind": [f"{kind} is MSP-wide already; submit it with no tenant."]})
    cleaned = job_kind.clean_parameters(parameters)
    checkpoints = {}
    if tenant_ids is not None:
        known = sorted(Tenant.objects.filter(pk__in=tenant_ids).values_list("id", flat=True))
        checkpoints["tenants"] = {"value": known, "at": timezone.now().isoformat()}
    with transaction.atomic():
        run = JobRun(
            tenant=None,
            kind=job_kind.name,
            queue=job_kind.queue,
            parameters=cleaned,
            max_attempts=job_kind.max_attempts,
            trigger=trigger,
            triggered_by_user=user if user is not None and user.is_authenticated else None,
            triggered_by_label=triggered_by_label(trigger=trigger, user=user, label=label),
            checkpoints=checkpoints,
        )
        run.save(force_insert=True)
        if trigger in (JobTrigger.USER, JobTrigger.TOKEN):
            _audit_submit(run)
        dispatch_runs([run], job_kind)
    return run


def _audit_submit(run: JobRun) -> None:
    audit_record(
        tenant=run.tenant,
        action=AuditAction.CREATE,
        instance=run,
        changes={"kind": [None, run.kind], "parameters": [None, run.parameters]},
    )


def job_run_again(*, run: JobRun, user=None) -> JobRun:
    """A new run with the same kind, tenant and parameters (the admin's "run again now")."""
    if run.tenant_id is None:
        return job_submit_fleet(kind=run.kind, parameters=run.parameters, user=user)
    return job_submit(
        tenant=run.tenant,
        kind=run.kind,
        parameters=run.parameters,
        trigger=JobTrigger.USER,
        user=user,
    )


# --- Cancelling -------------------------------------------------------------------------------


def job_cancel(*, run: JobRun, user=None, token=None, label: str = "") -> JobRun:
    """Cancel a queued run now; ask a running one to stop at its next progress point.

    Raises ``JobStateConflict`` for a finished run.
    """
    by = triggered_by_label(trigger=JobTrigger.USER, user=user, token=token, label=label)
    now = timezone.now()
    tenant_id = run.tenant_id
    with scoped_atomic(tenant_id):
        locked = runs_in(tenant_id).select_for_update().get(pk=run.pk)
        if locked.is_finished:
            raise JobStateConflict(f"This run has already {locked.status}; nothing to cancel.")
        previous = locked.status
        if locked.cancel_requested_at is None:
            locked.cancel_requested_at = now
            locked.cancel_requested_by = by
        fields = ["cancel_requested_at", "cancel_requested_by"]
        # A fleet parent waiting for its children has no worker that would notice the flag.
        if locked.status == JobStatus.QUEUED or locked.awaiting_children:
            locked.status = JobStatus.CANCELLED
            locked.finished_at = now
            locked.lease_expires_at = None
            locked.awaiting_children = False
            fields += ["status", "finished_at", "lease_expires_at", "awaiting_children"]
            message = f"Cancelled by {by}."
        else:
            message = f"Cancellation requested by {by}; the job stops at its next progress point."
        locked.save(update_fields=fields)
        logs_in(tenant_id).create(
            tenant_id=tenant_id, run=locked, message=message, attempt=locked.attempts
        )
        if locked.status == JobStatus.CANCELLED and locked.parent_id is not None:
            record_child_outcomes(locked.parent_id, {JobStatus.CANCELLED: 1})
        if user is not None or token is not None:
            audit_record(
                tenant=locked.tenant,
                action=AuditAction.TRANSITION,
                instance=locked,
                changes={"status": [previous, locked.status], "cancel_requested_by": [None, by]},
            )
    if locked.is_fleet:
        cancel_children(locked.pk, by=by)
    return locked


# --- Recovery ---------------------------------------------------------------------------------


@dataclass
class RecoveryResult:
    requeued: int = 0
    failed: int = 0
    resent: int = 0
    parents_finished: int = 0


def job_runs_recover(*, now=None, limit: int = 500) -> RecoveryResult:
    """Re-queue runs whose worker died (lease expired) and re-send queued runs whose message
    was lost; fail runs that used all their attempts. Runs across every tenant (maintenance).
    """
    now = now or timezone.now()
    result = RecoveryResult()
    with all_tenants_scope(), transaction.atomic(savepoint=False):
        # Maintenance reads every tenant's runs, and fleet runs (the scope above covers all).
        runs = JobRun.objects.unscoped()
        stale = list(
            runs.select_for_update(skip_locked=True)
            .filter(status=JobStatus.RUNNING, lease_expires_at__lt=now)
            .order_by("lease_expires_at")[:limit]
        )
        to_send: list[JobRun] = []
        for run in stale:
            if run.attempts >= run.max_attempts:
                _fail_exhausted(run, now)
                result.failed += 1
                continue
            run.status = JobStatus.QUEUED
            run.lease_expires_at = None
            run.requeued_at = now
            run.progress_message = "Re-queued: its worker stopped responding."
            run.save(
                update_fields=["status", "lease_expires_at", "requeued_at", "progress_message"]
            )
            _log(run, f"Attempt {run.attempts} lost its worker; re-queued.", LogLevel.WARNING)
            to_send.append(run)
            result.requeued += 1
        outbox_enqueue(execute_message(run) for run in to_send)
    result.parents_finished = fleet_parents_finish_counted()
    settings = engine_settings()
    resent = job_runs_resend_queued(
        older_than=settings.queued_resend_after_seconds,
        blind_older_than=settings.queued_stale_seconds,
        now=now,
        limit=limit,
    )
    result.resent = len(resent)
    return result


def fleet_parents_finish_counted() -> int:
    """Finish fleet parents whose children are all counted but that are still running.

    The child counted last finishes its parent right after its own finish commits; this is
    the net for a worker that died in between.
    """
    finished = F("children_succeeded") + F("children_failed") + F("children_cancelled")
    parent_ids = list(
        JobRun.fleet.filter(
            status=JobStatus.RUNNING, awaiting_children=True, children_total__lte=finished
        ).values_list("id", flat=True)
    )
    return sum(finalise_parent_if_done(parent_id) for parent_id in parent_ids)


def job_runs_resend_queued(
    *,
    older_than: float,
    tenant: Tenant | None = None,
    blind_older_than: float | None = None,
    now=None,
    limit: int = 500,
) -> list[JobRun]:
    """Re-send queued runs at least ``older_than`` seconds old whose message was lost: not in
    the outbox and not in the broker (queued or taken unacknowledged). Returns the runs sent.

    Idempotent: the message carries the run's own task id, and the claim takes a run once per
    attempt, so a re-send of a run whose message was there after all, or that started
    meanwhile, is dropped by the worker and runs nothing twice. A run re-sent (or re-queued)
    within ``older_than`` is left alone. When the broker cannot be read completely, only runs
    older than ``blind_older_than`` are sent (``None``: all of them, an operator's choice).
    ``tenant`` limits it to one tenant's runs (fleet runs only without one).
    """
    now = now or timezone.now()
    cutoff = now - timezone.timedelta(seconds=older_than)
    with _runs_scope(tenant):
        candidates = list(
            _queued_runs(tenant)
            .filter(created_at__lte=cutoff)
            .exclude(requeued_at__gt=cutoff)
            .order_by("created_at")
            .values("id", "task_id", "queue", "created_at", "requeued_at")[:limit]
        )
    if not candidates:
        return []
    pending = set(
        JobDispatch.objects.filter(
            task_id__in=[str(run["task_id"]) for run in candidates]
        ).values_list("task_id", flat=True)
    )
    candidates = [run for run in candidates if str(run["task_id"]) not in pending]
    if not candidates:
        return []
    # Outside any transaction: a network read of the broker.
    view = broker_view(run["queue"] for run in candidates)
    if view.complete:
        lost = [run for run in candidates if not view.holds(run["task_id"])]
    elif blind_older_than is None:
        lost = candidates
    else:
        blind_cutoff = now - timezone.timedelta(seconds=blind_older_than)
        lost = [
            run
            for run in candidates
            if run["created_at"] <= blind_cutoff
            and (run["requeued_at"] is None or run["requeued_at"] <= blind_cutoff)
        ]
    if not lost:
        return []
    with _runs_scope(tenant), transaction.atomic(savepoint=False):
        # Still queued (not claimed since it was read), and not being recovered by another.
        runs = list(
            _queued_runs(tenant)
            .select_for_update(skip_locked=True)
            .filter(pk__in=[run["id"] for run in lost])
            .exclude(requeued_at__gt=cutoff)
            .order_by("created_at")
        )
        for run in runs:
            run.requeued_at = now
            run.save(update_fields=["requeued_at"])
            _log(run, "Still queued and its message is lost; sending it again.", LogLevel.WARNING)
        outbox_enqueue(execute_message(run, _kind_or_none(run.kind)) for run in runs)
    return runs


def _runs_scope(tenant: Tenant | None):
    return tenant_scope(tenant.id) if tenant is not None else all_tenants_scope()


def _queued_runs(tenant: Tenant | None):
    runs = JobRun.objects.unscoped() if tenant is None else JobRun.objects.filter(tenant=tenant)
    return runs.filter(status=JobStatus.QUEUED)


def _kind_or_none(name: str) -> JobKind | None:
    try:
        return get_job_kind(name)
    except UnknownJobKind:
        return None


def _fail_exhausted(run: JobRun, now) -> None:
    run.status = JobStatus.FAILED
    run.finished_at = now
    run.lease_expires_at = None
    run.error = gave_up_message(run.attempts)
    run.save(update_fields=["status", "finished_at", "lease_expires_at", "error"])
    _log(run, run.error, LogLevel.ERROR)
    if run.parent_id is not None:
        record_child_outcomes(run.parent_id, {JobStatus.FAILED: 1})
    job_failed_notify(run=run)


def _log(run: JobRun, message: str, level: str = LogLevel.INFO) -> JobLog:
    return logs_in(run.tenant_id).create(
        tenant_id=run.tenant_id, run=run, message=message, level=level, attempt=run.attempts
    )


# --- Schedules --------------------------------------------------------------------------------

# Nightly runs start between 01:00 and 05:00 in the tenant's plan time zone.
NIGHT_STARTS_AT_MINUTE = 60
NIGHT_WINDOW_MINUTES = 240
_GOLDEN_RATIO_FRACTION = 0.6180339887498949


def nightly_slot(*, tenant_id: int, kind_index: int = 0, kind_count: int = 1) -> tuple[int, int]:
    """(hour, minute) of a tenant's nightly run: deterministic from the tenant id.

    Successive tenant ids land far apart and fill the window evenly (a golden-ratio sequence),
    and each nightly kind of one tenant is offset by an equal share of the window.
    """
    fraction = (tenant_id * _GOLDEN_RATIO_FRACTION + kind_index / max(kind_count, 1)) % 1.0
    minute = NIGHT_STARTS_AT_MINUTE + int(fraction * NIGHT_WINDOW_MINUTES)
    return divmod(minute, 60)


def _plan_timezone(tenant: Tenant) -> str:
    plan = getattr(tenant, "plan", None)
    return plan.timezone if plan is not None else "UTC"


def _crontab(*, hour: int, minute: int, timezone_name: str) -> CrontabSchedule:
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=str(minute),
        hour=str(hour),
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=timezone_name,
    )
    return crontab


def job_schedule_create(
    *,
    tenant: Tenant,
    key: str,
    kind: str,
    crontab: CrontabSchedule,
    parameters: dict | None = None,
    description: str = "",
) -> JobSchedule:
    """A tenant's recurring job: a beat ``PeriodicTask`` that submits ``kind`` when it fires."""
    job_kind = job_kind_or_error(kind)
    if not job_kind.tenant_scoped:
        raise ValidationError({"kind": [f"{kind} runs MSP-wide, not per tenant."]})
    cleaned = job_kind.clean_parameters(parameters)
    with scoped_atomic(tenant.id):
        periodic_task, _ = PeriodicTask.objects.update_or_create(
            name=f"jobs:{tenant.id}:{key}",
            defaults={
                "task": RUN_SCHEDULE_TASK,
                "crontab": crontab,
                "interval": None,
                "kwargs": json.dumps({"tenant_id": tenant.id, "key": key}),
                "queue": MAINTENANCE_QUEUE,
                "enabled": True,
                "description": description or f"{job_kind.title or kind} for {tenant.name}",
            },
        )
        schedule = JobSchedule(
            tenant=tenant, key=key, kind=kind, parameters=cleaned, periodic_task=periodic_task
        )
        schedule.save(force_insert=True)
        audit_record(
            tenant=tenant,
            action=AuditAction.CREATE,
            instance=schedule,
            changes={
                "key": [None, key],
                "kind": [None, kind],
                "crontab": [None, str(crontab)],
                "parameters": [None, cleaned],
            },
        )
    return schedule


def job_schedules_ensure_for_tenant(*, tenant: Tenant) -> list[JobSchedule]:
    """Give ``tenant`` its nightly schedules (one per nightly kind), staggered over 01:00–05:00
    in its plan's time zone. Idempotent: existing schedules keep their (maybe edited) times and
    are re-enabled.
    """
    kinds = nightly_job_kinds()
    timezone_name = _plan_timezone(tenant)
    with scoped_atomic(tenant.id):
        existing = {s.key: s for s in JobSchedule.objects.select_related("periodic_task")}
        schedules = []
        for index, kind in enumerate(kinds):
            key = f"nightly:{kind.name}"
            schedule = existing.get(key)
            if schedule is not None:
                _set_enabled(schedule, True)
                schedules.append(schedule)
                continue
            hour, minute = nightly_slot(
                tenant_id=tenant.id, kind_index=index, kind_count=len(kinds)
            )
            schedules.append(
                job_schedule_create(
                    tenant=tenant,
                    key=key,
                    kind=kind.name,
                    crontab=_crontab(hour=hour, minute=minute, timezone_name=timezone_name),
                    description=f"{kind.title or kind.name} for {tenant.name}, nightly",
                )
            )
    return schedules


def job_schedules_sync_for_tenant(*, tenant: Tenant) -> list[JobSchedule]:
    """After a lifecycle transition: an active tenant gets (or regains) its nightly schedules;
    any other status pauses all its schedules."""
    if tenant.status == TenantStatus.ACTIVE:
        return job_schedules_ensure_for_tenant(tenant=tenant)
    with scoped_atomic(tenant.id):
        schedules = list(JobSchedule.objects.select_related("periodic_task"))
        for schedule in schedules:
            _set_enabled(schedule, False)
    return schedules


def _set_enabled(schedule: JobSchedule, enabled: bool) -> None:
    task = schedule.periodic_task
    if task.enabled == enabled:
        return
    task.enabled = enabled
    task.save(update_fields=["enabled"])  # save(), so beat notices the change
    audit_record(
        tenant=schedule.tenant,
        action=AuditAction.UPDATE,
        instance=schedule,
        changes={"enabled": [not enabled, enabled]},
    )


def job_schedule_update(
    *, schedule: JobSchedule, hour: int, minute: int, enabled: bool
) -> JobSchedule:
    """Move a schedule to ``hour:minute`` (its current time zone) and/or pause it."""
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ValidationError({"hour": ["Give an hour 0–23 and a minute 0–59."]})
    task = schedule.periodic_task
    timezone_name = str(task.crontab.timezone) if task.crontab else _plan_timezone(schedule.tenant)
    before = {"crontab": str(task.crontab), "enabled": task.enabled}
    with scoped_atomic(schedule.tenant_id):
        task.crontab = _crontab(hour=hour, minute=minute, timezone_name=timezone_name)
        task.enabled = enabled
        task.save(update_fields=["crontab", "enabled"])
        after = {"crontab": str(task.crontab), "enabled": task.enabled}
        changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
        if changes:
            audit_record(
                tenant=schedule.tenant,
                action=AuditAction.UPDATE,
                instance=schedule,
                changes=changes,
            )
    return schedule


def job_schedule_fire(*, tenant_id: int, key: str, dedupe_key: str | None = None) -> JobRun | None:
    """Beat's tick for a tenant's schedule: submit its run (once per tick), if still wanted."""
    tenant = Tenant.objects.filter(pk=tenant_id).select_related("plan").first()
    if tenant is None or tenant.status != TenantStatus.ACTIVE:
        logger.info("jobs: schedule %s of tenant %s skipped (not active)", key, tenant_id)
        return None
    with tenant_scope(tenant.id):
        schedule = JobSchedule.objects.filter(key=key).first()
    if schedule is None:
        return None
    return job_submit(
        tenant=tenant,
        kind=schedule.kind,
        parameters=schedule.parameters,
        trigger=JobTrigger.SCHEDULE,
        schedule=schedule,
        dedupe_key=dedupe_key,
    )


def job_schedule_run_now(*, schedule: JobSchedule, user=None) -> JobRun:
    """Run a schedule's job now, as a manual run: the schedule itself is left as it is."""
    return job_submit(
        tenant=schedule.tenant,
        kind=schedule.kind,
        parameters=schedule.parameters,
        trigger=JobTrigger.USER if user is not None else JobTrigger.SYSTEM,
        user=user,
        schedule=schedule,
    )

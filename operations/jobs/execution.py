"""Running one attempt of a job run on a worker: claim, heartbeat, context, finish.

Delivery is at-least-once (acks_late, redelivery after a lost worker, the reaper, the outbox
drain), so everything here is keyed by the run and fenced by its attempt number:

- a delivery *claims* the run with one conditional UPDATE: a queued run, or a running run
  whose lease expired (its worker died). A finished run, or one whose lease is alive, is left
  alone: a redelivered message for a finished run does nothing;
- the claiming attempt renews its lease from a heartbeat thread and at every progress point;
- every later write of the attempt is conditional on ``attempts`` still being its own, so a
  worker that was presumed dead and wakes up cannot overwrite its successor;
- ``run.once(key, fn)`` commits ``fn``'s writes together with a checkpoint, so a unit of work
  that committed before the worker died is not done again by the next attempt.

Runs are not wrapped in one transaction: progress and log lines must be visible while the job
runs (and on SQLite a long write transaction would block every other writer). Kinds open short
scoped transactions themselves (``run.scope()``, ``run.once()``).

Durability of the worker's bookkeeping. On PostgreSQL the engine's own writes on the worker — the
claim, lease renewals, progress, buffered log lines, the finish — commit with ``SET LOCAL
synchronous_commit = off`` (``relaxed_commit``): they are visible to everyone at once and written
to disk within a few hundred milliseconds, but the worker does not wait for the WAL flush (on a
small disk that flush is most of a no-op job's cost). Only a crash of the PostgreSQL server itself
can lose them (never a crash of a worker or of the client), and only the last moments; every such
loss is one the engine already recovers from:

- a lost finish (and progress) leaves the run ``running`` under its last lease: the lease
  expires and the reaper re-queues it, as after a killed worker (at-least-once, as always);
- a lost claim loses the finish after it too (the WAL is a sequence), so the run is ``queued``
  again; its message was acknowledged, so recovery re-sends it after
  ``JOBS_QUEUED_RESEND_AFTER_SECONDS`` (the same path as a message lost by the broker);
- lost log lines and heartbeats are only lines and timestamps.

What is not the engine's own bookkeeping stays fully durable: submitting (the run and its outbox
row), cancelling, recovery, and ``run.once()`` (a kind's effects with their checkpoint).
``JOBS_RELAXED_COMMIT = False`` turns the relaxation off.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    connections,
    transaction,
)
from django.db.models import F
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from django.utils import timezone

from operations.jobs.conf import engine_settings
from operations.jobs.exceptions import JobCancelled, LeaseLost, TransientJobError, UnknownJobKind
from operations.jobs.lifecycle import job_failed_hooks, job_failed_notify
from operations.jobs.models import JobLog, JobRun, JobStatus, LogLevel
from operations.jobs.outbox import EXECUTE_TASK, OutboxMessage, outbox_enqueue
from operations.jobs.registry import JobKind, get_job_kind
from tenants.audit import AUTOMATIC_LABEL, AuditActor, audit_actor
from tenants.models import Tenant, TenantStatus
from tenants.scoping import (
    advisory_lock_class,
    advisory_lock_object,
    all_tenants_scope,
    rls_set_statement,
    scoped_atomic,
    tenant_scope,
)

logger = logging.getLogger(__name__)

# --- Scopes and transactions ----------------------------------------------------------------


@contextmanager
def relaxed_atomic(tenant_id: int | None) -> Iterator[None]:
    """``scoped_atomic`` for the engine's own bookkeeping on the worker: a relaxed commit.

    Relaxed only when this block is the whole transaction: inside a caller's transaction (a
    kind reporting progress within ``run.scope()``) the caller's writes keep their durability.
    """
    relax = (
        connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and engine_settings().relaxed_commit
    )
    with scoped_atomic(tenant_id):
        if relax:
            with connection.cursor() as cursor:
                # SET LOCAL: for this transaction only.
                cursor.execute("SET LOCAL synchronous_commit = off")
        yield


def runs_in(tenant_id: int | None):
    """The manager that reaches runs of ``tenant_id`` (inside its scope) or fleet runs."""
    return JobRun.objects if tenant_id is not None else JobRun.fleet


def logs_in(tenant_id: int | None):
    return JobLog.objects if tenant_id is not None else JobLog.fleet


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- Messages -------------------------------------------------------------------------------


def execute_message(run: JobRun, kind: JobKind | None = None) -> OutboxMessage:
    """The Celery message that executes ``run``; its task id is the run's ``task_id``."""
    options = {}
    if kind is not None:
        if kind.soft_time_limit:
            options["soft_time_limit"] = kind.soft_time_limit
        if kind.time_limit:
            options["time_limit"] = kind.time_limit
    return OutboxMessage(
        task_name=EXECUTE_TASK,
        task_id=str(run.task_id),
        queue=run.queue,
        kwargs={"run_id": run.pk, "tenant_id": run.tenant_id},
        options=options,
        label=f"{run.kind} run {run.pk}",
    )


def dispatch_runs(runs: list[JobRun], kind: JobKind | None = None) -> None:
    """Enqueue ``runs`` through the outbox, in the caller's transaction."""
    outbox_enqueue(execute_message(run, kind) for run in runs)


# --- The context a kind receives as ``run`` ---------------------------------------------------


class JobContext:
    """What a job kind's function gets as ``run``: the attempt's handle on its JobRun."""

    def __init__(self, run: JobRun, kind: JobKind):
        self.model = run
        self.id: int = run.pk
        self.tenant_id: int | None = run.tenant_id
        self.kind = kind
        self.parameters: dict = dict(run.parameters)
        self.attempt: int = run.attempts
        self._checkpoints: dict = dict(run.checkpoints or {})
        self._buffer: list[JobLog] = []
        self._settings = engine_settings()
        self._last_flush = time.monotonic()
        self._last_check = time.monotonic()
        # Set by the heartbeat thread; acted on at the next progress point.
        self.cancel_seen = False
        self.lease_lost = False
        self._tenant: Tenant | None = None

    # -- reading --
    @property
    def tenant(self) -> Tenant | None:
        if self._tenant is None and self.tenant_id is not None:
            self._tenant = Tenant.objects.get(pk=self.tenant_id)
        return self._tenant

    @contextmanager
    def scope(self) -> Iterator[None]:
        """The run's tenant scope, in one transaction (PostgreSQL sets row-level security)."""
        if self.tenant_id is None:
            raise RuntimeError(f"{self.kind.name} run {self.id} belongs to no tenant")
        with scoped_atomic(self.tenant_id):
            yield

    # -- logging --
    def log(self, message: str, *, level: str = LogLevel.INFO) -> None:
        """Append a log line; lines are written in batches (at progress points at the latest)."""
        self._buffer.append(
            JobLog(
                tenant_id=self.tenant_id,
                run_id=self.id,
                at=timezone.now(),
                level=level,
                message=str(message)[:10000],
                attempt=self.attempt,
            )
        )
        if (
            len(self._buffer) >= self._settings.log_flush_lines
            or time.monotonic() - self._last_flush >= self._settings.log_flush_seconds
        ):
            self.flush_logs()

    def flush_logs(self) -> None:
        if not self._buffer:
            return
        with relaxed_atomic(self.tenant_id):
            self._write_buffered_logs()

    def _write_buffered_logs(self) -> None:
        """Inside the caller's scoped transaction."""
        if self._buffer:
            logs_in(self.tenant_id).bulk_create(self._buffer)
            self._buffer = []
        self._last_flush = time.monotonic()

    # -- progress and cancellation --
    def progress(self, percent: float | None = None, message: str | None = None) -> None:
        """Record progress (0–100) and renew the lease; raise ``JobCancelled`` if asked to stop.

        Also writes the buffered log lines. Call it at natural checkpoints of the work.
        """
        now = timezone.now()
        fields: dict = {
            "heartbeat_at": now,
            "lease_expires_at": now + timezone.timedelta(seconds=self._settings.lease_seconds),
        }
        if percent is not None:
            fields["progress"] = max(0, min(100, int(percent)))
        if message is not None:
            fields["progress_message"] = str(message)[:255]
        with relaxed_atomic(self.tenant_id):
            self._write_buffered_logs()
            updated = (
                runs_in(self.tenant_id)
                .filter(
                    pk=self.id,
                    attempts=self.attempt,
                    status=JobStatus.RUNNING,
                    cancel_requested_at__isnull=True,
                )
                .update(**fields)
            )
        self._last_check = time.monotonic()
        if not updated:
            self._raise_why_not_running()

    def check_cancelled(self) -> None:
        """Cheap: asks the database only when the heartbeat saw something, or now and then."""
        if (
            self.cancel_seen
            or self.lease_lost
            or time.monotonic() - self._last_check >= self._settings.heartbeat_seconds
        ):
            self.progress()

    def _raise_why_not_running(self) -> None:
        with scoped_atomic(self.tenant_id):
            row = (
                runs_in(self.tenant_id)
                .filter(pk=self.id)
                .values("attempts", "status", "cancel_requested_at")
                .first()
            )
        if (
            row is not None
            and row["attempts"] == self.attempt
            and row["status"] == JobStatus.RUNNING
            and row["cancel_requested_at"] is not None
        ):
            raise JobCancelled()
        raise LeaseLost(f"run {self.id} attempt {self.attempt} no longer owns the run")

    # -- exactly-once units --
    def done(self, key: str) -> bool:
        return key in self._checkpoints

    def once(self, key: str, fn: Callable[[], object]):
        """Run ``fn`` once per run: its writes commit with a checkpoint in one transaction.

        A later attempt (after a lost worker) gets the stored return value instead of running
        ``fn`` again. The value must be JSON-serialisable. ``fn`` runs in the run's tenant
        scope (none for fleet runs).
        """
        if key in self._checkpoints:
            return self._checkpoints[key]["value"]
        with scoped_atomic(self.tenant_id):
            locked = (
                runs_in(self.tenant_id)
                .select_for_update()
                .filter(pk=self.id)
                .values("attempts", "status", "cancel_requested_at", "checkpoints")
                .first()
            )
            if locked is None or locked["attempts"] != self.attempt:
                raise LeaseLost(f"run {self.id} attempt {self.attempt} was taken over")
            if locked["status"] != JobStatus.RUNNING:
                raise LeaseLost(f"run {self.id} is {locked['status']}")
            if locked["cancel_requested_at"] is not None:
                raise JobCancelled()
            checkpoints = dict(locked["checkpoints"] or {})
            if key not in checkpoints:
                value = fn()
                checkpoints[key] = {"value": value, "at": timezone.now().isoformat()}
                runs_in(self.tenant_id).filter(pk=self.id).update(checkpoints=checkpoints)
            self._write_buffered_logs()
        self._checkpoints = checkpoints
        return checkpoints[key]["value"]


# --- Heartbeat --------------------------------------------------------------------------------


class _Heartbeat:
    """One thread per worker process renewing the leases of the runs it is executing."""

    def __init__(self):
        self._runs: dict[int, JobContext] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def register(self, context: JobContext) -> None:
        with self._lock:
            self._runs[context.id] = context
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._loop, name="jobs-heartbeat", daemon=True
                )
                self._thread.start()

    def unregister(self, context: JobContext) -> None:
        with self._lock:
            self._runs.pop(context.id, None)

    def _loop(self) -> None:
        while True:
            time.sleep(engine_settings().heartbeat_seconds)
            with self._lock:
                contexts = list(self._runs.values())
            for context in contexts:
                try:
                    _renew_lease(context)
                except Exception:  # noqa: BLE001 - a missed beat is retried next interval
                    logger.exception("jobs: heartbeat for run %s failed", context.id)
            close_old_connections()


def _renew_lease(context: JobContext) -> None:
    now = timezone.now()
    lease = now + timezone.timedelta(seconds=engine_settings().lease_seconds)
    with relaxed_atomic(context.tenant_id):
        runs = runs_in(context.tenant_id).filter(pk=context.id)
        renewed = runs.filter(attempts=context.attempt, status=JobStatus.RUNNING).update(
            heartbeat_at=now, lease_expires_at=lease
        )
        cancel = renewed and runs.filter(cancel_requested_at__isnull=False).exists()
    if not renewed:
        context.lease_lost = True
    elif cancel:
        context.cancel_seen = True


heartbeat = _Heartbeat()


# --- Claim, finish, fan-out ---------------------------------------------------------------------


# The engine's hottest statements (the claim, the finish, the submit's insert) are planned once
# per database session: ``PREPARE`` on a connection's first use, then ``EXECUTE`` inside the
# multi-statement strings that keep each of them one round trip (a protocol-level prepared
# statement cannot share its string with other statements, so psycopg's own preparing would
# cost round trips). Planning was about half of PostgreSQL's work for these one-row statements.
# Needs a session of its own per connection, as Django's persistent connections give (a
# transaction-pooling proxy in between would lose the prepared statements).
_prepared_names: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_prepared_generation = itertools.count(1)


def prepared_statement(key: str, definition: Callable[[], str]) -> tuple[str, str]:
    """(the ``PREPARE …;`` to send before the first ``EXECUTE`` on this connection, or "", the
    statement's name). ``definition()`` gives what follows the name: ``(types) AS statement``.

    Call it with the cursor open (the connection exists). After an error on a string that
    holds an ``EXECUTE`` call ``forget_prepared_statements()``: the next use prepares again under
    a new name, whether or not the failed string's ``PREPARE`` took effect.
    """
    raw = connection.connection
    names = _prepared_names.get(raw)
    if names is None:
        names = _prepared_names[raw] = {}
    name = names.get(key)
    if name is not None:
        return "", name
    name = names[key] = f"jobs_{key}_{next(_prepared_generation)}"
    return f"PREPARE {name} {definition()}; ", name


_raw_cursors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@contextmanager
def engine_cursor() -> Iterator:
    """The cursor of the engine's one-round-trip strings (PostgreSQL, outside a transaction).

    Django's own cursor while its queries are being recorded (``DEBUG``, the tests' query
    capture); else psycopg's cursor of the connection, kept per connection, under Django's
    connection upkeep (health check, connect) and error translation: the wrapper costs about as
    much Python as the statement itself. The SQL and its parameters are the same either way.
    """
    db = connections[DEFAULT_DB_ALIAS]  # once: each attribute of the proxy looks it up again
    if db.queries_logged:
        with db.cursor() as cursor:
            yield cursor
        return
    db.close_if_health_check_failed()
    db.ensure_connection()
    raw = db.connection
    cursor = _raw_cursors.get(raw)
    if cursor is None or cursor.closed:
        cursor = _raw_cursors[raw] = raw.cursor()
    with db.wrap_database_errors:
        yield cursor


def forget_prepared_statements() -> None:
    if connection.connection is not None:
        _prepared_names.pop(connection.connection, None)


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def _one_round_trip() -> bool:
    """Whether bookkeeping may go as one multi-statement round trip (see ``_bookkeeping``)."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


# SET LOCAL synchronous_commit = off, as an expression that can share one SELECT with others.
RELAXED_COMMIT_SETTING = "set_config('synchronous_commit', 'off', true)"


def _bookkeeping_prefix(tenant_id: int | None, *extra_settings: str) -> tuple[str, list]:
    """The statements that open a bookkeeping transaction: the scope, the relaxed commit.

    Sent in the same string as the statement they prepare: PostgreSQL runs a string of several
    statements as one implicit transaction, so ``set_config(…, true)`` and ``SET LOCAL`` hold
    for it alone, a failure rolls all of it back, and there is no BEGIN or COMMIT to wait for.
    """
    settings, params = [], []
    if tenant_id is not None:
        # What tenant_scope(tenant_id) gives row-level security, for this transaction only.
        statement, statement_params = rls_set_statement([tenant_id])
        settings.append(statement.removeprefix("SELECT "))
        params += statement_params
    if engine_settings().relaxed_commit:
        settings.append(RELAXED_COMMIT_SETTING)
    settings += extra_settings
    if not settings:
        return "", []
    # One statement for all of them: set_config(…, true) is SET LOCAL.
    return f"SELECT {', '.join(settings)}; ", params


def _run_bookkeeping(
    cursor, tenant_id: int | None, sql: str, params: list, *, one_round_trip: bool
) -> None:
    """Execute ``sql`` as a bookkeeping transaction; its last statement's result is current.

    ``one_round_trip`` (PostgreSQL, outside a transaction): sent with its prefix
    (``_bookkeeping_prefix``). Otherwise the caller is inside ``relaxed_atomic(tenant_id)``.
    """
    if not one_round_trip:
        cursor.execute(sql, params)
        return
    prefix, prefix_params = _bookkeeping_prefix(tenant_id)
    cursor.execute(prefix + sql, prefix_params + params)
    for _ in range((prefix + sql).count(";")):
        cursor.nextset()


@contextmanager
def _bookkeeping_transaction(tenant_id: int | None, *, one_round_trip: bool) -> Iterator[None]:
    """The transaction ``_run_bookkeeping`` needs around it when it cannot be one round trip."""
    if one_round_trip:
        yield
    else:
        with relaxed_atomic(tenant_id):
            yield


def claim(*, run_id: int, tenant_id: int | None, task_id: str) -> tuple[JobRun | None, bool]:
    """Take the run for this delivery: (the run or None if missing, whether it was claimed).

    One conditional ``UPDATE … RETURNING``: a queued run, or a running run whose lease has
    expired, becomes this attempt's; anything else is left alone and read back to say why.
    Raw SQL (for the RETURNING), so it filters on the tenant itself, like the scoped manager;
    on PostgreSQL row-level security applies underneath as always. On a worker (PostgreSQL, no
    transaction open) the scope, the relaxed commit and the update go as one round trip. On
    PostgreSQL the update first waits for the run's submit lock (``submit_lock_key``): the
    message may arrive while the submit is still committing.
    """
    now = timezone.now()
    lease = now + timezone.timedelta(seconds=engine_settings().lease_seconds)
    one_round_trip = _one_round_trip()
    with _bookkeeping_transaction(tenant_id, one_round_trip=one_round_trip):
        run = _claim_returning(run_id, tenant_id, task_id, now, lease, one_round_trip)
    if run is not None:
        return run, True
    with scoped_atomic(tenant_id):
        run = runs_in(tenant_id).filter(pk=run_id).first()
    if run is not None and _holder_is_gone(run, task_id):
        taken = _take_over(run, tenant_id, now, lease)
        if taken is not None:
            return taken, True
    return run, False


def _holder_is_gone(run: JobRun, task_id: str) -> bool:
    """Whether ``run`` is held under a live lease by a worker process that no longer exists.

    Celery redelivers a killed pool child's message at once (``reject_on_worker_lost``); the
    child's lease would hold the run for up to ``JOBS_LEASE_SECONDS``. The claim records
    ``host:pid``; a process on the same host can tell that pid is gone. Another host's worker,
    or this very process (a threads pool runs several tasks in it), is left to its lease.
    """
    if (
        run.status != JobStatus.RUNNING
        or str(run.task_id) != str(task_id)
        or run.lease_expires_at is None  # a fleet parent waiting for its children
        or run.awaiting_children
    ):
        return False
    host, _, pid = run.worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's process
    try:  # killed but not yet reaped by its parent: a zombie holds nothing
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False


def _take_over(run: JobRun, tenant_id: int | None, now, lease) -> JobRun | None:
    """Claim ``run`` from its dead holder: conditional on the attempt and holder seen, so of
    several deliveries racing for it exactly one wins."""
    with relaxed_atomic(tenant_id):
        taken = (
            runs_in(tenant_id)
            .filter(
                pk=run.pk,
                status=JobStatus.RUNNING,
                attempts=run.attempts,
                worker=run.worker,
                lease_expires_at__isnull=False,
            )
            .update(
                attempts=F("attempts") + 1,
                heartbeat_at=now,
                lease_expires_at=lease,
                worker=worker_name()[:200],
            )
        )
        if not taken:
            return None
        run = runs_in(tenant_id).get(pk=run.pk)
    logger.warning("jobs: run %s taken over from its dead worker", run.pk)
    return run


class _RunColumns:
    """The run's columns and their converters, worked out once per database vendor."""

    _cache: dict[str, _RunColumns] = {}

    def __init__(self):
        meta = JobRun._meta
        self.fields = list(meta.concrete_fields)
        self.attnames = [field.attname for field in self.fields]
        quote = connection.ops.quote_name
        self.select = ", ".join(quote(field.column) for field in self.fields)
        self.table = quote(meta.db_table)
        self.converters = []
        for field in self.fields:
            expression = field.get_col(meta.db_table)
            converters = connection.ops.get_db_converters(expression) + field.get_db_converters(
                connection
            )
            self.converters.append([(converter, expression) for converter in converters])
        # Only the columns that have converters (the JSON ones on PostgreSQL).
        self.converting = [(i, convs) for i, convs in enumerate(self.converters) if convs]

    @classmethod
    def get(cls) -> _RunColumns:
        columns = cls._cache.get(connection.vendor)
        if columns is None:
            columns = cls._cache[connection.vendor] = cls()
        return columns

    def run_from_row(self, row) -> JobRun:
        db = connections[DEFAULT_DB_ALIAS]
        values = list(row)
        for index, converters in self.converting:
            value = values[index]
            for converter, expression in converters:
                value = converter(value, expression, db)
            values[index] = value
        return run_from_values(values, db=db.alias)


_RUN_ATTNAMES = tuple(field.attname for field in JobRun._meta.concrete_fields)


def run_from_values(values: list, *, db: str | None = None) -> JobRun:
    """A run from every concrete field's value, in column order: ``JobRun(*values)``, or
    ``JobRun.from_db(db, …)`` when ``db`` is given (a row read back).

    Without ``Model.__init__``'s loop (a ``setattr`` per field, about 30 µs for the run's 36
    fields, twice a job): on a new instance that loop only stores each value, which is what
    this does. With ``pre_init``/``post_init`` receivers for runs, ``__init__`` itself.
    """
    if pre_init.has_listeners(JobRun) or post_init.has_listeners(JobRun):
        run = JobRun(*values)
    else:
        run = JobRun.__new__(JobRun)
        run._state = ModelState()
        run.__dict__.update(zip(_RUN_ATTNAMES, values, strict=True))
    if db is not None:
        run._state.adding = False
        run._state.db = db
    return run


# The submit holds (jobs.submit, its task id) from its insert to its commit, and sends the
# message while the commit is under way (``job_submit``): a claim that comes first waits for it.
SUBMIT_LOCK_CLASS = advisory_lock_class("jobs.submit")
# How long a claim waits for a submit still committing before the delivery is retried.
SUBMIT_WAIT_TIMEOUT = "5s"


def submit_lock_key(task_id) -> list[int]:
    """The advisory lock (class, object) a submit holds until its run is committed."""
    return [SUBMIT_LOCK_CLASS, advisory_lock_object(uuid.UUID(str(task_id)).int)]


def _wait_for_submit(task_id) -> tuple[str, list]:
    """The statements that wait (bounded) until the submit of ``task_id`` has committed."""
    return (
        f"SET LOCAL lock_timeout = '{SUBMIT_WAIT_TIMEOUT}'; "
        "SELECT pg_advisory_xact_lock_shared(%s, %s); ",
        submit_lock_key(task_id),
    )


def _claim_returning(run_id, tenant_id, task_id, now, lease, one_round_trip) -> JobRun | None:
    if one_round_trip:
        return _claim_prepared(run_id, tenant_id, task_id, now, lease)
    columns = _RunColumns.get()
    ops = connection.ops
    task_field = JobRun._meta.get_field("task_id")
    tenant_clause = "tenant_id = %s" if tenant_id is not None else "tenant_id IS NULL"
    # Identifiers come from the model's metadata; every value is a parameter.
    sql = (
        f"UPDATE {columns.table} SET status = %s, attempts = attempts + 1, "  # noqa: S608
        "started_at = COALESCE(started_at, %s), heartbeat_at = %s, lease_expires_at = %s, "
        f"worker = %s WHERE id = %s AND task_id = %s AND {tenant_clause} "
        "AND (status = %s OR (status = %s AND lease_expires_at < %s)) "
        f"RETURNING {columns.select}"
    )
    stamp = ops.adapt_datetimefield_value(now)
    params = [
        JobStatus.RUNNING,
        stamp,
        stamp,
        ops.adapt_datetimefield_value(lease),
        worker_name()[:200],
        run_id,
        task_field.get_db_prep_value(task_id, connection),
        *([tenant_id] if tenant_id is not None else []),
        JobStatus.QUEUED,
        JobStatus.RUNNING,
        stamp,
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            wait, wait_params = _wait_for_submit(task_id)
            cursor.execute(wait, wait_params)
        _run_bookkeeping(cursor, tenant_id, sql, params, one_round_trip=False)
        row = cursor.fetchone()
    if row is None:
        return None
    return columns.run_from_row(row)


def _claim_definition(tenant_scoped: bool) -> str:
    """The claim's UPDATE for ``PREPARE``: $1 now, $2 the lease's end, $3 the worker, $4 the
    run, $5 its task id, $6 its tenant (a fleet run: none)."""
    columns = _RunColumns.get()
    tenant_clause = "tenant_id = $6" if tenant_scoped else "tenant_id IS NULL"
    types = "timestamptz, timestamptz, text, bigint, uuid" + (", bigint" if tenant_scoped else "")
    # Identifiers come from the model's metadata, the statuses from JobStatus; values are $n.
    return (
        f"({types}) AS UPDATE {columns.table} SET status = '{JobStatus.RUNNING}', "  # noqa: S608
        "attempts = attempts + 1, started_at = COALESCE(started_at, $1), heartbeat_at = $1, "
        f"lease_expires_at = $2, worker = $3 WHERE id = $4 AND task_id = $5 AND {tenant_clause} "
        f"AND (status = '{JobStatus.QUEUED}' "
        f"OR (status = '{JobStatus.RUNNING}' AND lease_expires_at < $1)) "
        f"RETURNING {columns.select}"
    )


def _claim_prepared(run_id, tenant_id, task_id, now, lease) -> JobRun | None:
    """The claim on a worker (PostgreSQL, no transaction open): one round trip of two
    statements, one implicit transaction: one SELECT of the settings (scope, relaxed commit, how
    long to wait for the submit) and the wait for the submit's lock, then the prepared UPDATE."""
    columns = _RunColumns.get()
    scoped = tenant_id is not None
    # One SELECT: the scope, the relaxed commit, how long to wait for the submit (set first:
    # a select list is evaluated in order), then the wait for the submit's lock.
    prefix, params = _bookkeeping_prefix(
        tenant_id,
        f"set_config('lock_timeout', '{SUBMIT_WAIT_TIMEOUT}', true)",
        "pg_advisory_xact_lock_shared(%s, %s)",
    )
    params += submit_lock_key(task_id)
    values = [now, lease, worker_name()[:200], run_id, uuid.UUID(str(task_id))]
    if scoped:
        values.append(tenant_id)
    with engine_cursor() as cursor:
        prepare, name = prepared_statement(
            "claim" if scoped else "claim_fleet", lambda: _claim_definition(scoped)
        )
        sql = f"{prepare}{prefix}EXECUTE {name}({_placeholders(len(values))})"
        try:
            cursor.execute(sql, params + values)
            for _ in range(sql.count(";")):
                cursor.nextset()
            row = cursor.fetchone()
        except BaseException:
            forget_prepared_statements()
            raise
    if row is None:
        return None
    return columns.run_from_row(row)


def finish(
    context: JobContext,
    status: str,
    *,
    result: dict | None = None,
    error: str = "",
    tb: str = "",
    message: str = "",
) -> bool:
    """Record the attempt's outcome, if it still owns the run. Writes buffered logs too."""
    now = timezone.now()
    fields: dict = {
        "status": status,
        "finished_at": now,
        "heartbeat_at": now,
        "lease_expires_at": None,
    }
    if status == JobStatus.SUCCEEDED:
        fields["progress"] = 100
    if result is not None:
        fields["result"] = result
    if error:
        fields["error"] = error[:500]
        fields["traceback"] = tb
    if message:
        context.log(message, level=LogLevel.ERROR if status == JobStatus.FAILED else LogLevel.INFO)
    # A tenant's failure is stored with what the failure hooks write (job.failed), in one
    # transaction; failures are rare, so they take the ordinary path.
    tell = status == JobStatus.FAILED and context.tenant_id is not None and bool(job_failed_hooks())
    if _one_round_trip() and not tell:
        # On a worker: the outcome, its log lines and a fleet parent's count in one round trip.
        updated = _finish_in_one_round_trip(context, fields, status)
    else:
        with relaxed_atomic(context.tenant_id):
            updated = (
                runs_in(context.tenant_id)
                .filter(pk=context.id, attempts=context.attempt, status=JobStatus.RUNNING)
                .update(**fields)
            )
            context._write_buffered_logs()
            if updated and context.model.parent_id is not None:
                record_child_outcomes(context.model.parent_id, {status: 1})
            if updated and tell:
                for name, value in fields.items():
                    setattr(context.model, name, value)
                context.model.attempts = context.attempt
                job_failed_notify(run=context.model)
    _note_connection_used()
    return bool(updated)


def _insert_sql(model, objs: list) -> tuple[str, list]:
    """One multi-row INSERT of unsaved ``objs`` (no RETURNING), with Django's own values."""
    quote = connection.ops.quote_name
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    params = [
        field.get_db_prep_save(field.pre_save(obj, add=True), connection)
        for obj in objs
        for field in fields
    ]
    row = f"({', '.join(['%s'] * len(fields))})"
    # Identifiers come from the model's metadata; every value is a parameter.
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(field.column) for field in fields)}) "
        f"VALUES {', '.join([row] * len(objs))}"
    )
    return sql, params


def _finish_in_one_round_trip(context: JobContext, fields: dict, status: str) -> bool:
    """``finish`` on a worker (PostgreSQL, no transaction open): one round trip, one implicit
    transaction holding the buffered log lines, the conditional update and, for a fleet
    child, its count on the parent.

    The child's update and the parent's count are one statement (a CTE): the parent is counted
    only if the child's update matched, and the parent's row lock is held for no longer than
    that statement's commit (it is every child's hot row). The last child to be counted
    finishes the parent in a transaction of its own (``finalise_parent_if_done``).
    """
    if context.model.parent_id is None:
        return _finish_prepared(context, fields)
    meta = JobRun._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    statements, params = [], []
    if context._buffer:
        logs_sql, logs_params = _insert_sql(JobLog, context._buffer)
        statements.append(logs_sql)
        params += logs_params
    assignments, update_params = [], []
    for name, value in fields.items():
        field = meta.get_field(name)
        assignments.append(f"{quote(field.column)} = %s")
        update_params.append(field.get_db_prep_save(value, connection))
    tenant_clause = "tenant_id = %s" if context.tenant_id is not None else "tenant_id IS NULL"
    # Identifiers come from the model's metadata; every value is a parameter.
    update = (
        f"UPDATE {table} SET {', '.join(assignments)} "  # noqa: S608
        f"WHERE id = %s AND attempts = %s AND status = %s AND {tenant_clause}"
    )
    update_params += [context.id, context.attempt, JobStatus.RUNNING]
    if context.tenant_id is not None:
        update_params.append(context.tenant_id)
    parent_id = context.model.parent_id
    if parent_id is None:
        statements.append(update)
        params += update_params
    else:
        counts = {
            "children_succeeded": int(status == JobStatus.SUCCEEDED),
            "children_failed": int(status == JobStatus.FAILED),
            "children_cancelled": int(status == JobStatus.CANCELLED),
        }
        finished = "(p.children_succeeded + p.children_failed + p.children_cancelled + %s)"
        aggregate = "p.status = %s AND p.children_total > 0"
        count_sets = ", ".join(f"{column} = p.{column} + %s" for column in counts)
        statements.append(
            f"WITH child AS ({update} RETURNING parent_id), "  # noqa: S608
            f"counted AS (UPDATE {table} AS p SET {count_sets}, "
            f"progress = CASE WHEN {aggregate} "
            f"THEN LEAST(100, 100 * {finished} / p.children_total) ELSE p.progress END, "
            f"progress_message = CASE WHEN {aggregate} "
            f"THEN {finished} || ' of ' || p.children_total || ' tenants done' "
            "ELSE p.progress_message END "
            "FROM child WHERE p.id = child.parent_id AND p.tenant_id IS NULL "
            "RETURNING p.status, p.awaiting_children, p.children_total, "
            "p.children_succeeded + p.children_failed + p.children_cancelled AS finished) "
            "SELECT counted.* FROM child LEFT JOIN counted ON true"
        )
        params += update_params + list(counts.values())
        params += [JobStatus.RUNNING, 1, JobStatus.RUNNING, 1]
    prefix, prefix_params = _bookkeeping_prefix(context.tenant_id)
    with engine_cursor() as cursor:
        cursor.execute(prefix + "; ".join(statements), prefix_params + params)
        for _ in range(prefix.count(";") + len(statements) - 1):
            cursor.nextset()
        if parent_id is None:
            updated = cursor.rowcount > 0
        else:
            row = cursor.fetchone()
            updated = row is not None
    context._buffer = []
    context._last_flush = time.monotonic()
    if updated and parent_id is not None and row[0] is not None:
        parent_status, awaiting, total, finished_count = row
        if parent_status == JobStatus.RUNNING and awaiting and finished_count >= total:
            finalise_parent_if_done(parent_id)
    return updated


def _finish_definition(tenant_scoped: bool) -> str:
    """The finish's UPDATE for ``PREPARE``: $1 the status, $2 now, $3 the result, $4 the error,
    $5 the traceback (each None: left as it is), $6 the run, $7 the attempt, $8 the tenant."""
    table = connection.ops.quote_name(JobRun._meta.db_table)
    tenant_clause = "tenant_id = $8" if tenant_scoped else "tenant_id IS NULL"
    types = "text, timestamptz, jsonb, text, text, bigint, integer" + (
        ", bigint" if tenant_scoped else ""
    )
    # Identifiers come from the model's metadata, the statuses from JobStatus; values are $n.
    return (
        f"({types}) AS UPDATE {table} SET status = $1, finished_at = $2, "  # noqa: S608
        "heartbeat_at = $2, lease_expires_at = NULL, "
        f"progress = CASE WHEN $1 = '{JobStatus.SUCCEEDED}' THEN 100 ELSE progress END, "
        "result = COALESCE($3, result), error = COALESCE($4, error), "
        "traceback = COALESCE($5, traceback) "
        f"WHERE id = $6 AND attempts = $7 AND status = '{JobStatus.RUNNING}' AND {tenant_clause}"
    )


def _finish_prepared(context: JobContext, fields: dict) -> bool:
    """``finish`` of a run with no fleet parent, on a worker: the settings, the buffered log
    lines and the prepared UPDATE, in one round trip and one implicit transaction."""
    scoped = context.tenant_id is not None
    result = fields.get("result")
    values = [
        fields["status"],
        fields["finished_at"],
        None
        if result is None
        else JobRun._meta.get_field("result").get_db_prep_save(result, connection),
        fields.get("error"),
        fields.get("traceback"),
        context.id,
        context.attempt,
    ]
    if scoped:
        values.append(context.tenant_id)
    sql, params = _bookkeeping_prefix(context.tenant_id)
    if context._buffer:
        logs_sql, logs_params = _insert_sql(JobLog, context._buffer)
        sql += f"{logs_sql}; "
        params += logs_params
    with engine_cursor() as cursor:
        prepare, name = prepared_statement(
            "finish" if scoped else "finish_fleet", lambda: _finish_definition(scoped)
        )
        sql = f"{prepare}{sql}EXECUTE {name}({_placeholders(len(values))})"
        try:
            cursor.execute(sql, params + values)
            for _ in range(sql.count(";")):
                cursor.nextset()
            updated = cursor.rowcount > 0
        except BaseException:
            forget_prepared_statements()
            raise
    context._buffer = []
    context._last_flush = time.monotonic()
    return updated


def finalise_parent_if_done(parent_id: int) -> bool:
    """Finish a fleet parent whose children are all counted, if nobody has yet.

    Called by the child counted last; should its worker die just before, recovery does it
    (``job_runs_recover``).
    """
    with scoped_atomic(None):
        parent = JobRun.fleet.select_for_update().filter(pk=parent_id).first()
        if (
            parent is None
            or parent.status != JobStatus.RUNNING
            or not parent.awaiting_children
            or parent.children_finished < parent.children_total
        ):
            return False
        parent.save(update_fields=_finalise_parent(parent))
    return True


def release_for_retry(context: JobContext, error: Exception) -> bool:
    """Hand a run that met a transient error back to the queue for Celery's retry."""
    context.log(
        f"Transient error on attempt {context.attempt} of {context.model.max_attempts}: "
        f"{error}. Retrying with backoff.",
        level=LogLevel.WARNING,
    )
    with relaxed_atomic(context.tenant_id):
        updated = (
            runs_in(context.tenant_id)
            .filter(pk=context.id, attempts=context.attempt, status=JobStatus.RUNNING)
            .update(
                status=JobStatus.QUEUED,
                lease_expires_at=None,
                progress_message=f"Retrying after: {error}"[:255],
            )
        )
        context._write_buffered_logs()
    return bool(updated)


def record_child_outcomes(parent_id: int, outcomes: dict[str, int]) -> None:
    """Count finished children on their fleet parent; finish the parent after the last one.

    Runs inside the caller's transaction (the child's own finish, or a bulk cancel).
    """
    parent = JobRun.fleet.select_for_update().filter(pk=parent_id).first()
    if parent is None:
        return
    parent.children_succeeded += outcomes.get(JobStatus.SUCCEEDED, 0)
    parent.children_failed += outcomes.get(JobStatus.FAILED, 0)
    parent.children_cancelled += outcomes.get(JobStatus.CANCELLED, 0)
    update_fields = ["children_succeeded", "children_failed", "children_cancelled"]
    if parent.status == JobStatus.RUNNING:
        if parent.children_total:
            parent.progress = min(100, 100 * parent.children_finished // parent.children_total)
            parent.progress_message = (
                f"{parent.children_finished} of {parent.children_total} tenants done"
            )
            update_fields += ["progress", "progress_message"]
        if parent.awaiting_children and parent.children_finished >= parent.children_total:
            update_fields += _finalise_parent(parent)
    parent.save(update_fields=update_fields)


def _finalise_parent(parent: JobRun) -> list[str]:
    """Finish a fleet parent whose children are all done (the caller saves the fields)."""
    now = timezone.now()
    parent.status = JobStatus.FAILED if parent.children_failed else JobStatus.SUCCEEDED
    parent.finished_at = now
    parent.progress = 100
    parent.awaiting_children = False
    parent.result = {
        "tenants": parent.children_total,
        "succeeded": parent.children_succeeded,
        "failed": parent.children_failed,
        "cancelled": parent.children_cancelled,
    }
    summary = (
        f"{parent.children_succeeded} of {parent.children_total} tenants succeeded, "
        f"{parent.children_failed} failed, {parent.children_cancelled} cancelled."
    )
    parent.progress_message = summary[:255]
    if parent.children_failed:
        parent.error = f"{parent.children_failed} of {parent.children_total} tenant runs failed."
    JobLog.fleet.create(
        tenant=None,
        run=parent,
        level=LogLevel.ERROR if parent.children_failed else LogLevel.INFO,
        message=f"All child runs finished: {summary}",
        attempt=parent.attempts,
    )
    return [
        "status",
        "finished_at",
        "progress",
        "progress_message",
        "awaiting_children",
        "result",
        "error",
    ]


def fleet_tenant_ids(parameters_tenants: list[int] | None = None) -> list[int]:
    """Tenants a fleet run covers: the given ones, else every active tenant."""
    tenants = Tenant.objects.all()
    if parameters_tenants is not None:
        tenants = tenants.filter(pk__in=parameters_tenants)
    else:
        tenants = tenants.filter(status=TenantStatus.ACTIVE)
    return list(tenants.order_by("id").values_list("id", flat=True))


def _job_actor_label(run) -> str:
    """Who the audit log names for a run's writes: the person who started it, else Groundwork."""
    if run.trigger in ("user", "token") and run.triggered_by_label:
        return f"{run.triggered_by_label} (job {run.pk})"
    return f"{AUTOMATIC_LABEL} (job {run.pk})"


def fan_out(context: JobContext) -> None:
    """Create one child run per tenant, chunk by chunk, each chunk exactly once."""
    kind = context.kind
    tenant_ids = context.once("tenants", fleet_tenant_ids)
    size = engine_settings().fleet_chunk_size
    chunks = [tenant_ids[start : start + size] for start in range(0, len(tenant_ids), size)]
    context.log(f"Fanning out {kind.name} to {len(tenant_ids)} tenants in {len(chunks)} chunks.")
    for index, chunk in enumerate(chunks):
        context.once(f"chunk:{index}", lambda chunk=chunk: _create_children(context, chunk))
        context.progress(message=f"Created child runs for chunk {index + 1} of {len(chunks)}")
    with scoped_atomic(None):
        parent = JobRun.fleet.select_for_update().get(pk=context.id)
        if parent.attempts != context.attempt or parent.status != JobStatus.RUNNING:
            raise LeaseLost(f"fleet run {context.id} was taken over")
        if parent.cancel_requested_at is not None:
            raise JobCancelled()
        # No worker holds the parent from here on: the last child to finish finishes it.
        parent.awaiting_children = True
        parent.lease_expires_at = None
        update_fields = ["awaiting_children", "lease_expires_at"]
        if parent.children_finished >= parent.children_total:
            update_fields += _finalise_parent(parent)
        parent.save(update_fields=update_fields)
        context._write_buffered_logs()


def _create_children(context: JobContext, tenant_ids: list[int]) -> int:
    kind = context.kind
    now = timezone.now()
    children = [
        JobRun(
            tenant_id=tenant_id,
            kind=kind.name,
            queue=kind.queue,
            parameters=context.parameters,
            max_attempts=kind.max_attempts,
            trigger="parent",
            triggered_by_label=f"fleet run {context.id}",
            parent_id=context.id,
            created_at=now,
        )
        for tenant_id in tenant_ids
    ]
    with tenant_scope(*tenant_ids):
        JobRun.objects.bulk_create(children)
    dispatch_runs(children, kind)
    JobRun.fleet.filter(pk=context.id).update(children_total=F("children_total") + len(children))
    return len(children)


def cancel_children(parent_id: int, *, by: str) -> int:
    """Cancel a fleet parent's queued children and ask its running ones to stop."""
    now = timezone.now()
    with all_tenants_scope(), transaction.atomic(savepoint=False):
        children = JobRun.objects.unscoped().filter(parent_id=parent_id)
        cancelled = children.filter(status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELLED,
            finished_at=now,
            cancel_requested_at=now,
            cancel_requested_by=by[:200],
        )
        children.filter(status=JobStatus.RUNNING, cancel_requested_at__isnull=True).update(
            cancel_requested_at=now, cancel_requested_by=by[:200]
        )
        if cancelled:
            record_child_outcomes(parent_id, {JobStatus.CANCELLED: cancelled})
    return cancelled


# --- One attempt ------------------------------------------------------------------------------


def job_run_execute(
    *, run_id: int, tenant_id: int | None, task_id: str, use_heartbeat: bool = True
) -> str:
    """Execute one delivery of a run's message; returns what happened (for logs and tests).

    Raises ``TransientJobError`` only when the run needs a Celery retry (handed back after a
    transient error or a lost database connection).
    """
    run, claimed = claim(run_id=run_id, tenant_id=tenant_id, task_id=task_id)
    if run is None:
        logger.info("jobs: run %s is gone; dropping its message", run_id)
        return "missing"
    if not claimed:
        outcome = _why_not_claimed(run, task_id)
        logger.info("jobs: run %s not claimed (%s); dropping this delivery", run_id, outcome)
        return outcome
    try:
        kind = get_job_kind(run.kind)
    except UnknownJobKind:
        kind = None
    context = JobContext(run, kind or _missing_kind(run.kind))
    if kind is None:
        finish(context, JobStatus.FAILED, error=f"Unknown job kind {run.kind!r}.")
        return "failed"
    if run.attempts > run.max_attempts:
        finish(
            context,
            JobStatus.FAILED,
            error=gave_up_message(run.max_attempts),
            message=f"Attempt {run.attempts} refused: the run already used its attempts.",
        )
        return "failed"
    if run.attempts > 1:
        # A first attempt's start and end are on the run itself; a repeat is worth a line.
        context.log(f"Attempt {run.attempts} started (the previous attempt did not finish).")
    if use_heartbeat:
        heartbeat.register(context)
    try:
        with audit_actor(AuditActor(label=_job_actor_label(run), source="job")):
            if run.is_fleet and kind.tenant_scoped:
                fan_out(context)
                context.flush_logs()
                return "awaiting children"
            result = kind.func(context, dict(run.parameters))
    except JobCancelled:
        finish(context, JobStatus.CANCELLED, message="Stopped: the run was cancelled.")
        if run.is_fleet:
            cancel_children(run.pk, by=f"fleet run {run.pk}")
        return "cancelled"
    except LeaseLost as exc:
        logger.warning("jobs: %s; this attempt stops without writing", exc)
        return "lost"
    except (OperationalError, InterfaceError) as exc:
        # The database connection broke (a failover, a restart, a terminated backend): not the
        # job's fault. Drop the broken connection and hand the run back for a retry with the
        # usual backoff; run.once() checkpoints keep what already committed from happening
        # again. Any other DatabaseError is the kind's own and fails the run below.
        drop_broken_connection()
        return _after_lost_database(context, exc)
    except TransientJobError as exc:
        if run.attempts < run.max_attempts:
            release_for_retry(context, exc)
            raise
        finish(
            context,
            JobStatus.FAILED,
            error=f"{exc} (transient; gave up after {run.attempts} attempts)",
            tb=traceback.format_exc(),
            message=f"Failed after {run.attempts} attempts: {exc}",
        )
        return "failed"
    except SoftTimeLimitExceeded:
        finish(
            context,
            JobStatus.FAILED,
            error="Timed out: the job ran past its time limit.",
            tb=traceback.format_exc(),
            message="Stopped at the soft time limit.",
        )
        return "failed"
    except Exception as exc:  # noqa: BLE001 - any error of the kind fails the run, visibly
        finish(
            context,
            JobStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}",
            tb=traceback.format_exc(),
            message=f"Failed: {type(exc).__name__}: {exc}",
        )
        return "failed"
    finally:
        if use_heartbeat:
            heartbeat.unregister(context)
    if result is None:
        result = {}
    elif not isinstance(result, dict):
        result = {"value": result}
    finish(context, JobStatus.SUCCEEDED, result=result)
    return "succeeded"


# A connection that finished a bookkeeping write this recently is not health-checked again.
HEALTH_CHECK_IDLE_SECONDS = 1.0
_connection_used_at = -HEALTH_CHECK_IDLE_SECONDS


def worker_connection_prepare() -> None:
    """Before a job on a worker: Django's connection upkeep, as around a request.

    ``close_old_connections()`` drops a connection past ``CONN_MAX_AGE`` or one that saw an
    error, and (``CONN_HEALTH_CHECKS``) makes the next query ping the server first: a
    ``SELECT 1`` round trip, as dear as the claim itself. A connection whose last job committed
    its finish less than ``HEALTH_CHECK_IDLE_SECONDS`` ago, with no error since, skips the ping.
    Should the server have dropped it in that second anyway (a failover mid-burst), the claim
    meets the error and the delivery is retried with backoff on a new connection, as for any
    lost connection.
    """
    close_old_connections()
    if (
        connection.connection is not None
        and not connection.errors_occurred
        and time.monotonic() - _connection_used_at < HEALTH_CHECK_IDLE_SECONDS
    ):
        connection.health_check_done = True  # what a passed check leaves behind


def _note_connection_used() -> None:
    global _connection_used_at
    _connection_used_at = time.monotonic()


def drop_broken_connection() -> None:
    """Close this thread's connection after a connection error; the next query reconnects."""
    if connection.in_atomic_block:
        return  # the enclosing atomic block drops it on its way out
    try:
        connection.close()
    except DatabaseError:
        connection.connection = None  # closing a dead connection can fail; forget it anyway


def _after_lost_database(context: JobContext, error: Exception) -> str:
    """Hand a run whose database connection broke back for a retry (raises
    ``TransientJobError``), or fail it on its last attempt.

    If the database does not answer yet, the run keeps its lease until that expires and lease
    recovery re-queues it, as after a lost worker; Celery's retry is then dropped.
    """
    transient = TransientJobError(f"database connection lost: {error}".strip()[:400])
    try:
        if context.attempt >= context.model.max_attempts:
            finish(
                context,
                JobStatus.FAILED,
                error=f"{transient} (transient; gave up after {context.attempt} attempts)",
                message=f"Failed after {context.attempt} attempts: {transient}",
            )
            return "failed"
        release_for_retry(context, transient)
    except (OperationalError, InterfaceError):
        drop_broken_connection()
        logger.warning("jobs: run %s could not be handed back; its lease will expire", context.id)
    raise transient from error


def gave_up_message(attempts: int) -> str:
    return (
        f"Gave up after {attempts} attempts: the worker was lost each time "
        "(killed, out of memory, or past its hard time limit)."
    )


def _why_not_claimed(run: JobRun, task_id: str) -> str:
    if str(run.task_id) != str(task_id):
        return "stale message"
    if run.is_finished:
        return "already finished"
    if run.status == JobStatus.RUNNING:
        return "running elsewhere"
    return "not claimable"


def _missing_kind(name: str) -> JobKind:
    return JobKind(name=name, func=lambda run, parameters: None)

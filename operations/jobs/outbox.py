"""The outbox: task messages stored in the sender's transaction and sent after it commits.

``outbox_enqueue`` writes one ``JobDispatch`` row per message inside the caller's transaction
and registers an on-commit sender. If the broker is down at that moment, the rows stay and
``outbox_drain`` (beat, every few seconds, or ``manage.py drain_job_outbox``) sends them once it
is back. A message may therefore be sent twice (sender and drain racing after a crash); the
consumers are idempotent, so that costs a no-op, never a second effect. For the same reason the
sender's delete of a sent row does not wait for PostgreSQL's disk flush (``_forget``): the
submission's own commit is the one that must be durable, and it is.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from celery import current_app, signals
from celery.backends.base import DisabledBackend
from celery.utils.nodenames import anon_nodename
from django.core.signals import setting_changed
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from operations.jobs.conf import engine_settings
from operations.jobs.models import JobDispatch

logger = logging.getLogger(__name__)

#: The task that executes a run (``operations.jobs.tasks.execute_job_run``).
EXECUTE_TASK = "jobs.execute"

MAX_BACKOFF_SECONDS = 300
# After a failed send, on-commit senders in this process leave messages to the drain for a
# while, instead of each web request waiting out the broker client's connection retries.
BROKER_DOWN_PAUSE_SECONDS = 10.0
_broker_down_until = 0.0


def outbox_sender_reset() -> None:
    """Forget a recent broker failure (the drain's success does this too)."""
    global _broker_down_until
    _broker_down_until = 0.0


def _note_broker_result(error: Exception | None) -> None:
    global _broker_down_until
    _broker_down_until = 0.0 if error is None else time.monotonic() + BROKER_DOWN_PAUSE_SECONDS


@dataclass(frozen=True)
class OutboxMessage:
    task_name: str
    task_id: str
    queue: str
    kwargs: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    label: str = ""


# What the senders publish: a stored outbox row, or a message that has none (yet).
Outgoing = JobDispatch | OutboxMessage


@dataclass
class OutboxDrainResult:
    sent: int = 0
    failed: int = 0
    pending: int = 0
    error: str = ""


def outbox_enqueue(messages: Iterable[OutboxMessage]) -> list[JobDispatch]:
    """Store ``messages`` in the current transaction; send them once it commits."""
    now = timezone.now()
    # The drain leaves fresh rows to their on-commit sender for a grace period.
    available_at = now + timezone.timedelta(seconds=engine_settings().outbox_grace_seconds)
    rows = [outbox_row(message, now, available_at) for message in messages]
    if not rows:
        return rows
    JobDispatch.objects.bulk_create(rows)
    transaction.on_commit(lambda: outbox_send_committed(rows))
    return rows


def outbox_row(message: OutboxMessage, now=None, available_at=None) -> JobDispatch:
    """The unsaved outbox row of ``message``: due after the grace period from ``now``."""
    now = now or timezone.now()
    if available_at is None:
        available_at = now + timezone.timedelta(seconds=engine_settings().outbox_grace_seconds)
    return JobDispatch(
        task_name=message.task_name,
        task_id=message.task_id,
        kwargs=message.kwargs,
        queue=message.queue,
        options=message.options,
        label=message.label[:200],
        created_at=now,
        available_at=available_at,
    )


def outbox_send_committed(rows: Sequence[JobDispatch]) -> int:
    """Send rows whose transaction has committed; on a broker error keep them for the drain.

    Never raises: the caller's transaction is already committed, and the drain will retry.
    """
    sent, error = _send_unless_broker_down(rows)
    try:
        if sent:
            _forget([row.pk for row in sent])
        if error is not None:
            unsent = [row.pk for row in rows if row not in sent]
            logger.warning(
                "outbox: broker refused %d message(s), the drain will resend them: %s",
                len(unsent),
                error,
            )
            # Due now: the drain sends them as soon as it runs and the broker answers.
            JobDispatch.objects.filter(pk__in=unsent).update(
                attempts=F("attempts") + 1,
                last_error=_describe(error),
                available_at=timezone.now(),
            )
    except Exception:  # noqa: BLE001 - the rows stay due; the drain takes them
        logger.exception("outbox: could not record the send of %d message(s)", len(rows))
    return len(sent)


def outbox_send_or_store(messages: Sequence[OutboxMessage]) -> int:
    """Send the messages of a committed transaction that stored no outbox rows; store the
    ones the broker refuses, due now, so the drain sends them once it is back.

    For a submit whose own row is its durable record (``job_submit`` outside a transaction,
    with eager tasks): in the common case, where the broker takes the message, no outbox row is
    written, deleted or even built. Never raises, like :func:`outbox_send_committed`.
    """
    sent, error = _send_unless_broker_down(messages)
    outbox_store_unsent(messages, len(sent), error)
    return len(sent)


# The sender thread of this process (by pid: a forked child starts its own).
_sender: tuple[int, ThreadPoolExecutor] | None = None


def outbox_send_beside(messages: Sequence[OutboxMessage]) -> Future | None:
    """Start sending ``messages`` on this process's sender thread, so that the caller's commit
    and the broker's round trip overlap; the future gives (messages sent, the broker's error).

    For ``job_submit``'s path only, whose consumer waits for the commit (see there); the caller
    stores what the broker refused (:func:`outbox_store_unsent`) once its commit is done. None
    with eager tasks, which must run after the commit, in the caller's thread.
    """
    global _sender
    if tasks_run_eagerly(current_app):
        return None
    if _sender is None or _sender[0] != os.getpid():  # none yet, or inherited through a fork
        _sender = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox"))
    return _sender[1].submit(_sent_count_and_error, messages)


def _sent_count_and_error(messages: Sequence[OutboxMessage]) -> tuple[int, Exception | None]:
    sent, error = _send_unless_broker_down(messages)
    return len(sent), error


def outbox_store_unsent(
    messages: Sequence[OutboxMessage], sent: int, error: Exception | None
) -> None:
    """Store, due now, the messages after the first ``sent`` that the broker refused."""
    if error is not None:
        now = timezone.now()
        unsent = [outbox_row(message, now, now) for message in messages[sent:]]
        logger.warning(
            "outbox: broker refused %d message(s), the drain will resend them: %s",
            len(unsent),
            error,
        )
        for row in unsent:
            row.attempts = 1
            row.last_error = _describe(error)
        try:
            JobDispatch.objects.bulk_create(unsent)
        except Exception:  # noqa: BLE001 - recovery re-sends the queued run later
            logger.exception("outbox: could not store %d unsent message(s)", len(unsent))


def tasks_run_eagerly(app) -> bool:
    """``app.conf.task_always_eager``, read for every message without its cost.

    Left to Celery's default, that lookup misses Django's settings under each name Celery tries
    (an exception each) and costs about 60 µs, twice a submit. A value set on ``app.conf``
    (the tests' ``eager`` fixture) is read from the app's changes as it is; the configured one
    is kept until a setting changes.
    """
    changes = app.conf.changes
    if "task_always_eager" in changes:
        return bool(changes["task_always_eager"])
    return _configured_eager(app)


@functools.cache
def _configured_eager(app) -> bool:
    return bool(app.conf.task_always_eager)


def _send_unless_broker_down(rows: Sequence[Outgoing]) -> tuple[list[Outgoing], Exception | None]:
    """Publish, or leave it all to the drain while the broker failed moments ago."""
    if time.monotonic() < _broker_down_until:
        return [], ConnectionError("broker failed moments ago; left for the drain")
    try:
        sent, error = _publish(rows)
    except Exception as exc:  # noqa: BLE001 - anything here only delays delivery
        sent, error = [], exc
    _note_broker_result(error)
    return sent, error


def _publish(rows: Sequence[Outgoing]) -> tuple[list[Outgoing], Exception | None]:
    """Publish in order; stop at the first failure (the broker is most likely down)."""
    app = current_app
    sent: list[Outgoing] = []
    if tasks_run_eagerly(app):
        # send_task() ignores eager mode; run the registered task in-process instead.
        app.loader.import_default_modules()  # registers every app's tasks, as a worker would
        for row in rows:
            app.tasks[row.task_name].apply(kwargs=row.kwargs, task_id=row.task_id)
            sent.append(row)
        return sent, None
    with app.producer_or_acquire() as producer:
        try:
            # One quick try: kombu would otherwise retry the connection for
            # broker_connection_timeout and more (6-7 s measured) inside a web request.
            producer.connection.ensure_connection(max_retries=1, interval_start=0, timeout=1)
        except Exception as exc:  # noqa: BLE001 - kombu raises many kinds of errors
            return sent, exc
        for row in rows:
            try:
                publish_message(app, producer, row)
            except Exception as exc:  # noqa: BLE001 - kombu raises many kinds of errors
                return sent, exc
            sent.append(row)
    return sent, None


def publish_message(app, producer, row: Outgoing) -> None:
    """Publish one message, without retrying (the drain is the retry, not a blocked request).

    A run's message (``jobs.execute``, one per job) is the message ``app.send_task`` would
    publish, built here from a per-process template (``_execute_template``): ``send_task``
    spends about 0.3 ms of CPU a message on work whose outcome is the same every time
    (routing, the task's options, configuration lookups, ``saferepr`` of the arguments,
    binding the queue to the channel). Any other task, and any configuration the template
    does not cover (publish signals connected, sent events, another protocol, a result to
    store), goes through ``send_task`` itself. ``tests/jobs/test_overhead.py`` compares the
    two messages field by field.
    """
    template = _execute_template(app) if row.task_name == EXECUTE_TASK else None
    if template is None or not template.covers(row):
        app.send_task(
            row.task_name,
            kwargs=row.kwargs,
            task_id=row.task_id,
            queue=row.queue,
            producer=producer,
            retry=False,
            **row.options,
        )
        return
    template.publish(app, producer, row)


class _ExecuteTemplate:
    """What ``send_task`` decides for every ``jobs.execute`` message of this process, once."""

    OPTIONS = frozenset(("soft_time_limit", "time_limit"))

    def __init__(self, app, task):
        conf = app.conf
        option = functools.partial(getattr, task)  # as send_task reads them: None if unset
        self.serializer = option("serializer", None) or conf.task_serializer
        self.compression = option("compression", None) or conf.task_compression
        self.delivery_mode = option("delivery_mode", None)
        self.default_delivery_mode = conf.task_default_delivery_mode
        self.time_limit = option("time_limit", None)
        self.soft_time_limit = option("soft_time_limit", None)
        self.queues = app.amqp.queues
        self.origin = anon_nodename()

    def covers(self, row: Outgoing) -> bool:
        # Checked per message: a receiver may connect at any time.
        return (
            not signals.before_task_publish.receivers
            and not signals.after_task_publish.receivers
            and self.OPTIONS.issuperset(row.options)
            and isinstance(row.kwargs, dict)
            and all(type(value) is int or value is None for value in row.kwargs.values())
            and self.queues[row.queue].exchange.type == "direct"
        )

    def publish(self, app, producer, row: Outgoing) -> None:
        task_id, kwargs, options = row.task_id, row.kwargs, row.options
        root_id, parent_id = task_id, None
        parent = app.current_worker_task  # a run submitted by a task is traced to it
        if parent is not None:
            root_id = parent.request.root_id or parent.request.id
            parent_id = parent.request.id
        queue = self.queues[row.queue]
        # send_task declares the queue; kombu caches that per connection after the first time.
        declared = producer.channel.connection.client.declared_entities
        producer.publish(
            # Positional arguments, keyword arguments, and no callbacks (protocol 2).
            ((), kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}),
            exchange="",  # straight to the queue, as send_task routes a direct exchange
            routing_key=queue.name,
            serializer=self.serializer,
            compression=self.compression,
            retry=False,
            delivery_mode=self.delivery_mode
            or queue.exchange.delivery_mode
            or self.default_delivery_mode,
            declare=[] if hash(queue) in declared else [queue],
            headers={
                "lang": "py",
                "task": row.task_name,
                "id": task_id,
                "shadow": None,
                "eta": None,
                "expires": None,
                "group": None,
                "group_index": None,
                "retries": 0,
                "timelimit": [
                    options.get("time_limit", self.time_limit),
                    options.get("soft_time_limit", self.soft_time_limit),
                ],
                "root_id": root_id,
                "parent_id": parent_id,
                "argsrepr": "()",
                "kwargsrepr": repr(kwargs),  # as saferepr writes a dict of integers
                "origin": self.origin,
                "ignore_result": None,  # the task's own setting decides, as with send_task
                "replaced_task_nesting": 0,
                "stamped_headers": None,
                "stamps": {},
            },
            correlation_id=task_id,
            reply_to=app.thread_oid,
        )
        if parent is not None:
            parent.add_trail(app.AsyncResult(task_id))


# The template of this process (by pid: the origin names the process), or None when this
# app's configuration is one the template does not reproduce.
_template: tuple[int, _ExecuteTemplate | None] | None = None


def _execute_template(app) -> _ExecuteTemplate | None:
    global _template
    if _template is None or _template[0] != os.getpid():
        _template = (os.getpid(), _build_execute_template(app))
    return _template[1]


_ROUTED_OPTIONS = ("priority", "expires", "routing_key", "exchange", "queue")


def _build_execute_template(app) -> _ExecuteTemplate | None:
    import operations.jobs.tasks  # noqa: F401 - registers the task (tasks imports this module)

    task = app.tasks.get(EXECUTE_TASK)
    conf = app.conf
    if (
        task is None
        # send_task tells a result backend about every message it sends; none is configured.
        or not isinstance(app.backend, DisabledBackend)
        or conf.task_protocol != 2
        or conf.task_send_sent_event
        or conf.task_inherit_parent_priority
        # Task options send_task would route or stamp by (``extract_exec_options``).
        or any(getattr(task, name, None) is not None for name in _ROUTED_OPTIONS)
    ):
        return None
    return _ExecuteTemplate(app, task)


def _forget_template(**kwargs) -> None:
    """Configuration changed (tests' ``settings``): read it again on next use."""
    global _template
    _template = None
    _configured_eager.cache_clear()


setting_changed.connect(_forget_template, dispatch_uid="jobs.outbox.execute_template")


def _forget(ids: list[int]) -> None:
    """Delete sent rows: one statement (a QuerySet delete adds a transaction and a collector).

    On its own (the on-commit sender runs outside any transaction) and on PostgreSQL, the delete
    commits without waiting for the WAL flush, in the same round trip: losing it to a crash of
    the PostgreSQL server only brings the rows back, and the drain then sends a message twice,
    which its consumer drops (see the module docstring). Waiting for the flush would cost every
    submission a second disk sync after its own commit.
    """
    table = connection.ops.quote_name(JobDispatch._meta.db_table)
    # Integer primary keys, written into the statement: a statement without parameters may be
    # preceded by SET LOCAL in the same (implicit) transaction.
    id_list = ", ".join(str(int(pk)) for pk in ids)
    delete = f"DELETE FROM {table} WHERE id IN ({id_list})"  # noqa: S608
    relax = (
        connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and engine_settings().relaxed_commit
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL synchronous_commit = off; {delete}" if relax else delete)


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:2000]


def _backoff_seconds(attempts: int) -> int:
    return min(MAX_BACKOFF_SECONDS, 2 ** min(attempts, 16))


def outbox_drain(*, limit: int = 5000, batch_size: int = 200, include_waiting: bool = False):
    """Send due outbox rows in batches; stop at the first broker failure.

    ``include_waiting`` also sends rows still in their grace period or backoff (the manual
    command after an outage).
    """
    result = OutboxDrainResult()
    while result.sent < limit:
        now = timezone.now()
        with transaction.atomic():
            due = JobDispatch.objects.select_for_update(skip_locked=True).order_by(
                "available_at", "id"
            )
            if not include_waiting:
                due = due.filter(available_at__lte=now)
            rows = list(due[: min(batch_size, limit - result.sent)])
            if not rows:
                break
            try:
                sent, error = _publish(rows)
            except Exception as exc:  # noqa: BLE001 - e.g. the broker is unreachable
                sent, error = [], exc
            _note_broker_result(error)
            if sent:
                _forget([row.pk for row in sent])
            result.sent += len(sent)
            if error is not None:
                failed = rows[len(sent)]
                JobDispatch.objects.filter(pk=failed.pk).update(
                    attempts=F("attempts") + 1,
                    last_error=_describe(error),
                    available_at=now
                    + timezone.timedelta(seconds=_backoff_seconds(failed.attempts + 1)),
                )
                result.failed += 1
                result.error = _describe(error)
                logger.warning("outbox drain: broker refused a message: %s", error)
                break
    result.pending = JobDispatch.objects.count()
    return result

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

import logging
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from celery import current_app
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from operations.jobs.conf import engine_settings
from operations.jobs.models import JobDispatch

logger = logging.getLogger(__name__)

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
    if current_app.conf.task_always_eager:
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
    if app.conf.task_always_eager:
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
                app.send_task(
                    row.task_name,
                    kwargs=row.kwargs,
                    task_id=row.task_id,
                    queue=row.queue,
                    producer=producer,
                    # Fail fast: the drain is the retry, not a blocked web request.
                    retry=False,
                    **row.options,
                )
            except Exception as exc:  # noqa: BLE001 - kombu raises many kinds of errors
                return sent, exc
            sent.append(row)
    return sent, None


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

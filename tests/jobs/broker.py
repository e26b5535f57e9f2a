"""Point this process's Celery app at another broker (a closed port, a private namespace)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kombu import pools

from msp.celery import app
from operations.jobs.outbox import outbox_sender_reset

CLOSED_PORT_BROKER = "redis://127.0.0.1:9/0"  # the discard port: nothing listens there


def _reset_pools() -> None:
    # kombu keeps pools in global groups keyed by connection *equality*: drop them all, or a
    # closed pool would be handed out again for the same broker URL.
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None
    pools.reset()


@contextmanager
def broker_at(url: str, transport_options: dict | None = None) -> Iterator[None]:
    previous = (app.conf.broker_url, app.conf.broker_transport_options)
    _reset_pools()
    outbox_sender_reset()
    app.conf.broker_url = url
    if transport_options is not None:
        app.conf.broker_transport_options = transport_options
    try:
        yield
    finally:
        _reset_pools()
        outbox_sender_reset()
        app.conf.broker_url, app.conf.broker_transport_options = previous


def lose_waiting_messages(queue: str = "jobs") -> int:
    """As if the broker restarted empty: drop every message waiting in ``queue``."""
    with app.connection_for_write() as conn:
        return conn.default_channel.queue_purge(queue) or 0

"""What the broker still holds: the task ids of the messages waiting in (or taken from, not yet
acknowledged by) the job queues. Queued-run recovery asks it so that it re-sends only runs
whose message is gone (Redis restarted empty, a flushed key), not the ones merely waiting.

Read-only and bounded. Redis: the queue lists (every priority step) and the unacknowledged
hash. Filesystem transport (development): the message files of the queue folder. Anything else,
an unreachable broker, or a queue longer than ``SCAN_LIMIT`` gives an incomplete view, and the
caller decides what to do without one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from celery import current_app

logger = logging.getLogger(__name__)

#: Messages read per queue at most; a longer queue is a backlog, not a lost message.
SCAN_LIMIT = 50_000


@dataclass
class BrokerView:
    task_ids: set[str] = field(default_factory=set)
    #: Whether every message of the queues was seen (only then is "absent" known to mean lost).
    complete: bool = False

    def holds(self, task_id: str) -> bool:
        return str(task_id) in self.task_ids


def broker_view(queues: Iterable[str]) -> BrokerView:
    """The task ids the broker holds for ``queues`` (incomplete if it cannot tell)."""
    queues = sorted(set(queues))
    try:
        with current_app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.default_channel
            if conn.transport.driver_type == "redis":
                return _redis_view(channel, queues)
            if conn.transport.driver_type == "filesystem":
                return _filesystem_view(channel, queues)
    except Exception as exc:  # noqa: BLE001 - no view is an answer: the caller falls back
        logger.warning("jobs: could not read the broker's queues: %s", exc)
    return BrokerView()


def _redis_view(channel, queues: list[str]) -> BrokerView:
    import redis

    view = BrokerView(complete=True)
    # kombu's client adds the transport's ``global_keyprefix`` to some commands only (not
    # LRANGE or HVALS): read through a plain client on its pool and prefix every key here.
    prefix = getattr(channel, "global_keyprefix", "") or ""
    client = redis.Redis(connection_pool=channel.client.connection_pool)
    raw: list = []
    for queue in queues:
        for priority in channel.priority_steps:
            key = prefix + channel._q_for_pri(queue, priority)
            if client.llen(key) > SCAN_LIMIT:
                view.complete = False
            raw += client.lrange(key, 0, SCAN_LIMIT - 1)
    # Taken by a worker, not yet acknowledged (running, or waiting for a retry's countdown).
    raw += client.hvals(prefix + channel.unacked_key)
    for item in raw:
        _add(view, item)
    return view


def _filesystem_view(channel, queues: list[str]) -> BrokerView:
    view = BrokerView(complete=True)
    folder = Path(channel.data_folder_in)
    for queue in queues:
        files = sorted(folder.glob(f"*.{queue}.msg"))
        if len(files) > SCAN_LIMIT:
            view.complete = False
        for path in files[:SCAN_LIMIT]:
            try:
                _add(view, path.read_bytes())
            except OSError:
                continue  # consumed meanwhile
    return view


def _add(view: BrokerView, raw) -> None:
    try:
        payload = json.loads(raw)
    except (TypeError, ValueError):
        return
    if isinstance(payload, list) and payload:
        payload = payload[0]  # an unacknowledged entry: [message, exchange, routing key]
    if not isinstance(payload, dict):
        return
    headers = payload.get("headers") or {}
    properties = payload.get("properties") or {}
    task_id = headers.get("id") or properties.get("correlation_id")
    if task_id:
        view.task_ids.add(str(task_id))

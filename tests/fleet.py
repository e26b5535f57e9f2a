"""Recording the chunk tasks a periodic fleet task enqueues (``tenants.tasks.fleet_fan_out``)."""

from __future__ import annotations

from tenants import tasks as tenant_tasks


def record_fan_out(monkeypatch) -> list[dict]:
    """Keep the ``tenants.fleet_chunk`` messages the code under test sends (``{"task": name,
    "tenant_ids": [...]}`` each) instead of sending them."""
    sent: list[dict] = []

    def apply_async(*, kwargs, **options):
        assert not options, "a fleet chunk takes its queue from msp/queues.py"
        sent.append(kwargs)

    monkeypatch.setattr(tenant_tasks.fleet_chunk, "apply_async", apply_async)
    return sent


def tenants_sent(sent: list[dict], task: str | None = None) -> list[int]:
    """The tenant ids of the recorded chunks (of ``task`` only, if given), in order."""
    return [tid for chunk in sent if task in (None, chunk["task"]) for tid in chunk["tenant_ids"]]

"""Hooks on a run's outcome: how other contexts hear of a failed run without the engine
importing them (the delivery context records ``job.failed`` through one).

A context registers a callable in its ``AppConfig.ready()``; the engine calls each as
``hook(run=run)`` inside the transaction that stores the failure (``run`` carries the final
status, error and attempts), so the hook's writes commit or roll back with it. Only runs of a
tenant are passed: a fleet run belongs to no tenant.
"""

from __future__ import annotations

from collections.abc import Callable

_failed_hooks: list[Callable[..., object]] = []


def on_job_failed(hook: Callable[..., object]) -> Callable[..., object]:
    """Register ``hook(run=run)`` for a tenant's run that failed for good (once, however often
    called)."""
    if hook not in _failed_hooks:
        _failed_hooks.append(hook)
    return hook


def job_failed_hooks() -> tuple[Callable[..., object], ...]:
    return tuple(_failed_hooks)


def job_failed_notify(*, run) -> None:
    """Run the registered hooks for ``run``, whose failure is being stored."""
    if run.tenant_id is None:
        return
    for hook in _failed_hooks:
        hook(run=run)

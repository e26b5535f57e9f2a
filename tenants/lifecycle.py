"""Lifecycle hooks: how other contexts follow a tenant's status without tenants importing them.

A context registers a callable in its ``AppConfig.ready()``; ``tenant_transition`` calls each,
in registration order, as ``hook(tenant=tenant)`` inside its transaction once the new status
is saved, so a hook that raises rolls the transition back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenants.models import Tenant

TenantTransitionHook = Callable[..., object]

_transition_hooks: list[TenantTransitionHook] = []


def on_tenant_transition(hook: TenantTransitionHook) -> TenantTransitionHook:
    """Register ``hook`` to run after every lifecycle transition (once, however often called)."""
    if hook not in _transition_hooks:
        _transition_hooks.append(hook)
    return hook


def tenant_transition_hooks() -> tuple[TenantTransitionHook, ...]:
    return tuple(_transition_hooks)


def tenant_transition_notify(*, tenant: Tenant) -> None:
    """Run the registered hooks for ``tenant``, whose status has just changed."""
    for hook in _transition_hooks:
        hook(tenant=tenant)


_token_hooks: list[Callable[..., object]] = []


def on_token_issued(hook: Callable[..., object]) -> Callable[..., object]:
    """Register ``hook(token=token)``, run in ``token_issue``'s transaction for a token bound
    to a tenant (integrations hear of it; tenants stays free of their imports)."""
    if hook not in _token_hooks:
        _token_hooks.append(hook)
    return hook


def token_issued_notify(*, token) -> None:
    for hook in _token_hooks:
        hook(token=token)

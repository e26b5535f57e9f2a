"""Choices a tenant's forms offer whose lists other contexts own (the frameworks a plan may
name in scope). A context registers a provider in its ``AppConfig.ready()``, as with
``tenants.lifecycle``, so tenants imports none of them."""

from __future__ import annotations

from collections.abc import Callable

FrameworkChoices = Callable[[], list[tuple[str, str]]]

_framework_providers: list[FrameworkChoices] = []


def register_framework_choices(provider: FrameworkChoices) -> FrameworkChoices:
    """Register ``provider`` (returns ``[(code, title), …]``) once, however often called."""
    if provider not in _framework_providers:
        _framework_providers.append(provider)
    return provider


def framework_choices() -> list[tuple[str, str]]:
    """Every framework a plan may put in scope, by code, from every registered provider."""
    choices: dict[str, str] = {}
    for provider in _framework_providers:
        for code, title in provider():
            choices.setdefault(code, title)
    return sorted(choices.items(), key=lambda item: item[1].lower())

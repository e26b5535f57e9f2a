"""The client overview's panels: each context registers one in its ``AppConfig.ready()``.

``tenants`` imports no context it guards, so the overview page cannot call their selectors; a
context registers ``build(tenant=, now=) -> dict`` (figures from its own selectors, a fixed
number of queries whatever the data's size) and the template that draws it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenants.models import Tenant

PanelBuild = Callable[..., dict]


@dataclass(frozen=True)
class OverviewPanel:
    key: str
    title: str
    order: int
    template: str
    build: PanelBuild


@dataclass(frozen=True)
class BuiltPanel:
    panel: OverviewPanel
    context: dict


_panels: dict[str, OverviewPanel] = {}


def register_overview_panel(
    key: str, *, title: str, order: int, template: str, build: PanelBuild
) -> OverviewPanel:
    """Register (or replace, by ``key``) a panel of the client overview."""
    panel = OverviewPanel(key=key, title=title, order=order, template=template, build=build)
    _panels[key] = panel
    return panel


def overview_panels() -> tuple[OverviewPanel, ...]:
    return tuple(sorted(_panels.values(), key=lambda panel: (panel.order, panel.key)))


def overview_panels_built(*, tenant: Tenant, now: dt.datetime) -> list[BuiltPanel]:
    """Every registered panel, in order, with the figures its context computed for ``tenant``."""
    return [BuiltPanel(panel, panel.build(tenant=tenant, now=now)) for panel in overview_panels()]

"""The fleet dashboard's columns: each context registers the figures it owns, tenants draws them.

A context registers a ``FleetColumn`` in its ``AppConfig.ready()``; its ``figures`` takes every
tenant id of the page and answers ``{tenant id: FleetCell}`` in a fixed number of grouped
queries, so the dashboard's query count does not grow with the fleet. It is called inside a
scope of exactly those tenants and filters by their ids with ``Model.objects.unscoped()``: one
tenant list in the SQL instead of two (row-level security still holds the scope). Rows sort by
the sum of their cells' ``attention``.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, field
from decimal import Decimal
from functools import cached_property

from django.core.cache import cache
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from msp.api.throttling import CACHE_ERRORS


@dataclass(frozen=True)
class FleetCell:
    """One tenant's figure in one column: what to show, what to sort by and how loud it is.

    ``tone``: "" (plain), "ok", "warn" or "bad". ``link``: a path under the tenant's portal
    (``"incidents/"``) or an absolute URL.
    """

    text: str
    value: float | Decimal | None = None
    attention: int = 0
    tone: str = ""
    link: str = ""
    detail: str = ""
    # (unit, amount) pairs when the figure is in several units that do not add up (currencies).
    parts: tuple[tuple[str, float], ...] = ()


FiguresFunction = Callable[[Sequence[int]], dict[int, FleetCell]]
TotalFunction = Callable[[dict[int, FleetCell]], FleetCell]


def total_by_sum(*, unit: str = "", digits: int = 0) -> TotalFunction:
    """A total that adds the cells' values (the common case)."""

    def total(cells: dict[int, FleetCell]) -> FleetCell:
        values = [cell.value for cell in cells.values() if cell.value is not None]
        amount = sum(values) if values else 0
        return FleetCell(
            text=f"{amount:,.{digits}f}{unit}",
            value=amount,
            attention=sum(cell.attention for cell in cells.values()),
        )

    return total


@dataclass(frozen=True)
class FleetColumn:
    key: str
    title: str
    order: int
    figures: FiguresFunction
    total: TotalFunction = field(default_factory=total_by_sum)
    help: str = ""
    # > 0: the figures of a set of tenants are kept this long in the cache (for reads over
    # telemetry that cost more than the rest of the page together).
    cache_seconds: int = 0


_columns: dict[str, FleetColumn] = {}


def register_fleet_column(column: FleetColumn) -> FleetColumn:
    """Add ``column`` to the dashboard (registering a key again replaces it: ready() may rerun)."""
    _columns[column.key] = column
    return column


def fleet_columns() -> list[FleetColumn]:
    return sorted(_columns.values(), key=lambda column: (column.order, column.key))


EMPTY_CELL = FleetCell(text="—")


def fleet_cache_key(column: FleetColumn, ids: Sequence[int]) -> str:
    """The cache key of ``column``'s figures for the tenant set ``ids``."""
    digest = hashlib.blake2b(",".join(map(str, sorted(ids))).encode(), digest_size=16)
    return f"fleet:{column.key}:{digest.hexdigest()}"


def _figures_of(column: FleetColumn, ids: list[int]) -> dict[int, FleetCell]:
    if not column.cache_seconds:
        return column.figures(ids)
    key = fleet_cache_key(column, ids)
    try:
        kept = cache.get(key)
    except CACHE_ERRORS:
        kept = None  # a cache that fails costs time, never the page
    if kept is not None:
        return {tenant_id: FleetCell(*fields) for tenant_id, fields in kept.items()}
    cells = column.figures(ids)
    # Kept as plain tuples: they unpickle several times faster than dataclasses.
    kept = {tenant_id: astuple(cell) for tenant_id, cell in cells.items()}
    with contextlib.suppress(CACHE_ERRORS):
        cache.set(key, kept, column.cache_seconds)
    return cells


_CELL_HTML = {
    (True, True): '<td class="num{}"><a href="{}">{}</a><div class="muted small">{}</div></td>',
    (True, False): '<td class="num{}"><a href="{}">{}</a></td>',
    (False, True): '<td class="num{}">{}{}<div class="muted small">{}</div></td>',
    (False, False): '<td class="num{}">{}{}</td>',
}


@dataclass
class FleetRow:
    tenant: dict
    cells: list[tuple[FleetCell, str]]
    attention: int

    @cached_property
    def cells_html(self) -> SafeString:
        """The row's cells as table cells (built here: a template loop costs ten times more)."""
        return format_html_join(
            "",
            "{}",
            (
                (
                    format_html(
                        _CELL_HTML[(bool(href), bool(cell.detail))],
                        f" fleet--{cell.tone}" if cell.tone else "",
                        href,
                        cell.text,
                        *([cell.detail] if cell.detail else []),
                    ),
                )
                for cell, href in self.cells
            ),
        )


@dataclass
class FleetTable:
    columns: list[FleetColumn]
    rows: list[FleetRow]
    totals: list[FleetCell]


def fleet_table(*, tenant_rows: list[dict], portal_prefix: str) -> FleetTable:
    """Every registered column's figures for ``tenant_rows`` (from ``fleet_tenant_rows``), the
    rows most in need of attention first, and the total of each column over those rows.

    ``portal_prefix``: a tenant's portal root with ``{slug}`` for the slug, for the cells' links.
    The figures are read in a scope of exactly these tenants.
    """
    from tenants.scoping import tenant_scope  # the models build on scoping

    columns = fleet_columns()
    ids = [row["id"] for row in tenant_rows]
    figures: dict[str, dict[int, FleetCell]] = {}
    if ids:
        with tenant_scope(*ids):
            for column in columns:
                figures[column.key] = _figures_of(column, ids)
    rows = []
    for tenant in tenant_rows:
        prefix = portal_prefix.replace("{slug}", tenant["slug"])
        cells = []
        attention = 0
        for column in columns:
            cell = figures[column.key].get(tenant["id"], EMPTY_CELL) if ids else EMPTY_CELL
            attention += cell.attention
            link = cell.link
            href = link if not link or link.startswith("/") else prefix + link
            cells.append((cell, href))
        rows.append(FleetRow(tenant=tenant, cells=cells, attention=attention))
    rows.sort(key=lambda row: (-row.attention, row.tenant["name"]))
    totals = [column.total(figures.get(column.key, {})) for column in columns]
    return FleetTable(columns=columns, rows=rows, totals=totals)

"""Portal views read through selectors and write through services, the same ones the API uses:
no portal view module touches the ORM itself.

The check reads the source (``ast``), so it needs no database. What it calls the ORM:
``Model.objects``, a queryset method (``filter``, ``order_by``, ``first`` …), ``.get(``,
``.update(`` with keyword arguments (a dict's ``get`` takes none), ``.count()``, ``.all()``,
``.delete()`` and ``.save()`` with no arguments, query expressions imported from
``django.db.models`` and ``get_object_or_404``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Forms declare their choices' querysets; the gate and the views are what is held here.
NOT_VIEWS = {"__init__.py", "forms.py", "urls.py"}

QUERYSET_METHODS = {
    "aggregate",
    "alias",
    "annotate",
    "bulk_create",
    "bulk_update",
    "defer",
    "distinct",
    "exclude",
    "exists",
    "extra",
    "filter",
    "first",
    "get_or_create",
    "in_bulk",
    "iterator",
    "last",
    "only",
    "order_by",
    "prefetch_related",
    "raw",
    "select_for_update",
    "select_related",
    "update_or_create",
    "values_list",
}
# Names a dict or a list also has: the ORM's only when called the ORM's way.
WITH_KEYWORDS = {"get", "update", "values"}
WITHOUT_ARGUMENTS = {"all", "count", "delete", "save"}
SHORTCUTS = {"get_object_or_404", "get_list_or_404"}


def portal_view_modules() -> list[Path]:
    packages = [
        ROOT / "tenants" / "portal",
        *sorted((ROOT / "operations").glob("*/portal")),
        # The project's staff pages across contexts (the tenant 360 page).
        ROOT / "msp" / "console",
    ]
    return [
        module
        for package in packages
        for module in sorted(package.glob("*.py"))
        if module.name not in NOT_VIEWS
    ]


def _short(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else f"{text[:57]}..."


def orm_uses(source: str) -> list[tuple[int, str]]:
    """(line, what) for every use of the ORM in a module's source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and (node.module == "django.db.models" or node.module.startswith("django.db.models."))
        ):
            names = ", ".join(alias.name for alias in node.names)
            found.append((node.lineno, f"imports {names} from {node.module} to build a query"))
        elif isinstance(node, ast.ImportFrom) and node.module == "django.shortcuts":
            for alias in node.names:
                if alias.name in SHORTCUTS:
                    found.append((node.lineno, f"imports {alias.name}"))
        elif isinstance(node, ast.Attribute) and node.attr == "objects":
            found.append((node.lineno, _short(node)))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if (
                name in QUERYSET_METHODS
                or (name in WITH_KEYWORDS and node.keywords)
                or (name in WITHOUT_ARGUMENTS and not node.args and not node.keywords)
            ):
                found.append((node.lineno, f".{name}() on {_short(node.func.value)}"))
    return sorted(found)


def test_the_check_sees_the_orm_and_passes_plain_python():
    assert [what for _line, what in orm_uses("Incident.objects.filter(tenant=t).first()")] == [
        ".filter() on Incident.objects",
        ".first() on Incident.objects.filter(tenant=t)",
        "Incident.objects",
    ]
    assert orm_uses("rows.order_by('name')")
    assert orm_uses("rows.get(pk=1)")
    assert orm_uses("rows.count()")
    assert orm_uses("from django.db.models import Count, Q")
    assert orm_uses("from django.shortcuts import get_object_or_404")
    plain = (
        "state = request.GET.get('state', 'open')\n"
        "counts.update(other)\n"
        "total = sum(counts.values())\n"
        "label = labels.get(role, role)\n"
        "n = names.count('x')\n"
    )
    assert orm_uses(plain) == []


def test_portal_view_modules_are_found():
    names = {str(module.relative_to(ROOT)) for module in portal_view_modules()}
    assert {
        "tenants/portal/views.py",
        "tenants/portal/access.py",
        "operations/inventory/portal/views.py",
        "operations/incidents/portal/views.py",
        "msp/console/views.py",
    } <= names


@pytest.mark.parametrize(
    "module", portal_view_modules(), ids=lambda module: str(module.relative_to(ROOT))
)
def test_portal_views_do_not_touch_the_orm(module: Path):
    uses = orm_uses(module.read_text())
    where = str(module.relative_to(ROOT))
    assert not uses, (
        f"{where} uses the ORM directly; portal views read through the app's selectors (the "
        "ones its API uses) and write through its services. Move these into selectors.py:\n"
        + "\n".join(f"  {where}:{line}: {what}" for line, what in uses)
    )

"""Who may import whom, and whose tables a context's SQL may name (docs/architecture.md).

The rules, checked on the source with ``ast`` (migrations aside):

- ``tenants-imports-operations``: nothing under ``tenants/`` imports ``operations``; lifecycle
  changes reach the contexts through hooks they register (``tenants.lifecycle``).
- ``msp-outside-kernel``: ``tenants/`` and ``operations/`` import nothing from ``msp`` but the
  API kernel, ``msp.api`` and its modules.
- ``foreign-table-sql``: a context's SQL names only its own tables. A table belongs to the
  context whose models have it as ``db_table`` or whose source creates it (``CREATE TABLE``,
  ``VIEW``, ``FUNCTION``). Found in SQL strings (f-strings rendered with the constants they
  use), in another context's table-name constants, and in ``Model._meta.db_table`` of another
  context's model.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parent.parent
CHECKED_PACKAGES = ("tenants", "operations")
CONTEXTS = (
    "tenants",
    "operations.inventory",
    "operations.telemetry",
    "operations.incidents",
    "operations.jobs",
    "operations.compliance",
    "operations.optimisation",
    "operations.events",
    "operations.readiness",
    "operations.reports",
)

# Known violations, each to be removed by the change named beside it: (path, rule, table).
# An entry that no longer matches fails the test, so it is removed with the violation.
ALLOWED: dict[tuple[str, str, str], str] = {}

_SQL = re.compile(
    r"\bselect\b.*\bfrom\b|\binsert\s+into\b|\bupdate\s+\S+\s+set\b|\bdelete\s+from\b|"
    r"\btruncate\b|\bjoin\b|\bcopy\s+\S+\s+(from|to)\b|\b(create|alter|drop)\s+"
    r"(or\s+replace\s+)?(temp\w*\s+|unlogged\s+)?(table|view|function|index|policy|trigger)\b",
    re.IGNORECASE | re.DOTALL,
)
_CREATED = re.compile(
    r"\bcreate\s+(?:or\s+replace\s+)?(?:temp\w*\s+|unlogged\s+)?"
    r"(?:table|view|materialized\s+view|function)\s+(?:if\s+not\s+exists\s+)?\"?(\w+)",
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UNKNOWN = "\x00"  # a part of an f-string the checker cannot resolve


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    rule: str
    detail: str
    table: str = ""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.detail}"


def module_name(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def context_of(module: str) -> str | None:
    matches = [c for c in CONTEXTS if module == c or module.startswith(c + ".")]
    return max(matches, key=len) if matches else None


def _is_migration(path: str) -> bool:
    return "/migrations/" in path


class _Module:
    """One parsed source file: its imports (local name → module or (module, attribute)) and
    its module-level string constants."""

    def __init__(self, path: str, source: str):
        self.path = path
        self.name = module_name(path)
        self.is_package = path.endswith("__init__.py")
        self.tree = ast.parse(source, filename=path)
        self.context = context_of(self.name)
        self.constants: dict[str, str] = {}
        for node in self.tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            value = getattr(node, "value", None)
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                for target in targets:
                    if isinstance(target, ast.Name):
                        self.constants[target.id] = value.value
        self.names: dict[str, tuple[str, str | None]] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.names[alias.asname] = (alias.name, None)
            elif isinstance(node, ast.ImportFrom):
                source_module = self.absolute(node)
                for alias in node.names:
                    self.names[alias.asname or alias.name] = (source_module, alias.name)

    def absolute(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        package = self.name.split(".")
        if not self.is_package:
            package.pop()
        if node.level > 1:
            package = package[: len(package) - node.level + 1]
        return ".".join([*package, *([node.module] if node.module else [])])

    def docstrings(self) -> set[int]:
        ids = set()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body
                if (
                    body
                    and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)
                ):
                    ids.add(id(body[0].value))
        return ids


class Project:
    """The checked source, and which context owns which table."""

    def __init__(self, sources: dict[str, str], model_tables: dict[str, str]):
        self.modules = {module_name(path): _Module(path, src) for path, src in sources.items()}
        self.owners = dict(model_tables)
        for module in self.modules.values():
            if module.context is None:
                continue
            for text, _line in self.strings(module):
                for created in _CREATED.findall(text):
                    self.owners.setdefault(created, module.context)

    # --- Resolving names to the module that defines them -------------------------------------

    def resolve(self, module: _Module, node: ast.AST) -> tuple[str, str] | None:
        """(defining module, name) of a Name or ``alias.NAME`` the module imported or defined."""
        if isinstance(node, ast.Name):
            if node.id in module.constants:
                return module.name, node.id
            imported = module.names.get(node.id)
            if imported and imported[1] is not None:
                source, name = imported
                if f"{source}.{name}" in self.modules:
                    return None  # a module, not a name in one
                return source, name
            return None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            imported = module.names.get(node.value.id)
            if imported:
                source, name = imported
                target = source if name is None else f"{source}.{name}"
                if target in self.modules:
                    return target, node.attr
        return None

    def constant(self, module: _Module, node: ast.AST) -> tuple[str, str] | None:
        """(defining module, value) when ``node`` names a string constant of the checked source."""
        found = self.resolve(module, node)
        if found is None or found[0] not in self.modules:
            return None
        value = self.modules[found[0]].constants.get(found[1])
        return None if value is None else (found[0], value)

    def render(self, module: _Module, node: ast.JoinedStr) -> str:
        parts = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                parts.append(str(part.value))
            else:
                found = self.constant(module, part.value)
                parts.append(found[1] if found else _UNKNOWN)
        return "".join(parts)

    def strings(self, module: _Module):
        """(text, line) of every string literal and f-string of the module, docstrings aside."""
        skip = module.docstrings()
        for node in ast.walk(module.tree):
            if isinstance(node, ast.JoinedStr):
                skip.update(id(part) for part in node.values)
                yield self.render(module, node), node.lineno
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in skip
            ):
                yield node.value, node.lineno

    # --- The rules ------------------------------------------------------------------------------

    def violations(self) -> list[Violation]:
        found: list[Violation] = []
        for module in self.modules.values():
            if _is_migration(module.path):
                continue
            found += self.import_violations(module)
            if module.context is not None:
                found += self.sql_violations(module)
        return sorted(set(found), key=lambda v: (v.path, v.line, v.rule, v.table))

    def import_violations(self, module: _Module) -> list[Violation]:
        found = []
        top = module.name.split(".")[0]
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = module.absolute(node)
                imported = [source]
                if source == "msp":
                    imported = [f"msp.{alias.name}" for alias in node.names]
            else:
                continue
            for name in imported:
                if top == "tenants" and (name == "operations" or name.startswith("operations.")):
                    found.append(
                        Violation(
                            module.path,
                            node.lineno,
                            "tenants-imports-operations",
                            f"tenants imports {name}: the boundary imports no context it "
                            "guards (register a hook in tenants.lifecycle, or move the code "
                            "to msp)",
                        )
                    )
                is_msp = name == "msp" or name.startswith("msp.")
                is_kernel = name == "msp.api" or name.startswith("msp.api.")
                if top in CHECKED_PACKAGES and is_msp and not is_kernel:
                    found.append(
                        Violation(
                            module.path,
                            node.lineno,
                            "msp-outside-kernel",
                            f"{top} imports {name}: apps import only the API kernel, msp.api",
                        )
                    )
        return found

    def _foreign(self, module: _Module, table: str) -> bool:
        owner = self.owners.get(table)
        return owner is not None and owner != module.context

    def sql_violations(self, module: _Module) -> list[Violation]:
        found = []

        def flag(line: int, table: str, how: str) -> None:
            found.append(
                Violation(
                    module.path,
                    line,
                    "foreign-table-sql",
                    f"{module.context} {how} {table}, a table of {self.owners[table]}: read it "
                    "through that context's selectors",
                    table,
                )
            )

        for text, line in self.strings(module):
            if not _SQL.search(text):
                continue
            for word in set(_WORD.findall(text)):
                if self._foreign(module, word):
                    flag(line, word, "SQL names")
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Name | ast.Attribute):
                found_constant = self.constant(module, node)
                if found_constant is not None:
                    defining, value = found_constant
                    if context_of(defining) != module.context and self._foreign(module, value):
                        flag(node.lineno, value, f"uses {defining}'s table name constant for")
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "db_table"
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "_meta"
            ):
                model = self.resolve(module, node.value.value)
                defining_context = context_of(model[0]) if model else None
                if defining_context not in (None, module.context):
                    found.append(
                        Violation(
                            module.path,
                            node.lineno,
                            "foreign-table-sql",
                            f"{module.context} takes the table of {model[0]}.{model[1]}, a "
                            f"model of {defining_context}: read it through that context's "
                            "selectors",
                            f"{model[0]}.{model[1]}",
                        )
                    )
        return found


def project_sources() -> dict[str, str]:
    return {
        str(path.relative_to(ROOT)): path.read_text()
        for package in CHECKED_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def model_tables() -> dict[str, str]:
    """db_table → the context of the model's app, for the contexts' models."""
    tables = {}
    for model in apps.get_models(include_auto_created=True):
        context = context_of(model._meta.app_config.name)
        if context is not None:
            tables[model._meta.db_table] = context
    return tables


def check(sources: dict[str, str], tables: dict[str, str]) -> list[Violation]:
    return Project(sources, tables).violations()


# --- The project as it is ---------------------------------------------------------------------


def broken_rules(violations: list[Violation], allowed: dict[tuple[str, str, str], str]):
    """Each violation not allowed, and each allowed one that no longer happens, as a line."""
    unexpected = [v for v in violations if (v.path, v.rule, v.table) not in allowed]
    stale = set(allowed) - {(v.path, v.rule, v.table) for v in violations}
    return [str(v) for v in unexpected] + [
        f"{path}: [{rule}] allowed for {table!r} ({allowed[path, rule, table]}), but no longer "
        "happens: remove it from ALLOWED"
        for path, rule, table in sorted(stale)
    ]


@pytest.fixture(scope="class")
def project() -> Project:
    """The project's sources parsed once for the class's tests (~2 s of CPU each time)."""
    return Project(project_sources(), model_tables())


class TestTheProjectAsItIs:
    def test_the_source_keeps_the_import_and_table_rules(self, project):
        problems = broken_rules(project.violations(), ALLOWED)
        assert not problems, "Architecture rules broken (docs/architecture.md):\n" + "\n".join(
            problems
        )

    def test_the_table_map_knows_every_context_and_the_hand_made_tables(self, project):
        owners = project.owners
        assert owners["tenants_tenant"] == "tenants"
        assert owners["jobs_jobrun"] == "operations.jobs"
        # Not models: created by telemetry's migrations and storage.
        assert owners["telemetry_sample_block"] == "operations.telemetry"
        assert owners["telemetry_block_partition_create"] == "operations.telemetry"


# --- The checker can fail -----------------------------------------------------------------------

TABLES = {
    "tenants_tenant": "tenants",
    "telemetry_rollup": "operations.telemetry",
    "incidents_incident": "operations.incidents",
}


def _rules(sources: dict[str, str]) -> list[tuple[str, int, str]]:
    return [(v.path, v.line, v.rule) for v in check(sources, TABLES)]


@pytest.mark.parametrize(
    "source",
    [
        "from operations.jobs.services import job_submit\n",
        "import operations.inventory.models\n",
        "def f():\n    from operations import jobs\n",
    ],
    ids=["from-import", "import", "deferred"],
)
def test_tenants_importing_a_context_fails(source):
    assert ("tenants/services.py", source.count("\n"), "tenants-imports-operations") in _rules(
        {"tenants/services.py": source}
    )


@pytest.mark.parametrize(
    ("source", "broken"),
    [
        ("from msp.middleware import current_request_id\n", True),
        ("from msp import settings\n", True),
        ("import msp.celery\n", True),
        ("from msp.api.errors import ApiError\n", False),
        ("from msp import api\n", False),
        ("import msp.api.request_id\n", False),
    ],
)
def test_only_the_api_kernel_of_msp_may_be_imported(source, broken):
    for path in ("tenants/audit.py", "operations/jobs/services.py"):
        rules = _rules({path: source})
        assert ((path, 1, "msp-outside-kernel") in rules) is broken


def test_the_project_may_import_anything():
    sources = {"msp/management/commands/seed_demo.py": "from operations.jobs.demo import x\n"}
    assert check(sources, TABLES) == []


def test_sql_naming_another_contexts_table_fails_with_file_line_and_rule():
    source = (
        'X = 1\nSQL = """\n    SELECT avg(value) FROM telemetry_rollup WHERE tenant_id = %s\n"""\n'
    )
    (violation,) = check({"operations/incidents/selectors.py": source}, TABLES)
    assert (violation.path, violation.line, violation.rule) == (
        "operations/incidents/selectors.py",
        2,
        "foreign-table-sql",
    )
    assert str(violation).startswith("operations/incidents/selectors.py:2: [foreign-table-sql]")
    assert "telemetry_rollup" in str(violation)


def test_sql_naming_its_own_tables_or_prose_naming_a_table_passes():
    sources = {
        "operations/telemetry/storage.py": 'Q = "SELECT * FROM telemetry_rollup"\n',
        "operations/incidents/services.py": 'MESSAGE = "see telemetry_rollup for figures"\n',
        "operations/incidents/models.py": '"""Docstring: SELECT x FROM telemetry_rollup."""\n',
    }
    assert check(sources, TABLES) == []


def test_a_foreign_table_name_constant_or_a_foreign_models_table_fails():
    sources = {
        "operations/telemetry/storage.py": 'BLOCK_TABLE = "telemetry_block"\n'
        'CREATE = f"CREATE TABLE {BLOCK_TABLE} (id int)"\n',
        "operations/telemetry/models.py": "class Rollup:\n    pass\n",
        "operations/incidents/selectors.py": "from operations.telemetry.storage import "
        "BLOCK_TABLE\n"
        "from operations.telemetry.models import Rollup\n"
        'SQL = "SELECT * FROM {blocks}"\n'
        "def stats():\n"
        "    return SQL.format(blocks=BLOCK_TABLE), Rollup._meta.db_table\n",
        "operations/compliance/services.py": "from operations.telemetry import storage\n"
        'Q = f"SELECT count(*) FROM {storage.BLOCK_TABLE}"\n',
    }
    found = {(v.path, v.line, v.table) for v in check(sources, TABLES)}
    assert found == {
        ("operations/incidents/selectors.py", 5, "telemetry_block"),
        ("operations/incidents/selectors.py", 5, "operations.telemetry.models.Rollup"),
        ("operations/compliance/services.py", 2, "telemetry_block"),
    }


def test_migrations_are_not_checked():
    source = 'SQL = "UPDATE incidents_incident SET x = 1"\n'
    assert check({"operations/jobs/migrations/0002_x.py": source}, TABLES) == []
    assert _rules({"operations/jobs/services.py": source}) == [
        ("operations/jobs/services.py", 1, "foreign-table-sql")
    ]


def test_an_allowed_violation_passes_until_it_is_gone():
    source = 'SQL = "UPDATE incidents_incident SET x = 1"\n'
    allowed = {("operations/jobs/services.py", "foreign-table-sql", "incidents_incident"): "why"}
    violations = check({"operations/jobs/services.py": source}, TABLES)
    assert broken_rules(violations, allowed) == []
    assert broken_rules([], allowed) == [
        "operations/jobs/services.py: [foreign-table-sql] allowed for 'incidents_incident' (why), "
        "but no longer happens: remove it from ALLOWED"
    ]

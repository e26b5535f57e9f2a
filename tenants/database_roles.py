"""Two PostgreSQL roles: an owner that runs migrations, and the runtime role the app runs as.

Only a table's owner (or a superuser) may disable its row-level security or its triggers, so
the runtime role (``DATABASE_URL``) owns nothing and holds DML grants only. With
``DATABASE_OWNER_URL`` set, ``migrate`` runs as the owner and ends with ``runtime_role_grant``;
without it one role does both, as in the embedded mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

OWNER_ALIAS = "owner"
_owner_session: ContextVar[bool] = ContextVar("owner_session", default=False)


def owner_configured() -> bool:
    """Whether ``DATABASE_OWNER_URL`` gave the owner role a connection of its own."""
    return OWNER_ALIAS in settings.DATABASES


def runtime_role_name() -> str:
    """The role the app connects as (``DATABASE_URL``'s user)."""
    return settings.DATABASES[DEFAULT_DB_ALIAS]["USER"]


@contextmanager
def owner_session() -> Iterator[None]:
    """Serve every model read and write from the owner's connection (``migrate`` only)."""
    token = _owner_session.set(True)
    try:
        yield
    finally:
        _owner_session.reset(token)


class OwnerRouter:
    """Models are served by ``default`` (the runtime role), never by the owner's connection,
    except inside ``owner_session()``: data migrations then write in the migration's own
    transaction, as the role that made the tables."""

    def db_for_read(self, model, **hints):
        return OWNER_ALIAS if _owner_session.get() else None

    db_for_write = db_for_read


def runtime_role_grant(*, role: str, using: str = DEFAULT_DB_ALIAS) -> None:
    """Give ``role`` what the running app needs in this database's schema, and nothing more.

    Runs on the owner's connection ``using``: USAGE on the schema; SELECT, INSERT, UPDATE and
    DELETE on every table and view, but only SELECT and INSERT on the append-only audit log;
    USAGE and SELECT on sequences; EXECUTE on functions (the telemetry partition functions);
    and the same by default for what the owner makes later (tables of later migrations,
    partitions). No TRUNCATE, no CREATE, no ownership. Earlier grants to the role are revoked
    first, in the same transaction, so running it again converges.
    """
    from tenants.models import AuditEvent

    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(
            "SELECT quote_ident(current_schema()), quote_ident(current_user), quote_ident(%s), "
            "EXISTS (SELECT FROM pg_roles WHERE rolname = %s)",
            [role, role],
        )
        schema, owner, runtime, exists = cursor.fetchone()
        if not exists:
            raise ValueError(f"There is no role named {role}.")
        owned = _owned_by(cursor, role)
        if owned:
            # The revokes below would strip an owner of its own privileges.
            raise ValueError(f"Role {role} is an owner, not a runtime role: it owns {owned}.")
        audit = connection.ops.quote_name(AuditEvent._meta.db_table)
        default_privileges = f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema}"
        for statement in (
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {runtime}",
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {runtime}",
            f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {schema} FROM {runtime}",
            f"REVOKE ALL ON SCHEMA {schema} FROM {runtime}",
            f"GRANT USAGE ON SCHEMA {schema} TO {runtime}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {runtime}",
            f"REVOKE UPDATE, DELETE ON {audit} FROM {runtime}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {runtime}",
            f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO {runtime}",
            f"{default_privileges} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {runtime}",
            f"{default_privileges} GRANT USAGE, SELECT ON SEQUENCES TO {runtime}",
            f"{default_privileges} GRANT EXECUTE ON FUNCTIONS TO {runtime}",
        ):
            cursor.execute(statement)


# Relations, functions and schemas that ``role`` owns or may act as the owner of, outside
# PostgreSQL's own schemas and the temporary ones (where ingest's staging table lives).
_OWNED = """
    SELECT n.nspname || '.' || c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE pg_has_role(%(role)s, c.relowner, 'MEMBER') AND n.nspname NOT LIKE 'pg\\_%%'
        AND n.nspname <> 'information_schema'
    UNION ALL
    SELECT n.nspname || '.' || p.proname || '()' FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE pg_has_role(%(role)s, p.proowner, 'MEMBER') AND n.nspname NOT LIKE 'pg\\_%%'
        AND n.nspname <> 'information_schema'
    UNION ALL
    SELECT 'schema ' || nspname FROM pg_namespace
        WHERE pg_has_role(%(role)s, nspowner, 'MEMBER') AND nspname NOT LIKE 'pg\\_%%'
    UNION ALL
    SELECT 'database ' || datname FROM pg_database
        WHERE datname = current_database() AND pg_has_role(%(role)s, datdba, 'MEMBER')
    ORDER BY 1
"""


def _owned_by(cursor, role: str) -> str:
    """The first few things ``role`` owns here, as a phrase; empty when it owns nothing."""
    cursor.execute(_OWNED, {"role": role})
    owned = [name for (name,) in cursor.fetchall()]
    more = f" and {len(owned) - 5} more" if len(owned) > 5 else ""
    return f"{', '.join(owned[:5])}{more}" if owned else ""


_CAPABILITIES = """
    SELECT r.rolsuper, r.rolbypassrls, r.rolcreaterole,
        has_schema_privilege(r.rolname, current_schema(), 'CREATE'),
        has_database_privilege(r.rolname, current_database(), 'CREATE'),
        ARRAY(SELECT c.relname FROM pg_class c
              WHERE c.relnamespace = current_schema()::regnamespace
              AND c.relkind IN ('r', 'p')
              AND has_table_privilege(r.rolname, c.oid, 'TRUNCATE, TRIGGER')
              ORDER BY c.relname),
        has_table_privilege(r.rolname, %(audit)s, 'UPDATE, DELETE')
    FROM pg_roles r WHERE r.rolname = %(role)s
"""


def runtime_role_problems(*, role: str, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Whatever lets ``role`` change this database's schema or its guards; empty when it may
    only read and write rows, as the runtime role must."""
    from tenants.models import AuditEvent

    params = {"role": role, "audit": AuditEvent._meta.db_table}
    with connections[using].cursor() as cursor:
        cursor.execute(_CAPABILITIES, params)
        row = cursor.fetchone()
        if row is None:
            return [f"there is no role named {role}"]
        superuser, bypassrls, createrole, schema_create, db_create, truncatable, audit = row
        owned = _owned_by(cursor, role)
    problems = [
        text
        for flag, text in (
            (superuser, "is a superuser"),
            (bypassrls, "has BYPASSRLS"),
            (createrole, "has CREATEROLE"),
            (schema_create, "may CREATE in the schema"),
            (db_create, "may CREATE schemas in the database"),
            (audit, "may UPDATE or DELETE the audit log"),
        )
        if flag
    ]
    if truncatable:
        problems.append(f"may TRUNCATE or add triggers to {', '.join(truncatable[:5])}")
    if owned:
        problems.append(f"owns (or may act as the owner of) {owned}")
    return [f"role {role} {problem}" for problem in problems]

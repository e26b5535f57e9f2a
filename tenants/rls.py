"""PostgreSQL row-level security for tenant-owned tables: the second wall under the manager.

``EnableTenantRowLevelSecurity("modelname")`` in a migration enables and *forces* RLS (so the
owning role cannot bypass it) with one policy: a row is visible and writable only when its
``tenant_id`` is in the transaction-local ``app.tenant_ids`` setting. An unset setting matches
nothing. On other databases the operation does nothing.
"""

from __future__ import annotations

from django.db import migrations

from tenants.scoping import RLS_SETTING

POLICY_NAME = "tenant_isolation"
# The tenant ids of the active scope, as PostgreSQL sees them (no row when no scope is set). As
# an uncorrelated IN subquery it is planned as a hashed SubPlan: the setting is parsed once per
# query and each row costs one hash probe. The former ``= ANY (array)`` form compared each row
# with every id of the scope: with a 1,000-tenant scope (the fleet dashboard) 2,000 rows took
# 290 ms against 4 ms (see docs/architecture.md).
ALLOWED_TENANT_IDS = (
    f"(SELECT unnest(string_to_array(NULLIF(current_setting('{RLS_SETTING}', true), ''), ','))"
    "::bigint)"
)
TENANT_CONDITION = f"tenant_id IN {ALLOWED_TENANT_IDS}"
# Tables whose rows may belong to no tenant (fleet job runs): those rows are admitted too.
TENANT_OR_SHARED_CONDITION = f"tenant_id IS NULL OR {TENANT_CONDITION}"


def policies_refresh(schema_editor) -> int:
    """Re-create every isolation policy in the database with today's condition (shared rows
    stay admitted where they were). For a migration that changes the condition's SQL."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT schemaname, tablename, qual FROM pg_policies WHERE policyname = %s",
            [POLICY_NAME],
        )
        policies = cursor.fetchall()
    for schema, table, qual in policies:
        condition = TENANT_OR_SHARED_CONDITION if "IS NULL" in (qual or "") else TENANT_CONDITION
        name = f"{schema_editor.quote_name(schema)}.{schema_editor.quote_name(table)}"
        schema_editor.execute(
            f"ALTER POLICY {POLICY_NAME} ON {name} USING ({condition}) WITH CHECK ({condition})"
        )
    return len(policies)


def enable_rls_statements(table: str, condition: str = TENANT_CONDITION) -> list[str]:
    """SQL that enables and forces RLS on ``table`` (quoted) with the one isolation policy."""
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {POLICY_NAME} ON {table}",
        f"CREATE POLICY {POLICY_NAME} ON {table} USING ({condition}) WITH CHECK ({condition})",
    ]


class EnableTenantRowLevelSecurity(migrations.operations.base.Operation):
    reversible = True
    condition = TENANT_CONDITION
    reduces_to_sql = True

    def __init__(self, model_name: str):
        self.model_name = model_name

    def state_forwards(self, app_label, state):
        pass

    def _table(self, app_label, schema_editor, state):
        return state.apps.get_model(app_label, self.model_name)._meta.db_table

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(self._table(app_label, schema_editor, to_state))
        for statement in enable_rls_statements(table, self.condition):
            schema_editor.execute(statement)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(self._table(app_label, schema_editor, from_state))
        schema_editor.execute(f"DROP POLICY IF EXISTS {POLICY_NAME} ON {table}")
        schema_editor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")

    def describe(self):
        return f"Enable forced row-level security on {self.model_name}"

    def deconstruct(self):
        return self.__class__.__qualname__, [self.model_name], {}

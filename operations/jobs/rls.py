"""Row-level security for job tables, whose fleet rows have no tenant.

Same as ``tenants.rls.EnableTenantRowLevelSecurity`` (enabled, forced, one policy) except that a
row with a NULL ``tenant_id`` is admitted too: such rows are fleet-wide runs and their logs,
which by contract carry no tenant's data (see ``operations.jobs.models``). A tenant's rows stay
visible and writable only inside that tenant's scope.
"""

from __future__ import annotations

from tenants.rls import POLICY_NAME, EnableTenantRowLevelSecurity
from tenants.scoping import RLS_SETTING

_ALLOWED = f"string_to_array(NULLIF(current_setting('{RLS_SETTING}', true), ''), ',')::bigint[]"
CONDITION = f"tenant_id IS NULL OR tenant_id = ANY ({_ALLOWED})"


class EnableFleetAwareRowLevelSecurity(EnableTenantRowLevelSecurity):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(self._table(app_label, schema_editor, to_state))
        schema_editor.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        schema_editor.execute(f"DROP POLICY IF EXISTS {POLICY_NAME} ON {table}")
        schema_editor.execute(
            f"CREATE POLICY {POLICY_NAME} ON {table} USING ({CONDITION}) WITH CHECK ({CONDITION})"
        )

    def describe(self):
        return f"Enable forced row-level security (fleet rows admitted) on {self.model_name}"

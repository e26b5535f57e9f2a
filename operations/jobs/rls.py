"""Row-level security for job tables, whose fleet rows have no tenant.

Same as ``tenants.rls.EnableTenantRowLevelSecurity`` (enabled, forced, one policy) except that a
row with a NULL ``tenant_id`` is admitted too: such rows are fleet-wide runs and their logs,
which by contract carry no tenant's data (see ``operations.jobs.models``). A tenant's rows stay
visible and writable only inside that tenant's scope.
"""

from __future__ import annotations

from tenants.rls import ALLOWED_TENANT_IDS, EnableTenantRowLevelSecurity

CONDITION = f"tenant_id IS NULL OR tenant_id = ANY ({ALLOWED_TENANT_IDS})"


class EnableFleetAwareRowLevelSecurity(EnableTenantRowLevelSecurity):
    condition = CONDITION

    def describe(self):
        return f"Enable forced row-level security (fleet rows admitted) on {self.model_name}"

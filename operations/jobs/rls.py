"""Row-level security for job tables, whose fleet rows have no tenant.

Same as ``tenants.rls.EnableTenantRowLevelSecurity`` (enabled, forced, one policy) except that a
row with a NULL ``tenant_id`` is admitted too: such rows are fleet-wide runs and their logs,
which by contract carry no tenant's data (see ``operations.jobs.models``). A tenant's rows stay
visible and writable only inside that tenant's scope.
"""

from __future__ import annotations

from tenants.rls import TENANT_OR_SHARED_CONDITION, EnableTenantRowLevelSecurity

CONDITION = TENANT_OR_SHARED_CONDITION


class EnableFleetAwareRowLevelSecurity(EnableTenantRowLevelSecurity):
    condition = CONDITION

    def describe(self):
        return f"Enable forced row-level security (fleet rows admitted) on {self.model_name}"

"""PostgreSQL: row-level security under the scan, and two scans of one tenant at once."""

from __future__ import annotations

import pytest

from operations.optimisation.models import Recommendation
from tenants.scoping import tenant_scope
from tests.concurrency import run_together
from tests.conftest import requires_postgres
from tests.inventory.estate import make_gpu_node
from tests.optimisation.helpers import feed_gpu, scan

pytestmark = requires_postgres


@pytest.mark.django_db
def test_row_level_security_hides_other_tenants_recommendations(tenant_a, tenant_b):
    for tenant in (tenant_a, tenant_b):
        feed_gpu(tenant, make_gpu_node(tenant, hostname="idle-01"), utilisation=1)
        scan(tenant)
    with tenant_scope(tenant_a.id):
        # Past the application's filter, the database still shows only A's rows.
        visible = set(Recommendation.objects.unscoped().values_list("tenant_id", flat=True))
    assert visible == {tenant_a.id}


@pytest.mark.django_db(transaction=True)
def test_two_scans_of_one_tenant_at_once_make_one_row(tenant_a):
    feed_gpu(tenant_a, make_gpu_node(tenant_a, hostname="idle-01"), utilisation=1)
    results = run_together(2, lambda _index: scan(tenant_a))
    assert sorted(r["created"] for r in results) == [0, 1]
    with tenant_scope(tenant_a.id):
        assert Recommendation.objects.count() == 1

from __future__ import annotations

import pytest

from tenants import services as tenant_services


@pytest.fixture
def tenant_a(tenant_a):
    """Tenant A keeps personal data in the EU."""
    return tenant_services.tenant_update(tenant=tenant_a, data_residency="EU")


# The job engine's fixtures: messages recorded instead of sent, eager tasks, on-commit runs.
from tests.jobs.conftest import committed, eager, sent  # noqa: E402,F401

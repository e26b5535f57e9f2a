from __future__ import annotations

import pytest

from tenants import services as tenant_services
from tenants.models import MspRole, TenantRole
from tests.conftest import Actor
from tests.factories import make_member, make_staff, make_token


@pytest.fixture
def tenant_a(tenant_a):
    """Tenant A keeps personal data in the EU."""
    return tenant_services.tenant_update(tenant=tenant_a, data_residency="EU")


@pytest.fixture
def member_a(tenant_a):
    user = make_member(tenant_a, TenantRole.MEMBER, username="acme-member")
    return Actor(user, make_token(user))


@pytest.fixture
def viewer_a(tenant_a):
    user = make_member(tenant_a, TenantRole.VIEWER, username="acme-viewer")
    return Actor(user, make_token(user))


@pytest.fixture
def analyst_a(tenant_a):
    user = make_staff(tenant_a, role=MspRole.ANALYST, username="analyst-a")
    return Actor(user, make_token(user))


# The job engine's fixtures: messages recorded instead of sent, eager tasks, on-commit runs.
from tests.jobs.conftest import committed, eager, sent  # noqa: E402,F401

from __future__ import annotations

import pytest

from tenants.models import MspRole
from tests.conftest import Actor
from tests.factories import make_staff, make_token


@pytest.fixture
def engineer_b(tenant_b):
    user = make_staff(tenant_b, role=MspRole.ENGINEER, username="eng-b")
    return Actor(user, make_token(user))

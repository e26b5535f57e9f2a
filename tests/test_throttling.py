import uuid

import pytest

from msp.api.throttling import PerTokenRateThrottle
from tests.conftest import Actor
from tests.factories import make_token


@pytest.fixture
def three_a_minute(monkeypatch):
    monkeypatch.setattr(PerTokenRateThrottle, "THROTTLE_RATES", {"token": "3/minute"})
    # Fresh buckets: ids repeat across rolled-back tests, and the cache outlives them.
    fresh = f"throttle_{uuid.uuid4().hex}_%(scope)s_%(ident)s"
    monkeypatch.setattr(PerTokenRateThrottle, "cache_format", fresh)


def test_each_token_has_its_own_bucket(three_a_minute, admin_a):
    url = "/api/v1/tenants/acme/members/"
    assert [admin_a.client.get(url).status_code for _ in range(3)] == [200, 200, 200]
    limited = admin_a.client.get(url)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "throttled"
    assert int(limited["Retry-After"]) > 0
    second_token = Actor(admin_a.user, make_token(admin_a.user))
    assert second_token.client.get(url).status_code == 200

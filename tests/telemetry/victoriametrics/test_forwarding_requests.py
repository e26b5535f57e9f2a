"""What a forwarded ingest request costs Groundwork: the token with its tenant and role (one
query), nothing else in the database (no transaction, no tenant scope); it stays as strict as
any API request (a revoked token is refused at once, the ingest throttle applies); and the
client's one pooled session per process still honours the proxy environment, read once."""

from __future__ import annotations

import datetime as dt
import socket
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from msp.api.throttling import PerTokenRateThrottle
from operations.telemetry.backends import victoriametrics
from tenants import services as tenant_services
from tenants.models import ApiToken
from tests.telemetry.remote_write_payloads import (
    from_exposition,
    remote_write,
    snappy,
    write_request,
)
from tests.telemetry.test_prometheus import SCRAPE, push

pytestmark = pytest.mark.django_db


def _scrape_query() -> str:
    return f"?ts={int((timezone.now() - dt.timedelta(minutes=1)).timestamp())}"


def _remote_write_body() -> bytes:
    moment = timezone.now() - dt.timedelta(minutes=1)
    return snappy(write_request(from_exposition(SCRAPE, int(moment.timestamp() * 1000))))


ROUTES = {
    "prometheus": lambda actor, tenant: push(actor, tenant, SCRAPE, query=_scrape_query()),
    "remote-write": lambda actor, tenant: remote_write(actor, tenant.slug, _remote_write_body()),
}
ACCEPTED = {"prometheus": 202, "remote-write": 204}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_a_forwarded_request_reads_the_token_and_its_role_in_one_query(
    vm, admin_a, tenant_a, route
):
    send = ROUTES[route]
    assert send(admin_a, tenant_a).status_code == ACCEPTED[route]  # last-used time written
    with CaptureQueriesContext(connection) as queries:
        response = send(admin_a, tenant_a)
    assert response.status_code == ACCEPTED[route], response.content
    statements = [query["sql"] for query in queries.captured_queries]
    # No BEGIN/SAVEPOINT, no set_config of the tenant scope, no separate role read.
    assert len(statements) == 1, statements
    assert '"tenants_apitoken"' in statements[0].split(" WHERE ")[0]
    assert '"tenants_membership"' in statements[0].split(" WHERE ")[0]


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_a_revoked_token_is_refused_at_once_and_nothing_is_forwarded(
    vm, settings, admin_a, tenant_a, route
):
    send = ROUTES[route]
    assert send(admin_a, tenant_a).status_code == ACCEPTED[route]
    stored = len(vm.export(f'{{groundwork="{settings.TELEMETRY_INSTANCE}"}}'))
    tenant_services.token_revoke(token=ApiToken.objects.get(user=admin_a.user))
    response = send(admin_a, tenant_a)
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]
    assert len(vm.export(f'{{groundwork="{settings.TELEMETRY_INSTANCE}"}}')) == stored


def test_forwarding_keeps_the_ingest_throttle(vm, monkeypatch, admin_a, tenant_a):
    monkeypatch.setattr(PerTokenRateThrottle, "THROTTLE_RATES", {"ingest": "2/minute"})
    fresh = f"throttle_{uuid.uuid4().hex}_%(scope)s_%(ident)s"
    monkeypatch.setattr(PerTokenRateThrottle, "cache_format", fresh)
    codes = [ROUTES["remote-write"](admin_a, tenant_a).status_code for _ in range(3)]
    assert codes == [204, 204, 429]


def test_one_session_per_process_made_again_after_a_fork(monkeypatch):
    client = victoriametrics.VictoriaMetricsClient(
        insert_url="http://127.0.0.1:1", select_url="http://127.0.0.1:1", timeout=1
    )
    session = client._session
    assert client._session is session
    monkeypatch.setattr(victoriametrics.os, "getpid", lambda: -1)  # as in a forked worker
    assert client._session is not session


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_proxy_environment_is_still_honoured(vm, monkeypatch, admin_a, tenant_a):
    # A proxy where nothing listens: a forward through it cannot reach the store (503).
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setattr(victoriametrics, "_clients", {})  # a client made after the change
    response = ROUTES["remote-write"](admin_a, tenant_a)
    assert response.status_code == 503, response.content

"""Keep serving through a Redis outage: the app's cache and broker on a Redis of the test's
own, which the test stops and starts again (a real server, not a mock)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest
import redis
from django.contrib.sessions.models import Session
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

import tests.jobs.kinds  # noqa: F401 - registers the test job kinds
from msp.api.throttling import PerTokenRateThrottle, throttle_mode, throttle_mode_reset
from operations.incidents.models import IncidentStatus
from operations.jobs.models import JobDispatch
from operations.jobs.outbox import outbox_drain
from tenants.models import MspRole, TenantRole
from tenants.scoping import tenant_scope
from tests.factories import PASSWORD, login_verified, make_member, make_staff, make_token
from tests.incidents.factories import make_incident
from tests.inventory.estate import make_gpu_node
from tests.jobs.broker import broker_at
from tests.telemetry.helpers import telemetry_route_calls
from tests.tenants.test_mfa import code_for, password_sign_in

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]

START_TIMEOUT = 20


def _free_port() -> int:
    # Each xdist worker probes a share of the range of its own (gw0 6390, 6392, ...; gw1 6391,
    # ...): two workers never start a server on the same port.
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    for port in range(6390, 6400)[worker::workers]:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    pytest.skip("no free port in 6390-6399 for a private redis-server")


class PrivateRedis:
    """A redis-server of the test's own, without persistence: a restart comes back empty."""

    def __init__(self, tmp_path):
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tmp_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # a readiness wait, not an assertion on speed
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=START_TIMEOUT)
        self.process = None

    def queue_length(self, queue: str) -> int:
        return redis.Redis.from_url(self.url).llen(queue)


@pytest.fixture
def own_redis(tmp_path, settings):
    server = PrivateRedis(tmp_path)
    server.start()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": server.url,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    throttle_mode_reset()
    try:
        with broker_at(server.url, {}):
            yield server
    finally:
        server.stop()
        throttle_mode_reset()


@pytest.fixture
def member(tenant_a):
    return make_member(tenant_a, TenantRole.MEMBER, username="acme-member")


def test_api_ingest_and_sign_in_keep_working_while_redis_is_down_and_queued_work_is_sent_after(
    own_redis, admin_a, tenant_a, member, client, caplog, django_capture_on_commit_callbacks
):
    node = make_gpu_node(tenant_a, hostname="acme-gpu-01")
    telemetry = telemetry_route_calls(admin_a, tenant_a)
    members = f"/api/v1/tenants/{tenant_a.slug}/members/"
    assert admin_a.client.get(members).status_code == 200  # the shared cache answers
    own_redis.stop()
    caplog.set_level(logging.WARNING, logger="msp.api.throttling")

    # Reads.
    for _ in range(3):
        response = admin_a.client.get(members)
        assert response.status_code == 200, response.content

    # A write whose work goes through the outbox: the row waits for the broker.
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_a.client.post(
            f"/api/v1/tenants/{tenant_a.slug}/jobs/", {"kind": "noop", "parameters": {}}
        )
    assert response.status_code == 201, response.content
    assert JobDispatch.objects.count() == 1

    # Telemetry ingest.
    ts = (timezone.now() - dt.timedelta(minutes=1)).replace(microsecond=0).isoformat()
    sample = {"resource": f"compute:{node.hostname}", "metric": "gpu_utilization", "ts": ts}
    response = admin_a.client.post(
        f"/api/v1/tenants/{tenant_a.slug}/telemetry/samples",
        {"samples": [{**sample, "value": 42.0}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["inserted"] == 1

    # Remote write (its own throttle bucket, counted per process now), a node's GPUs and one
    # GPU's series.
    stored = telemetry["remote-write"]()
    assert stored.status_code == 204, stored.content
    assert stored["X-Groundwork-Inserted"] == stored["X-Groundwork-Received"] != "0"
    for name in ("gpus", "series-of-a-gpu"):
        response = telemetry[name]()
        assert response.status_code == 200, (name, response.content)
    assert len(telemetry["gpus"]().json()["results"]) == 1
    assert [p["value"] for p in telemetry["series-of-a-gpu"]().json()["points"]] == [50.0]

    # A client user's portal sign-in (django-axes counts in the database, sessions live there).
    response = client.post("/portal/login/", {"username": member.username, "password": PASSWORD})
    assert response.status_code == 302, response.content
    assert Session.objects.filter(session_key=client.session.session_key).exists()
    assert client.get(f"/portal/{tenant_a.slug}/").status_code == 200

    # Throttling fell back to per-process counting, said so once, and /healthz names it all.
    switches = [r for r in caplog.records if "shared cache is unreachable" in r.getMessage()]
    assert len(switches) == 1
    assert throttle_mode()["mode"] == "local"
    health = client.get("/healthz")
    assert health.status_code == 503
    checks = health.json()["checks"]
    assert checks["broker"]["ok"] is False
    assert checks["cache"]["ok"] is False
    assert checks["cache"]["throttling"] == "local"
    assert checks["database"]["ok"] is True

    # Redis is back: the drain (beat runs it every few seconds) sends what waited.
    own_redis.start()
    result = outbox_drain(include_waiting=True)
    assert (result.sent, result.pending) == (1, 0), result.error
    assert own_redis.queue_length("jobs") == 1
    assert client.get("/healthz").status_code == 200


def test_staff_sign_in_with_password_and_authenticator_code_works_while_redis_is_down(
    own_redis, tenant_a, client
):
    engineer = make_staff(tenant_a, role=MspRole.ENGINEER, username="eng-outage")
    device = TOTPDevice.objects.create(user=engineer, name="phone", confirmed=True)
    own_redis.stop()

    login = password_sign_in(client, engineer, "/admin/login/", next_url="/admin/")
    verify = client.get(login["Location"])
    assert verify.status_code == 302
    verified = client.post(verify["Location"], {"code": code_for(device), "next": "/admin/"})

    assert verified.status_code == 302, verified.content
    assert verified["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get(f"/portal/{tenant_a.slug}/").status_code == 200


def test_throttling_still_limits_per_process_while_redis_is_down(own_redis, admin_a, monkeypatch):
    monkeypatch.setattr(PerTokenRateThrottle, "THROTTLE_RATES", {"token": "3/minute"})
    fresh = f"throttle_{uuid.uuid4().hex}_%(scope)s_%(ident)s"  # ids repeat across tests
    monkeypatch.setattr(PerTokenRateThrottle, "cache_format", fresh)
    own_redis.stop()
    members = "/api/v1/tenants/acme/members/"
    statuses = [admin_a.client.get(members).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_throttling_returns_to_the_shared_cache_when_redis_answers_again(
    own_redis, admin_a, monkeypatch, caplog
):
    monkeypatch.setattr("msp.api.throttling.SHARED_CACHE_RETRY_SECONDS", 0)  # retry every call
    caplog.set_level(logging.WARNING, logger="msp.api.throttling")
    members = "/api/v1/tenants/acme/members/"
    own_redis.stop()
    assert [admin_a.client.get(members).status_code for _ in range(3)] == [200, 200, 200]
    assert throttle_mode()["mode"] == "local"

    own_redis.start()
    assert admin_a.client.get(members).status_code == 200
    assert throttle_mode() == {"mode": "shared"}
    messages = [r.getMessage() for r in caplog.records if r.name == "msp.api.throttling"]
    assert len(messages) == 2  # one line as the outage starts, one as it ends
    assert "unreachable" in messages[0]
    assert "answers again" in messages[1]


def test_the_console_pages_and_incident_workflow_keep_working_while_redis_is_down(
    own_redis, tenant_a, client, django_capture_on_commit_callbacks
):
    """The pages built on the cache and the broker (the fleet dashboard's cached columns, the
    tenant 360, readiness with its rescore, an engineer acknowledging an incident, which
    writes events for delivery) answer with Redis down, and the queued work waits to be sent."""
    engineer = make_staff(tenant_a, role=MspRole.ENGINEER, username="eng-console-outage")
    login_verified(client, engineer)
    incident = make_incident(tenant_a)
    own_redis.stop()

    fleet = client.get("/portal/")
    assert fleet.status_code == 200
    assert tenant_a.name in fleet.content.decode()
    assert client.get(f"/portal/{tenant_a.slug}/360/").status_code == 200
    assert client.get(f"/portal/{tenant_a.slug}/readiness/").status_code == 200

    acknowledged = client.post(
        f"/portal/{tenant_a.slug}/incidents/{incident.number}/act/acknowledge/"
    )
    assert acknowledged.status_code == 302, acknowledged.content
    with tenant_scope(tenant_a.id):  # row-level security on PostgreSQL
        incident.refresh_from_db()
    assert incident.status == IncidentStatus.ACKNOWLEDGED

    token = make_token(engineer)
    with django_capture_on_commit_callbacks(execute=True):
        rescore = client.post(
            f"/api/v1/tenants/{tenant_a.slug}/readiness/scores/rescore/",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
    assert rescore.status_code == 202, rescore.content
    assert JobDispatch.objects.count() == 1  # waits in the outbox for the broker

    own_redis.start()
    result = outbox_drain(include_waiting=True)
    assert (result.sent, result.pending) == (1, 0), result.error

"""PostgreSQL going away: a clear 503 with Retry-After, /healthz names the database, and the
first request after it returns is served without a restart.

The app reaches the shared PostgreSQL through a TCP proxy of the test's own; stopping the proxy
cuts every connection and refuses new ones, as a server restart or a failover does. The shared
server itself is never touched.
"""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest
from django.db import close_old_connections, connection
from django.test import Client

from tenants.models import MspRole
from tests.conftest import requires_postgres
from tests.factories import login_verified, make_staff
from tests.telemetry.helpers import telemetry_route_calls

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the database server; ``stop`` cuts it, ``start`` restores."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
            listener, self._listener = self._listener, None
        for sock in [listener, *sockets]:
            if sock is None:
                continue
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # stopped
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def database_through_proxy():
    settings = connection.settings_dict
    original = (settings["HOST"], settings["PORT"])
    proxy = TcpProxy((original[0] or "127.0.0.1", int(original[1] or 5432)))
    proxy.start()
    connection.close()
    settings["HOST"], settings["PORT"] = "127.0.0.1", str(proxy.port)
    try:
        yield proxy
    finally:
        connection.close()
        settings["HOST"], settings["PORT"] = original
        proxy.stop()


def next_request() -> None:
    # What Django's request_started/finished signals do between real requests (the test
    # client leaves them out): drop a connection that errored.
    close_old_connections()


def test_the_api_and_pages_answer_503_while_the_database_is_away_and_recover_after(
    database_through_proxy, admin_a, tenant_a, client
):
    members = f"/api/v1/tenants/{tenant_a.slug}/members/"
    overview = f"/portal/{tenant_a.slug}/"
    telemetry = telemetry_route_calls(admin_a, tenant_a)
    assert admin_a.client.get(members).status_code == 200
    for name in ("gpus", "series-of-a-gpu"):
        assert telemetry[name]().status_code == 200, name
    client.force_login(admin_a.user)
    assert client.get(overview).status_code == 200

    # Answer as a server would, instead of re-raising the view's error into the test.
    probe = Client(raise_request_exception=False)
    admin_a.client.raise_request_exception = client.raise_request_exception = False
    database_through_proxy.stop()
    next_request()
    response = admin_a.client.get(members)
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "service_unavailable"

    next_request()
    write = admin_a.client.post(
        f"/api/v1/tenants/{tenant_a.slug}/jobs/", {"kind": "noop", "parameters": {}}
    )
    assert write.status_code == 503, write.content

    for name, call in telemetry.items():
        next_request()
        response = call()
        assert response.status_code == 503, (name, response.content)
        assert response["Retry-After"] == "5", name
        assert response.json()["error"]["code"] == "service_unavailable", name

    next_request()
    page = client.get(overview)
    assert page.status_code == 503
    assert "cannot reach its database" in page.content.decode()

    next_request()
    health = probe.get("/healthz")  # a load balancer's probe: no session
    assert health.status_code == 503
    assert health.json()["checks"]["database"]["ok"] is False

    database_through_proxy.start()
    next_request()
    assert admin_a.client.get(members).status_code == 200
    next_request()
    stored = telemetry["remote-write"]()
    assert stored.status_code == 204, stored.content
    # The write refused in the outage left nothing behind: every sample is new now.
    assert stored["X-Groundwork-Inserted"] == stored["X-Groundwork-Received"] != "0"
    for name in ("gpus", "series-of-a-gpu"):
        next_request()
        assert telemetry[name]().status_code == 200, name
    next_request()
    assert client.get(overview).status_code == 200
    next_request()
    health = probe.get("/healthz")
    assert health.status_code == 200, health.content
    assert health.json()["checks"]["database"]["ok"] is True


def test_the_console_and_report_pages_answer_503_while_the_database_is_away_and_recover_after(
    database_through_proxy, tenant_a, client
):
    admin = make_staff(role=MspRole.ADMIN, username="msp-admin-outage")
    login_verified(client, admin)
    pages = [
        "/portal/",  # the fleet dashboard
        f"/portal/{tenant_a.slug}/360/",
        f"/portal/{tenant_a.slug}/readiness/",
        f"/portal/{tenant_a.slug}/reports/",
        f"/portal/{tenant_a.slug}/notifications/",
    ]
    for page in pages:
        assert client.get(page).status_code == 200, page

    client.raise_request_exception = False
    database_through_proxy.stop()
    for page in pages:
        next_request()
        response = client.get(page)
        assert response.status_code == 503, page
        assert "cannot reach its database" in response.content.decode()

    database_through_proxy.start()
    for page in pages:
        next_request()
        assert client.get(page).status_code == 200, page

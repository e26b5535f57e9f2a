"""End to end: Debian's vmagent (and Prometheus, where installed) scrapes a dcgm-exporter text
and remote-writes it to Groundwork.

A static dcgm-exporter scrape is served by a local ``http.server``; the agent scrapes it every
second and pushes with the tenant's ingest token to a live Groundwork server (pytest-django's
``live_server``), configured as the README shows. What arrives must be stored exactly as the
same scrape sent as text. Each agent is skipped where it is not installed (``apt-get install
victoria-metrics`` / ``prometheus``).
"""

from __future__ import annotations

import contextlib
import http.server
import shutil
import socket
import subprocess
import threading
import time
from collections import defaultdict

import pytest

from tenants.models import TenantRole
from tests.conftest import Actor
from tests.factories import make_member, make_token
from tests.inventory.estate import make_gpu_node
from tests.telemetry.helpers import minutes_ago, stored
from tests.telemetry.test_prometheus import IDLE_UUIDS, SAT_UUIDS, SCRAPE, push

#: How long an agent gets to scrape and deliver (a few seconds on a quiet machine).
DELIVERY_LIMIT_SECONDS = 90
#: The families Groundwork ingests, as the README's write_relabel_configs keeps them.
DCGM_KEEP_REGEX = (
    "DCGM_FI_DEV_(GPU_UTIL|FB_USED|FB_FREE|POWER_USAGE|GPU_TEMP|XID_ERRORS)"
    "|DCGM_FI_PROF_(GR_ENGINE_ACTIVE|PIPE_TENSOR_ACTIVE)"
)


class _Exporter(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = SCRAPE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def exporter():
    """A dcgm-exporter stand-in on a free loopback port: its address."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _vmagent(tmp_path, *, target: str, url: str, token: str) -> list[str]:
    config = tmp_path / "scrape.yml"
    config.write_text(
        "scrape_configs:\n"
        "  - job_name: dcgm-exporter\n"
        "    scrape_interval: 1s\n"
        "    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    return [
        "vmagent",
        f"-promscrape.config={config}",
        f"-remoteWrite.url={url}",
        f"-remoteWrite.bearerToken={token}",
        f"-remoteWrite.tmpDataPath={tmp_path / 'queue'}",
        "-remoteWrite.flushInterval=1s",
        f"-httpListenAddr=127.0.0.1:{_free_port()}",
        "-loggerLevel=WARN",
    ]


def _prometheus(tmp_path, *, target: str, url: str, token: str) -> list[str]:
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: dcgm-exporter\n"
        "    static_configs:\n"
        f"      - targets: ['{target}']\n"
        "remote_write:\n"
        f"  - url: {url}\n"
        "    authorization:\n"
        f"      credentials: {token}\n"
        "    write_relabel_configs:\n"
        "      - source_labels: [__name__]\n"
        f"        regex: '{DCGM_KEEP_REGEX}'\n"
        "        action: keep\n"
        "    queue_config:\n"
        "      batch_send_deadline: 1s\n"
    )
    return [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{_free_port()}",
        "--log.level=warn",
    ]


AGENTS = {"vmagent": _vmagent, "prometheus": _prometheus}


@contextlib.contextmanager
def running_agent(name: str, tmp_path, **kwargs):
    command = AGENTS[name](tmp_path, **kwargs)
    command[0] = shutil.which(command[0])
    log = (tmp_path / "agent.log").open("w")
    process = subprocess.Popen(  # noqa: S603 (a fixed binary, our own arguments)
        command, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _by_time(tenant) -> dict:
    rows = defaultdict(dict)
    for kind, resource_id, metric, ts, value in stored(tenant):
        rows[ts][(kind, resource_id, metric)] = value
    return dict(rows)


@pytest.mark.parametrize(
    "agent",
    [
        pytest.param(
            name,
            marks=pytest.mark.skipif(shutil.which(name) is None, reason=f"{name} not installed"),
        )
        for name in AGENTS
    ],
)
def test_an_agent_remote_writes_a_scrape_stored_as_the_text_route_stores_it(
    agent, live_server, tenant_a, exporter, tmp_path
):
    make_gpu_node(tenant_a, hostname="acme-gpu-sat-01", gpu_count=4, gpu_uuids=SAT_UUIDS)
    make_gpu_node(tenant_a, hostname="acme-gpu-idle-01", gpu_uuids=IDLE_UUIDS)
    user = make_member(tenant_a, TenantRole.ADMIN, username="acme-agent")
    token = make_token(user, scopes=("ingest",))
    # The reference: the same scrape through the text route, dated 30 minutes ago.
    reference_ts = minutes_ago(30)
    query = f"?ts={int(reference_ts.timestamp())}"
    reference = push(Actor(user, make_token(user)), tenant_a, SCRAPE, query=query)
    assert reference.status_code == 200, reference.content
    expected = _by_time(tenant_a)[reference_ts]

    url = f"{live_server.url}/api/v1/tenants/{tenant_a.slug}/telemetry/remote-write"
    pushed = {}
    with running_agent(agent, tmp_path, target=exporter, url=url, token=token) as process:
        deadline = time.monotonic() + DELIVERY_LIMIT_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            pushed = {ts: rows for ts, rows in _by_time(tenant_a).items() if ts != reference_ts}
            if pushed:
                break
            time.sleep(0.5)
    log = (tmp_path / "agent.log").read_text()
    assert pushed, f"nothing arrived from {agent}; its log:\n{log[-3000:]}"
    for ts, rows in pushed.items():
        assert ts > reference_ts
        assert rows == expected, ts

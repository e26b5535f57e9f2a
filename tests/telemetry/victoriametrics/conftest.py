"""A real VictoriaMetrics for the backend's tests: Debian's ``victoria-metrics``, started once
per test session on a free port with a temporary ``-storageDataPath``; skipped when the binary
is not installed (``apt-get install victoria-metrics``; .ci/run installs it).

Each test gets a label value of its own (``TELEMETRY_INSTANCE``), so tests sharing the one
server never see each other's series even when the test database hands out the same tenant
ids again.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import time

import pytest
import requests
from django.test import override_settings

from operations.telemetry.backends.victoriametrics import VictoriaMetricsClient

BINARY = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
_instances = itertools.count(1)


class VictoriaMetrics:
    def __init__(self, url: str):
        self.url = url

    def flush(self) -> None:
        """Make what was written searchable now (VictoriaMetrics buffers fresh samples)."""
        requests.get(f"{self.url}/internal/force_flush", timeout=10).raise_for_status()

    def export(self, match: str) -> list[dict]:
        """Every stored series matching ``match``, as exported (for checking labels)."""
        self.flush()
        response = requests.post(f"{self.url}/api/v1/export", data={"match[]": match}, timeout=10)
        response.raise_for_status()
        return [json.loads(line) for line in response.text.splitlines() if line]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def victoria_metrics_server(tmp_path_factory):
    if not os.access(BINARY, os.X_OK):
        pytest.skip("victoria-metrics is not installed (apt-get install victoria-metrics)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(  # noqa: S603 - a fixed binary and arguments made here
        [
            BINARY,
            f"-storageDataPath={tmp_path_factory.mktemp('victoria-metrics')}",
            "-retentionPeriod=100y",
            f"-httpListenAddr=127.0.0.1:{port}",
            # What Groundwork needs of any VictoriaMetrics: re-sent samples count once, and
            # fresh samples are queryable at once.
            "-dedup.minScrapeInterval=1ms",
            "-search.latencyOffset=0s",
            "-loggerLevel=ERROR",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if process.poll() is not None:
                pytest.fail(f"victoria-metrics exited with {process.returncode}")
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("victoria-metrics did not answer /health within 10 s")
        yield VictoriaMetrics(url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _flushing(server: VictoriaMetrics) -> dict:
    """The client's writes, each followed by a flush of ``server``."""
    write = VictoriaMetricsClient.import_lines
    forward = VictoriaMetricsClient.forward

    def write_and_flush(self, body: bytes) -> None:
        write(self, body)
        server.flush()

    def forward_and_flush(self, *args, **kwargs) -> None:
        forward(self, *args, **kwargs)
        server.flush()

    return {"import_lines": write_and_flush, "forward": forward_and_flush}


@pytest.fixture
def vm(victoria_metrics_server, settings, monkeypatch):
    """Telemetry on the session's VictoriaMetrics, under a label value of this test's own.

    Every write is followed by a flush, so a test reads back what it wrote at once (what
    ``TELEMETRY_SEARCH_DELAY_SECONDS`` waits for in production); the write itself is real.
    """
    settings.TELEMETRY_BACKEND = "victoriametrics"
    settings.TELEMETRY_URL = victoria_metrics_server.url
    settings.TELEMETRY_INSTANCE = f"test-{os.getpid()}-{next(_instances)}"
    settings.TELEMETRY_SEARCH_DELAY_SECONDS = 0
    for name, method in _flushing(victoria_metrics_server).items():
        monkeypatch.setattr(VictoriaMetricsClient, name, method)
    return victoria_metrics_server


@pytest.fixture(scope="class")
def vm_for_the_class(victoria_metrics_server):
    """As ``vm``, one label value for a whole class: for series seeded once for the class. A
    test's own writes to VictoriaMetrics are not undone with its transaction: only a write that
    leaves the stored series as they were (a re-sent sample, deduplicated) belongs there."""
    with (
        override_settings(
            TELEMETRY_BACKEND="victoriametrics",
            TELEMETRY_URL=victoria_metrics_server.url,
            TELEMETRY_INSTANCE=f"test-{os.getpid()}-{next(_instances)}",
            TELEMETRY_SEARCH_DELAY_SECONDS=0,
        ),
        pytest.MonkeyPatch.context() as patch,
    ):
        for name, method in _flushing(victoria_metrics_server).items():
            patch.setattr(VictoriaMetricsClient, name, method)
        yield victoria_metrics_server

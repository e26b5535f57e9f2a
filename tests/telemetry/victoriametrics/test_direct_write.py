"""The MSP's own vmagent writes dcgm-exporter scrapes straight into VictoriaMetrics, labelled
``client="acme"``; Groundwork only reads them, mapping tenant ``acme`` to that label value
(``TELEMETRY_TENANT_LABEL=client``, ``TELEMETRY_TENANT_LABEL_VALUES=acme=acme``), as
docs/telemetry-backends.md shows. Skipped where vmagent is not installed."""

from __future__ import annotations

import datetime as dt
import math
import shutil
import time

import pytest
from django.utils import timezone

from operations.telemetry.forwarding import telemetry_gpus_discover
from operations.telemetry.metrics import ResourceKind
from operations.telemetry.prometheus import parse_exposition
from operations.telemetry.storage import sample_store
from tenants.scoping import tenant_scope
from tests.telemetry import test_prometheus, test_remote_write_agents
from tests.telemetry.helpers import url
from tests.telemetry.test_prometheus import SCRAPE
from tests.telemetry.test_remote_write_agents import DELIVERY_LIMIT_SECONDS, running_agent

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(shutil.which("vmagent") is None, reason="vmagent not installed"),
]
hosts = test_prometheus.hosts
exporter = test_remote_write_agents.exporter


def _vmagent_straight_to(vm, tmp_path, *, target: str, instance: str) -> list[str]:
    """vmagent as the docs configure it, writing to VictoriaMetrics (not to Groundwork)."""
    command = test_remote_write_agents._vmagent(
        tmp_path, target=target, url=f"{vm.url}/api/v1/write", token="unused"
    )
    command = [part for part in command if not part.startswith("-remoteWrite.bearerToken")]
    return [*command, "-remoteWrite.label=client=acme", f"-remoteWrite.label=groundwork={instance}"]


def test_groundwork_reads_what_the_msps_vmagent_writes_straight_into_victoria_metrics(
    vm, settings, monkeypatch, admin_a, tenant_a, tenant_b, hosts, exporter, tmp_path
):
    settings.TELEMETRY_TENANT_LABEL = "client"
    settings.TELEMETRY_TENANT_LABEL_VALUES = {tenant_a.slug: "acme"}
    sat, idle = hosts
    command = _vmagent_straight_to(
        vm, tmp_path, target=exporter, instance=settings.TELEMETRY_INSTANCE
    )
    monkeypatch.setitem(test_remote_write_agents.AGENTS, "vmagent-direct", lambda *a, **k: command)
    since = timezone.now() - dt.timedelta(minutes=5)
    wanted = [(ResourceKind.COMPUTE.value, sat.pk), (ResourceKind.COMPUTE.value, idle.pk)]
    reporting = []
    with running_agent("vmagent-direct", tmp_path) as process:
        deadline = time.monotonic() + DELIVERY_LIMIT_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            vm.flush()
            with tenant_scope(tenant_a.id):
                reporting = sample_store().resources_reporting(tenant_id=tenant_a.id, since=since)
            if all(key in reporting for key in wanted):
                break
            time.sleep(0.5)
    log = (tmp_path / "agent.log").read_text()
    assert all(key in reporting for key in wanted), f"nothing read; vmagent's log:\n{log[-3000:]}"

    # The GPUs are learned from the series (audited), the node is read as its GPUs' mean.
    with tenant_scope(tenant_a.id):
        assert telemetry_gpus_discover(tenant=tenant_a)["learned_gpus"] == 6
    series, _ignored = parse_exposition(SCRAPE)
    utilisation = [
        value
        for name, labels, value, _ts in series
        if name == "DCGM_FI_DEV_GPU_UTIL" and labels["Hostname"] == "acme-gpu-sat-01"
    ]
    response = admin_a.client.get(
        url(tenant_a, "series"),
        {"resource": "compute:acme-gpu-sat-01", "metric": "gpu_utilization", "step": "raw"},
    )
    assert response.status_code == 200, response.content
    points = response.json()["points"]
    assert points
    assert {point["value"] for point in points} == {math.fsum(utilisation) / len(utilisation)}
    response = admin_a.client.get(
        url(tenant_a, "series"),
        {"resource": "gpu:acme-gpu-sat-01/0", "metric": "gpu_utilization", "step": "raw"},
    )
    assert response.status_code == 200, response.content
    assert {point["value"] for point in response.json()["points"]} == {utilisation[0]}

    # B has a host of the same name with the same GPU UUIDs; the series are acme's only.
    with tenant_scope(tenant_b.id):
        assert sample_store().resources_reporting(tenant_id=tenant_b.id, since=since) == []

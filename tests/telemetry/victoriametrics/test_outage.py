"""VictoriaMetrics out of reach: the telemetry routes answer 503 in the one error format (not
a 500), and an ingest that could not be forwarded marks nothing for the rollup."""

from __future__ import annotations

import socket

import pytest

from tests.telemetry.helpers import dirty_hours, iso, minutes_ago, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def unreachable(settings):
    """VictoriaMetrics configured on a port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.TELEMETRY_BACKEND = "victoriametrics"
    settings.TELEMETRY_URL = f"http://127.0.0.1:{port}"
    settings.TELEMETRY_TIMEOUT_SECONDS = 2


def test_ingest_answers_503_and_marks_nothing(unreachable, admin_a, tenant_a, estate):
    sample = {
        "resource": "compute:acme-gpu-sat-01",
        "metric": "gpu_utilization",
        "ts": iso(minutes_ago(1)),
        "value": 3.0,
    }
    response = admin_a.client.post(url(tenant_a, "samples"), {"samples": [sample]}, format="json")
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "service_unavailable"
    assert dirty_hours(tenant_a) == set()


def test_series_answers_503(unreachable, admin_a, tenant_a, estate):
    response = admin_a.client.get(
        url(tenant_a, "series"),
        {"resource": "compute:acme-gpu-sat-01", "metric": "gpu_utilization", "step": "raw"},
    )
    assert response.status_code == 503, response.content
    assert response.json()["error"] == {
        "status": 503,
        "code": "service_unavailable",
        "message": "The telemetry store cannot be reached; try again shortly.",
    }


def test_forwarded_scrapes_answer_503(unreachable, admin_a, tenant_a, estate):
    from tests.telemetry.remote_write_payloads import remote_write, snappy, write_request
    from tests.telemetry.test_prometheus import push

    response = push(admin_a, tenant_a, 'DCGM_FI_DEV_GPU_UTIL{gpu="0",Hostname="h"} 1\n')
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "service_unavailable"
    body = snappy(write_request([({"__name__": "DCGM_FI_DEV_GPU_UTIL"}, [(1.0, 0)])]))
    response = remote_write(admin_a, tenant_a.slug, body)
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "service_unavailable"

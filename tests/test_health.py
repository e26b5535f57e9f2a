import pytest

from msp.celery import app


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["cache"] == {
        "ok": True,
        "backend": body["checks"]["cache"]["backend"],
        "throttling": "shared",
    }


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_is_unreachable(client, monkeypatch):
    # A real connection attempt to a port nothing listens on, not a mock.
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False
    assert response.json()["checks"]["database"]["ok"] is True


def test_healthz_over_plain_http_answers_in_https_mode_not_a_redirect(tmp_path):
    # A load balancer probes over plain HTTP: it must see 200 or 503, never 301.
    from tests.test_settings import _manage

    probe = (
        "from django.test import Client; c = Client(); "
        "print(c.get('/healthz').status_code, c.get('/api/v1/').status_code)"
    )
    result = _manage(
        "shell",
        "-c",
        probe,
        DJANGO_SETTINGS_MODULE="msp.settings",
        DJANGO_HTTPS="true",
        GROUNDWORK_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    health, other = result.stdout.split()[-2:]
    assert health in ("200", "503")
    assert other == "301"  # everything else still goes to HTTPS

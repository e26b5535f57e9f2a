"""Production settings are deployable; the OpenAPI schema is valid and warning-free."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="msp.settings",
        DATABASE_URL="postgres://groundwork@127.0.0.1:5432/groundwork",
        REDIS_URL="redis://127.0.0.1:6379/0",
        DJANGO_SECRET_KEY="x" * 20 + "-a-long-random-production-secret-value-0123456789",
        GROUNDWORK_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_embedded_default_needs_no_variables(tmp_path):
    result = _manage(
        "check", DJANGO_SETTINGS_MODULE="msp.settings", GROUNDWORK_VAR_DIR=str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "secret_key").exists()


def test_openapi_schema_validates_without_warnings(tmp_path):
    result = _manage(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(tmp_path / "schema.yaml"),
        DJANGO_SETTINGS_MODULE="msp.settings",
        GROUNDWORK_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "/api/v1/tenants/{tenant_slug}/members/" in (tmp_path / "schema.yaml").read_text()


def test_the_owner_url_needs_the_runtime_url(tmp_path):
    # An owner without a runtime role is a configuration mistake, not a silent SQLite install.
    result = _manage(
        "check",
        DJANGO_SETTINGS_MODULE="msp.settings",
        GROUNDWORK_VAR_DIR=str(tmp_path),
        DATABASE_OWNER_URL="postgres://groundwork@127.0.0.1:5432/groundwork",
    )
    assert result.returncode != 0
    assert "DATABASE_OWNER_URL needs DATABASE_URL" in result.stderr


def _email_settings(**env: str) -> dict:
    script = (
        "from django.conf import settings as s; "
        "print('|'.join(map(str, (s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, "
        "s.EMAIL_USE_TLS, s.EMAIL_HOST_USER))))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EMAIL_")}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "msp.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    backend, host, port, tls, user = result.stdout.strip().splitlines()[-1].split("|")
    return {"backend": backend, "host": host, "port": port, "tls": tls, "user": user}


def test_email_goes_to_the_console_unless_configured(tmp_path):
    configured = _email_settings(GROUNDWORK_VAR_DIR=str(tmp_path))
    assert configured["backend"] == "django.core.mail.backends.console.EmailBackend"


def test_email_url_selects_smtp(tmp_path):
    configured = _email_settings(
        GROUNDWORK_VAR_DIR=str(tmp_path), EMAIL_URL="smtp+tls://mailer:secret@smtp.example.com:587"
    )
    assert configured == {
        "backend": "django.core.mail.backends.smtp.EmailBackend",
        "host": "smtp.example.com",
        "port": "587",
        "tls": "True",
        "user": "mailer",
    }


def test_email_host_selects_smtp_too(tmp_path):
    configured = _email_settings(
        GROUNDWORK_VAR_DIR=str(tmp_path), EMAIL_HOST="mail.example.com", EMAIL_HOST_USER="gw"
    )
    assert configured["backend"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (configured["host"], configured["port"], configured["tls"]) == (
        "mail.example.com",
        "587",
        "True",
    )

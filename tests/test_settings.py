"""Production settings are deployable; the OpenAPI schema is valid and warning-free."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import global_settings
from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parent.parent
DJANGO_DEFAULTS = vars(global_settings)


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


def test_the_owner_url_needs_the_runtime_url(monkeypatch, tmp_path):
    # An owner without a runtime role is a configuration mistake, not a silent SQLite install.
    # The settings module run in this process, as email_settings does: it refuses to load,
    # which is all a ``manage.py check`` in a subprocess showed, at ~2 s more.
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("GROUNDWORK_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_OWNER_URL", "postgres://groundwork@127.0.0.1:5432/groundwork")
    with pytest.raises(ImproperlyConfigured, match="DATABASE_OWNER_URL needs DATABASE_URL"):
        runpy.run_path(str(ROOT / "msp" / "settings.py"))


@pytest.fixture
def email_settings(monkeypatch, tmp_path):
    """The e-mail settings msp.settings makes of the given environment: the module is run in
    this process on a clean EMAIL_* environment (it is plain Python reading variables; a whole
    ``manage.py`` in a subprocess per case cost ~2 s and proved no more)."""

    def read(**env: str) -> dict:
        for name in [name for name in os.environ if name.startswith("EMAIL_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("GROUNDWORK_VAR_DIR", str(tmp_path))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        s = runpy.run_path(str(ROOT / "msp" / "settings.py"))
        names = ("EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_USE_TLS", "EMAIL_HOST_USER")
        # As text, as the subprocess printed them: defaults Django fills in stand as its own.
        return dict(
            zip(
                ("backend", "host", "port", "tls", "user"),
                (str(s.get(name, DJANGO_DEFAULTS[name])) for name in names),
                strict=True,
            )
        )

    return read


def test_email_goes_to_the_console_unless_configured(email_settings):
    configured = email_settings()
    assert configured["backend"] == "django.core.mail.backends.console.EmailBackend"


def test_email_url_selects_smtp(email_settings):
    configured = email_settings(EMAIL_URL="smtp+tls://mailer:secret@smtp.example.com:587")
    assert configured == {
        "backend": "django.core.mail.backends.smtp.EmailBackend",
        "host": "smtp.example.com",
        "port": "587",
        "tls": "True",
        "user": "mailer",
    }


def test_email_host_selects_smtp_too(email_settings):
    configured = email_settings(EMAIL_HOST="mail.example.com", EMAIL_HOST_USER="gw")
    assert configured["backend"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (configured["host"], configured["port"], configured["tls"]) == (
        "mail.example.com",
        "587",
        "True",
    )

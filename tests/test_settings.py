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

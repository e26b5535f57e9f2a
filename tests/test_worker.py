"""A real Celery worker consumes from the configured broker (filesystem, or Redis in CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def worker():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "msp",
            "worker",
            "-Q",
            "maintenance,jobs",
            "--concurrency",
            "1",
            "--pool",
            "solo",
            "-l",
            "warning",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield process
    # SIGKILL: the test is over, and a warm shutdown (tested in test_worker_supervisor) would
    # wait out the idle worker's 2 s drain first.
    process.kill()
    process.wait(timeout=30)


def test_the_diagnostic_task_runs_on_a_real_worker(worker, capsys):
    # The command waits (bounded) for the worker's answer through the shared cache, and
    # fails if none comes.
    call_command("diagnose_worker", "--timeout", "90")
    assert worker.poll() is None
    assert "ran the diagnostic task" in capsys.readouterr().out

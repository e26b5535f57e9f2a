"""The demo's worker under ``manage.py supervise_worker``: a worker that dies is started again,
and SIGTERM stops the supervisor and its worker. Real workers (Redis when REDIS_URL is set, the
filesystem transport otherwise); every wait is a bounded poll.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from operations.jobs import services
from operations.jobs.models import JobStatus
from tests.factories import TenantFactory
from tests.jobs.conftest import reload
from tests.jobs.worker import STOP_TIMEOUT, celery_worker_pid, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def runs_on_a_worker(pool, tenant, what: str) -> None:
    run = services.job_submit(tenant=tenant, kind="noop")
    wait_until(
        lambda: reload(run).status == JobStatus.SUCCEEDED,
        what=what,
        pool=pool,
        # What beat's recover_runs does in production: a message that Redis handed to the
        # killed worker's pending BRPOP in the instant before it saw the socket close is lost
        # with it; the re-send puts it back (the claim makes a duplicate harmless).
        between=lambda: services.job_runs_resend_queued(older_than=5),
    )


def test_a_killed_worker_is_started_again_and_sigterm_stops_supervisor_and_worker(pool):
    tenant = TenantFactory(name="Phoenix Ltd", slug="phoenix")
    with pool.broker():
        supervised = pool.start(supervised=True)
        runs_on_a_worker(pool, tenant, "a job on the first worker")
        first = celery_worker_pid(supervised.process.pid)
        assert first is not None, pool.logs()

        # What kombu's "Unrecoverable error" after a broker loss amounts to: the worker is gone.
        os.kill(first, signal.SIGKILL)
        wait_until(
            lambda: (
                celery_worker_pid(supervised.process.pid) not in (None, first)
                and supervised.log().count(" ready.") == 2
            ),
            what="the supervisor to start a second worker",
            pool=pool,
        )
        runs_on_a_worker(pool, tenant, "a job submitted after the worker was killed")
        second = celery_worker_pid(supervised.process.pid)
        assert second not in (None, first), pool.logs()
        assert "worker exited unexpectedly (exit code -9)" in supervised.log()

        supervised.process.send_signal(signal.SIGTERM)
        supervised.process.wait(timeout=STOP_TIMEOUT)
    # The supervisor reaped its worker before exiting: no such process is left.
    assert not Path(f"/proc/{second}").exists(), pool.logs()
    assert "worker: Warm shutdown" in supervised.log()

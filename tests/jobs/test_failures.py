"""Failure behaviour with real worker subprocesses (Redis when REDIS_URL is set, the filesystem
transport otherwise), against a test database the workers share. No timed assertions: every
wait is a bounded poll.
"""

from __future__ import annotations

import os
import signal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from operations.jobs import services
from operations.jobs.models import JobDispatch, JobRun, JobStatus
from tenants.models import TenantRole
from tenants.scoping import tenant_scope
from tests.conftest import Actor
from tests.factories import TenantFactory, make_member, make_token
from tests.jobs.broker import lose_waiting_messages
from tests.jobs.conftest import logs_of, reload
from tests.jobs.kinds import effects_of
from tests.jobs.worker import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def status_of(run) -> str:
    return reload(run).status


def test_a_worker_killed_mid_job_is_replaced_and_the_effect_happens_once(pool, tmp_path):
    tenant = TenantFactory(name="Killjoy Ltd", slug="killjoy")
    release, started = tmp_path / "release", tmp_path / "started"
    with pool.broker():
        first = pool.start()
        run = services.job_submit(
            tenant=tenant,
            kind="test_countable",
            parameters={"release_file": str(release), "started_file": str(started)},
        )
        # Mid-job: effect 1 committed, the job now waits for the release file.
        wait_until(
            lambda: started.exists() and effects_of(run.pk) == [f"{run.pk}:1"],
            what="the first attempt to commit effect 1 and wait",
            pool=pool,
        )
        first.kill()
        assert status_of(run) == JobStatus.RUNNING  # the dead worker left it running

        release.touch()
        pool.start()
        # Beat's recovery task runs every minute in production; here, between polls.
        wait_until(
            lambda: status_of(run) == JobStatus.SUCCEEDED,
            what="the run to be taken over and finished by the second worker",
            between=services.job_runs_recover,
            pool=pool,
        )
    run = reload(run)
    assert run.attempts == 2
    assert effects_of(run.pk) == [f"{run.pk}:1", f"{run.pk}:2"]  # once each, never twice
    assert run.result == {"effects": 2, "attempt": 2}
    assert "Attempt 2 started (the previous attempt did not finish)." in logs_of(run)


def test_with_the_broker_down_the_run_is_stored_and_runs_once_it_is_back(pool):
    tenant = TenantFactory(name="Offline Inc", slug="offline")
    admin = make_member(tenant, TenantRole.ADMIN, username="offline-admin")
    actor = Actor(admin, make_token(admin))

    with pool.broker(), pool.broker_down():
        response = actor.client.post(
            f"/api/v1/tenants/{tenant.slug}/jobs/", {"kind": "test_countable"}
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued"
    dispatch = JobDispatch.objects.get(task_id=body["task_id"])
    assert dispatch.attempts == 1
    assert dispatch.last_error

    with tenant_scope(tenant.id):
        run = JobRun.objects.get(pk=body["id"])
    assert run.status == JobStatus.QUEUED
    with pool.broker():
        pool.start()
        call_command("drain_job_outbox")
        wait_until(
            lambda: status_of(run) == JobStatus.SUCCEEDED,
            what="the drained run to execute on the worker",
            pool=pool,
        )
    assert not JobDispatch.objects.exists()
    run = reload(run)
    assert run.attempts == 1
    assert effects_of(run.pk) == [f"{run.pk}:1", f"{run.pk}:2"]


def test_a_job_on_a_real_worker_sees_only_its_own_tenant(pool):
    mine = TenantFactory(name="Mine", slug="mine")
    other = TenantFactory(name="Other", slug="other")
    with pool.broker():
        services.job_submit(tenant=other, kind="noop")
        run = services.job_submit(tenant=mine, kind="diagnostic")
        pool.start()
        wait_until(lambda: reload(run).is_finished, what="the diagnostic run", pool=pool)
    run = reload(run)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.result["tenant_runs_visible"] == 1
    if connection.vendor == "postgresql":
        # Row-level security: even an unscoped query in the job sees no other tenant's rows.
        assert run.result["row_level_security_isolates"] is True
    assert run.worker  # which worker ran it: on the run, for staff


def terminate_other_backends() -> int:
    """pg_terminate_backend on every other connection to the test database (the worker's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_a_lost_database_connection_retries_running_jobs_with_effects_once(pool, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("terminates PostgreSQL backends")
    tenant = TenantFactory(name="Failover Ltd", slug="failover")
    release, started = tmp_path / "release", tmp_path / "started"
    parameters = {"release_file": str(release), "started_file": str(started)}
    with pool.broker():
        pool.start()
        first = services.job_submit(tenant=tenant, kind="test_countable", parameters=parameters)
        second = services.job_submit(tenant=tenant, kind="test_countable", parameters=parameters)
        # Mid-job: effect 1 committed, the job now waits for the release file.
        wait_until(
            lambda: started.exists() and effects_of(first.pk) == [f"{first.pk}:1"],
            what="the first run to commit effect 1 and wait",
            pool=pool,
        )
        assert terminate_other_backends() >= 1  # the worker's connection(s), mid-job
        release.touch()
        wait_until(
            lambda: reload(first).is_finished and reload(second).is_finished,
            what="both runs to finish after the connection loss",
            pool=pool,
        )
    first, second = reload(first), reload(second)
    assert (first.status, second.status) == (JobStatus.SUCCEEDED, JobStatus.SUCCEEDED), (
        first.error,
        second.error,
    )
    assert first.attempts == 2  # retried, not failed
    assert any("database connection lost" in line for line in logs_of(first))
    for run in (first, second):  # once each, never twice
        assert effects_of(run.pk) == [f"{run.pk}:1", f"{run.pk}:2"]


def sent_to_broker() -> bool:
    return not JobDispatch.objects.exists()


def test_a_run_whose_broker_message_vanished_is_resent_by_recovery(pool, settings):
    settings.JOBS_QUEUED_RESEND_AFTER_SECONDS = 0  # production: 300
    tenant = TenantFactory(name="Amnesia Ltd", slug="amnesia")
    with pool.broker():
        run = services.job_submit(tenant=tenant, kind="test_countable")
        wait_until(sent_to_broker, what="the outbox to send the run's message", pool=pool)
        # The message is still in the broker: recovery leaves the run alone.
        assert services.job_runs_recover().resent == 0

        assert lose_waiting_messages() == 1  # Redis restarted empty
        assert services.job_runs_recover().resent == 1
        assert services.job_runs_recover().resent == 0  # its new message is in the broker
        pool.start()
        wait_until(lambda: status_of(run) == JobStatus.SUCCEEDED, what="the re-sent run", pool=pool)
        assert services.job_runs_recover().resent == 0
    run = reload(run)
    assert run.attempts == 1
    assert effects_of(run.pk) == [f"{run.pk}:1", f"{run.pk}:2"]
    assert "Still queued and its message is lost; sending it again." in logs_of(run)


def test_resend_queued_runs_resends_lost_messages_now(pool):
    tenant = TenantFactory(name="Forgetful Ltd", slug="forgetful")
    other = TenantFactory(name="Bystander Ltd", slug="bystander")
    with pool.broker():
        run = services.job_submit(tenant=tenant, kind="test_countable")
        untouched = services.job_submit(tenant=other, kind="test_countable")
        wait_until(sent_to_broker, what="the outbox to send both messages", pool=pool)
        assert lose_waiting_messages() == 2
        out = StringIO()
        call_command("resend_queued_runs", "--older-than", "0", "--tenant", "forgetful", stdout=out)
        assert f"re-sent run {run.pk} (test_countable" in out.getvalue()
        assert f"re-sent run {untouched.pk} " not in out.getvalue()
        assert out.getvalue().endswith("re-sent 1 queued run(s)\n")

        again = StringIO()  # the message is back in the broker: nothing to re-send
        call_command("resend_queued_runs", "--older-than", "0", stdout=again)
        assert f"re-sent run {untouched.pk} " in again.getvalue()
        assert again.getvalue().endswith("re-sent 1 queued run(s)\n")
        pool.start()
        wait_until(
            lambda: (
                status_of(run) == JobStatus.SUCCEEDED
                and status_of(untouched) == JobStatus.SUCCEEDED
            ),
            what="both re-sent runs",
            pool=pool,
        )
        done = StringIO()
        call_command("resend_queued_runs", "--older-than", "0", stdout=done)
        assert done.getvalue() == "re-sent 0 queued run(s)\n"
    for each in (run, untouched):
        assert reload(each).attempts == 1
        assert effects_of(each.pk) == [f"{each.pk}:1", f"{each.pk}:2"]


def test_a_killed_pool_child_is_taken_over_at_once_not_after_its_lease(pool, tmp_path):
    tenant = TenantFactory(name="Orphan Ltd", slug="orphan")
    release, started = tmp_path / "release", tmp_path / "started"
    with pool.broker():
        # A lease far longer than the wait below: only an immediate take-over can finish it.
        worker = pool.start(pool="prefork", lease_seconds=600)
        run = services.job_submit(
            tenant=tenant,
            kind="test_countable",
            parameters={"release_file": str(release), "started_file": str(started)},
        )
        wait_until(
            lambda: started.exists() and effects_of(run.pk) == [f"{run.pk}:1"],
            what="the pool child to commit effect 1 and wait",
            pool=pool,
        )
        holder = reload(run).worker
        child = int(holder.rpartition(":")[2])
        assert child != worker.process.pid  # the pool child, not the worker's main process
        release.touch()
        os.kill(child, signal.SIGKILL)
        # No recovery between polls: Celery's redelivery alone must take the run over.
        wait_until(
            lambda: status_of(run) == JobStatus.SUCCEEDED,
            what="the redelivered message to take the run over from the dead child",
            pool=pool,
        )
    run = reload(run)
    assert run.attempts == 2
    assert run.worker != holder
    assert effects_of(run.pk) == [f"{run.pk}:1", f"{run.pk}:2"]  # once each, never twice
    assert "Attempt 2 started (the previous attempt did not finish)." in logs_of(run)


def test_after_the_database_drops_the_web_connection_the_next_request_succeeds():
    """Through Django's real WSGI handler (the test client skips its connection upkeep)."""
    if connection.vendor != "postgresql":
        pytest.skip("terminates a PostgreSQL backend")
    import psycopg
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.client import RequestFactory

    tenant = TenantFactory(name="Reconnect Ltd", slug="reconnect")
    admin = make_member(tenant, TenantRole.ADMIN, username="reconnect-admin")
    token = make_token(admin)
    handler = WSGIHandler()

    def get_jobs() -> str:
        environ = RequestFactory()._base_environ(
            PATH_INFO=f"/api/v1/tenants/{tenant.slug}/jobs/",
            REQUEST_METHOD="GET",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        statuses = []
        response = handler(environ, lambda status, headers, exc_info=None: statuses.append(status))
        response.close()  # request_finished: Django's connection upkeep
        return statuses[0]

    assert get_jobs().startswith("200")
    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    settings_dict = connection.settings_dict
    with psycopg.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict["USER"],
        host=settings_dict["HOST"],
        port=settings_dict["PORT"] or 5432,
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [backend])  # a failover, a restart
    assert get_jobs().startswith("200")  # reconnected, no restart

"""The engine's per-job cost: batch submit, one round trip per bookkeeping write, relaxed commits.

The first tests run inside the test transaction (like the rest of the engine's tests). The
``worker_path`` ones run with real commits (``transaction=True``), as on a worker, where the
claim and the finish each go to PostgreSQL as one round trip; their statements are counted here
and their semantics (fencing by attempt, tenant, task id) checked again on that path.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from operations.jobs import services
from operations.jobs.execution import (
    JobContext,
    claim,
    finish,
    job_run_execute,
    submit_lock_key,
)
from operations.jobs.models import JobDispatch, JobRun, JobStatus, JobTrigger
from operations.jobs.registry import get_job_kind
from tenants.models import AuditEvent
from tenants.scoping import tenant_scope
from tests.factories import make_member
from tests.jobs.conftest import expire_lease, logs_of, reload

RELAXED = "SET LOCAL synchronous_commit = off"
RELAXED_SETTING = "set_config('synchronous_commit', 'off', true)"


def statements(captured) -> list[str]:
    """The SQL sent, without the transaction markers Django logs (BEGIN, COMMIT)."""
    return [
        query["sql"]
        for query in captured.captured_queries
        if query["sql"] not in ("BEGIN", "COMMIT", "ROLLBACK")
    ]


# --- job_submit_many ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_submit_many_stores_each_run_and_sends_each_message_after_commit(tenant_a, sent, committed):
    with committed(), transaction.atomic():
        runs = services.job_submit_many(
            tenant=tenant_a, kind="noop", parameters=[{}, {"seconds": 0.5}, None]
        )
        assert sent == []
        assert JobDispatch.objects.count() == 3
    assert [run.parameters for run in runs] == [
        {"seconds": 0.0},
        {"seconds": 0.5},
        {"seconds": 0.0},
    ]
    assert sent == [
        {
            "task": "jobs.execute",
            "kwargs": {"run_id": run.pk, "tenant_id": tenant_a.id},
            "task_id": str(run.task_id),
            "queue": "jobs",
        }
        for run in runs
    ]
    assert not JobDispatch.objects.exists()
    assert len({run.task_id for run in runs}) == 3
    for run in runs:
        stored = reload(run)
        assert (stored.status, stored.trigger, stored.attempts) == ("queued", "system", 0)
        assert stored.parameters == run.parameters


@pytest.mark.django_db
def test_submit_many_costs_the_same_statements_for_one_run_or_fifty(
    tenant_a, sent, django_assert_max_num_queries
):
    # BEGIN, scope, runs, outbox rows, scope reset, COMMIT, and the outbox delete after sending.
    with django_assert_max_num_queries(7):
        services.job_submit_many(tenant=tenant_a, kind="noop", parameters=[{}])
    with django_assert_max_num_queries(7):
        services.job_submit_many(tenant=tenant_a, kind="noop", parameters=[{}] * 50)
    with tenant_scope(tenant_a.id):
        assert JobRun.objects.count() == 51


@pytest.mark.django_db
def test_submit_many_refuses_the_whole_batch_naming_the_bad_entry(tenant_a, sent):
    with pytest.raises(ValidationError) as bad:
        services.job_submit_many(tenant=tenant_a, kind="noop", parameters=[{}, {}, {"seconds": 99}])
    assert set(bad.value.message_dict) == {"parameters[2].seconds"}
    with pytest.raises(ValidationError) as not_a_list:
        services.job_submit_many(tenant=tenant_a, kind="noop", parameters={"seconds": 1})
    assert set(not_a_list.value.message_dict) == {"parameters"}
    with pytest.raises(ValidationError):
        services.job_submit_many(tenant=None, kind="noop", parameters=[{}])
    with pytest.raises(ValidationError):
        services.job_submit_many(tenant=tenant_a, kind="nope", parameters=[{}])
    with tenant_scope(tenant_a.id):
        assert not JobRun.objects.exists()
    assert not JobDispatch.objects.exists()
    assert sent == []
    assert services.job_submit_many(tenant=tenant_a, kind="noop", parameters=[]) == []


@pytest.mark.django_db
def test_submit_many_by_a_user_audits_each_run(tenant_a, sent):
    user = make_member(tenant_a, username="bulk")
    runs = services.job_submit_many(
        tenant=tenant_a, kind="noop", parameters=[{}, {}], trigger=JobTrigger.USER, user=user
    )
    assert {(run.trigger, run.triggered_by_label) for run in runs} == {("user", "bulk")}
    with tenant_scope(tenant_a.id):
        audited = set(
            AuditEvent.objects.filter(object_type="jobs.JobRun").values_list("object_id", flat=True)
        )
    assert audited == {str(run.pk) for run in runs}


# --- The worker's path: real commits --------------------------------------------------------


worker_path = pytest.mark.django_db(transaction=True)


@worker_path
def test_a_noop_job_is_two_statements_on_the_worker(tenant_a, sent):
    run = services.job_submit(tenant=tenant_a, kind="noop")
    with CaptureQueriesContext(connection) as captured:
        outcome = job_run_execute(
            run_id=run.pk, tenant_id=tenant_a.id, task_id=str(run.task_id), use_heartbeat=False
        )
    assert outcome == "succeeded"
    sql = statements(captured)
    if connection.vendor == "postgresql":
        # The claim and the finish, each one round trip that sets the scope and relaxes its commit
        # (SET LOCAL as set_config(…, true), in one SELECT with the scope) and runs its prepared
        # statement.
        assert len(sql) == 2
        assert all(RELAXED_SETTING in statement for statement in sql)
        assert all("app.tenant_ids" in str(query) for query in captured.captured_queries)
        assert "EXECUTE jobs_claim_" in sql[0]
        assert "EXECUTE jobs_finish_" in sql[1]
        assert [len(captured.captured_queries)] == [2]  # and no BEGIN or COMMIT of their own
    else:
        assert len(sql) <= 4
    run = reload(run)
    assert (run.status, run.attempts, run.progress, run.result) == ("succeeded", 1, 100, {})
    assert run.lease_expires_at is None
    assert run.started_at <= run.finished_at


@worker_path
def test_the_claim_and_the_finish_are_planned_once_per_connection(tenant_a, tenant_b, sent):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    runs = [
        services.job_submit(tenant=tenant, kind="noop") for tenant in (tenant_a, tenant_a, tenant_b)
    ]
    with CaptureQueriesContext(connection) as captured:
        outcomes = [
            job_run_execute(
                run_id=run.pk,
                tenant_id=run.tenant_id,
                task_id=str(run.task_id),
                use_heartbeat=False,
            )
            for run in runs
        ]
    assert outcomes == ["succeeded"] * 3
    sql = statements(captured)
    assert len(sql) == 6  # still one round trip each
    # The first claim and finish on this connection prepare their statement; the others (of
    # any tenant: the tenant is a parameter) only execute it.
    assert ["PREPARE" in statement for statement in sql] == [True, True] + [False] * 4
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM pg_prepared_statements WHERE name ~ '^jobs_(claim|finish)_'"
        )
        assert len(cursor.fetchall()) == 2
    for run in runs:
        stored = reload(run)
        assert (stored.status, stored.attempts, stored.progress, stored.worker) == (
            "succeeded",
            1,
            100,
            reload(runs[0]).worker,
        )


@worker_path
def test_after_an_error_the_next_claim_prepares_its_statement_again(tenant_a, sent):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    first, second = (services.job_submit(tenant=tenant_a, kind="noop") for _ in range(2))
    assert claim(run_id=first.pk, tenant_id=tenant_a.id, task_id=str(first.task_id))[1]
    with connection.cursor() as cursor:
        # As a pooler or a DISCARD ALL would leave the session: the statement is gone.
        cursor.execute("DEALLOCATE ALL")
    with pytest.raises(DatabaseError):
        claim(run_id=second.pk, tenant_id=tenant_a.id, task_id=str(second.task_id))
    # The failed claim forgot its statement: this one prepares it again and succeeds.
    assert claim(run_id=second.pk, tenant_id=tenant_a.id, task_id=str(second.task_id))[1]
    assert reload(second).status == JobStatus.RUNNING


@worker_path
def test_a_submit_on_its_own_is_two_durable_round_trips_and_its_run_is_its_outbox(
    tenant_a, tenant_b, sent
):
    with CaptureQueriesContext(connection) as captured:
        run = services.job_submit(tenant=tenant_a, kind="noop", parameters={"seconds": 0.5})
    sql = [query["sql"] for query in captured.captured_queries]
    if connection.vendor == "postgresql":
        # The scope, the submit lock and the insert in one round trip, then the COMMIT (during
        # which the message goes); no outbox row.
        assert len(sql) == 2
        assert sql[0].startswith("BEGIN; ")
        assert "set_config" in sql[0]
        assert "pg_advisory_xact_lock" in sql[0]
        assert "EXECUTE jobs_submit_" in sql[0]  # the prepared INSERT of the run
        assert "jobs_jobdispatch" not in sql[0]
        assert sql[1] == "COMMIT"
        assert not any("synchronous_commit" in statement for statement in sql)  # fully durable
    assert not JobDispatch.objects.exists()
    assert sent == [
        {
            "task": "jobs.execute",
            "kwargs": {"run_id": run.pk, "tenant_id": tenant_a.id},
            "task_id": str(run.task_id),
            "queue": "jobs",
        }
    ]
    stored = reload(run)
    assert (stored.status, stored.trigger, stored.attempts, stored.parameters) == (
        "queued",
        "system",
        0,
        {"seconds": 0.5},
    )
    assert (stored.task_id, stored.tenant_id, stored.max_attempts) == (
        run.task_id,
        tenant_a.id,
        get_job_kind("noop").max_attempts,
    )
    with tenant_scope(tenant_b.id):
        assert not JobRun.objects.filter(pk=run.pk).exists()
    assert (
        job_run_execute(
            run_id=run.pk, tenant_id=tenant_a.id, task_id=str(run.task_id), use_heartbeat=False
        )
        == "succeeded"
    )


@worker_path
def test_a_submit_stores_every_column_it_does_not_set_at_the_fields_default(tenant_a, sent):
    # The fast submit's prepared INSERT binds only what a submit sets; the other columns are
    # constants of the statement, which must be exactly what the model would have written.
    run = services.job_submit(tenant=tenant_a, kind="noop", parameters={"seconds": 0.25})
    stored = reload(run)
    template = JobRun(tenant=tenant_a, kind="noop")
    set_by_submit = set(services._SUBMIT_ATTNAMES) | {"id"}
    for field in JobRun._meta.concrete_fields:
        if field.attname not in set_by_submit:
            assert getattr(stored, field.attname) == getattr(template, field.attname), field.name
    for attname in set_by_submit:
        assert getattr(stored, attname) == getattr(run, attname), attname
    assert stored.parameters == {"seconds": 0.25}
    assert (stored.status, stored.result, stored.checkpoints) == ("queued", {}, {})


@pytest.mark.django_db
def test_a_new_run_keeps_the_objects_it_was_given(tenant_a, django_assert_num_queries):
    user = make_member(tenant_a, username="runner")
    run = services._new_run(
        get_job_kind("noop"),
        tenant=tenant_a,
        parameters={"seconds": 0.0},
        trigger=JobTrigger.USER,
        user=user,
    )
    with django_assert_num_queries(0):
        assert (run.tenant, run.triggered_by_user) == (tenant_a, user)
    assert (run.tenant_id, run.triggered_by_user_id, run.triggered_by_label) == (
        tenant_a.id,
        user.id,
        user.get_username(),
    )
    assert (run.status, run.attempts, run.result, run.checkpoints) == ("queued", 0, {}, {})
    assert run._state.adding
    assert run.pk is None
    # Callable defaults are called for each run: nothing mutable is shared between runs.
    other = services._new_run(
        get_job_kind("noop"), tenant=tenant_a, parameters={}, trigger=JobTrigger.SYSTEM
    )
    assert other.task_id != run.task_id
    assert other.result is not run.result
    assert other.checkpoints is not run.checkpoints


@worker_path
def test_without_query_capture_the_worker_path_translates_database_errors(tenant_a, sent):
    # Unrecorded, the claim and the finish run on psycopg's cursor directly; its errors still
    # reach the engine as Django's (the task retries on Django's OperationalError).
    if connection.vendor != "postgresql":
        pytest.skip("the raw cursor is the PostgreSQL path")
    assert not connection.queries_logged
    first, run = (services.job_submit(tenant=tenant_a, kind="noop") for _ in range(2))
    assert claim(run_id=first.pk, tenant_id=tenant_a.id, task_id=str(first.task_id))[1]
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # the claim's prepared statement is gone
    with pytest.raises(DatabaseError) as raised:
        claim(run_id=run.pk, tenant_id=tenant_a.id, task_id=str(run.task_id))
    assert type(raised.value).__module__.startswith("django.db")
    assert (
        job_run_execute(
            run_id=run.pk, tenant_id=tenant_a.id, task_id=str(run.task_id), use_heartbeat=False
        )
        == "succeeded"
    )


@worker_path
def test_a_claim_that_comes_before_the_submits_commit_waits_for_it(tenant_a, sent, monkeypatch):
    """The message leaves while the submit commits, so a worker may get it before the run is
    visible: its claim must wait for the commit, not drop the run as missing."""
    if connection.vendor != "postgresql":
        pytest.skip("the submit overlaps its commit with the send on PostgreSQL only")
    inserted, go = threading.Event(), threading.Event()
    messages: list = []

    def send_when_told(outgoing):
        # In the submitter's thread, its transaction open: hold it until the claim waits.
        messages.extend(outgoing)
        inserted.set()
        assert go.wait(60)
        done = Future()
        done.set_result((len(outgoing), None))
        return done

    monkeypatch.setattr(services, "outbox_send_beside", send_when_told)
    outcomes: dict = {}

    def in_thread(name, fn):
        def target():
            try:
                outcomes[name] = fn()
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                outcomes[name] = exc
            finally:
                connection.close()

        thread = threading.Thread(target=target)
        thread.start()
        return thread

    submitter = in_thread("submit", lambda: services.job_submit(tenant=tenant_a, kind="noop"))
    assert inserted.wait(60)
    message = messages[0]
    worker = in_thread(
        "worker",
        lambda: job_run_execute(**message.kwargs, task_id=message.task_id, use_heartbeat=False),
    )
    lock_class, _ = submit_lock_key(message.task_id)
    waiting = 0
    for _ in range(6000):  # until the worker's claim waits for the submit lock (or 60 s)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND classid::int = %s",
                [lock_class],
            )
            (waiting,) = cursor.fetchone()
        if waiting or not worker.is_alive():
            break
        time.sleep(0.01)
    go.set()
    submitter.join(60)
    worker.join(60)
    assert waiting == 1
    run = outcomes["submit"]
    assert isinstance(run, JobRun)
    assert outcomes["worker"] == "succeeded"
    assert reload(run).status == JobStatus.SUCCEEDED


@worker_path
def test_a_submit_that_fails_leaves_no_transaction_open(tenant_a, sent, monkeypatch):
    new_run = services._new_run

    def out_of_range(*args, **kwargs):
        run = new_run(*args, **kwargs)
        run.max_attempts = -1  # refused by the column's check (a positive small integer)
        return run

    monkeypatch.setattr(services, "_new_run", out_of_range)
    with pytest.raises(IntegrityError):
        services.job_submit(tenant=tenant_a, kind="noop")
    assert sent == []
    monkeypatch.setattr(services, "_new_run", new_run)
    if connection.vendor == "postgresql":
        from psycopg.pq import TransactionStatus

        assert connection.connection.info.transaction_status == TransactionStatus.IDLE
    run = services.job_submit(tenant=tenant_a, kind="noop")
    assert reload(run).status == JobStatus.QUEUED
    with tenant_scope(tenant_a.id):
        assert JobRun.objects.count() == 1


@worker_path
def test_a_submit_the_broker_refuses_waits_in_the_outbox_for_the_drain(tenant_a, sent, monkeypatch):
    from operations.jobs import outbox
    from operations.jobs.outbox import outbox_drain, outbox_sender_reset

    recorder = outbox.publish_message

    def refuse(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(outbox, "publish_message", refuse)
    try:
        run = services.job_submit(tenant=tenant_a, kind="noop")
        assert reload(run).status == JobStatus.QUEUED
        dispatch = JobDispatch.objects.get()
        assert dispatch.task_id == str(run.task_id)
        assert dispatch.kwargs == {"run_id": run.pk, "tenant_id": tenant_a.id}
        assert (dispatch.attempts, dispatch.queue) == (1, "jobs")
        assert "broker down" in dispatch.last_error
    finally:
        outbox_sender_reset()
    monkeypatch.setattr(outbox, "publish_message", recorder)
    assert outbox_drain().sent == 1
    assert [message["task_id"] for message in sent] == [str(run.task_id)]
    assert not JobDispatch.objects.exists()


@worker_path
def test_the_sender_forgets_sent_rows_with_a_relaxed_delete(tenant_a, sent):
    with CaptureQueriesContext(connection) as captured:
        services.job_submit_many(tenant=tenant_a, kind="noop", parameters=[{}, {}])
    assert len(sent) == 2
    assert not JobDispatch.objects.exists()
    delete = [sql for sql in statements(captured) if "DELETE" in sql]
    assert len(delete) == 1
    assert (RELAXED in delete[0]) == (connection.vendor == "postgresql")
    # The submission itself stays fully durable: its transaction is not relaxed.
    assert sum(RELAXED in sql for sql in statements(captured)) == (
        1 if connection.vendor == "postgresql" else 0
    )


@worker_path
def test_without_relaxed_commits_nothing_is_relaxed(tenant_a, sent, settings):
    settings.JOBS_RELAXED_COMMIT = False
    with CaptureQueriesContext(connection) as captured:
        run = services.job_submit(tenant=tenant_a, kind="noop")
        job_run_execute(
            run_id=run.pk, tenant_id=tenant_a.id, task_id=str(run.task_id), use_heartbeat=False
        )
    assert reload(run).status == JobStatus.SUCCEEDED
    assert not any("synchronous_commit" in sql for sql in statements(captured))


@worker_path
def test_progress_inside_a_kinds_transaction_does_not_relax_that_transaction(tenant_a, sent):
    run = services.job_submit(tenant=tenant_a, kind="test_progress_in_scope")
    outcome = job_run_execute(
        run_id=run.pk, tenant_id=tenant_a.id, task_id=str(run.task_id), use_heartbeat=False
    )
    assert outcome == "succeeded"
    run = reload(run)
    expected = "on" if connection.vendor == "postgresql" else None
    assert run.result == {"synchronous_commit": expected}
    assert run.progress == 100


@worker_path
def test_the_one_round_trip_claim_refuses_what_it_must(tenant_a, tenant_b, sent):
    run = services.job_submit(tenant=tenant_a, kind="noop")
    task_id = str(run.task_id)
    other = "00000000-0000-4000-8000-000000000000"
    assert claim(run_id=run.pk, tenant_id=tenant_b.id, task_id=task_id) == (None, False)
    stale, claimed = claim(run_id=run.pk, tenant_id=tenant_a.id, task_id=other)
    assert (stale.pk, claimed) == (run.pk, False)
    first, claimed = claim(run_id=run.pk, tenant_id=tenant_a.id, task_id=task_id)
    assert claimed
    assert first.attempts == 1
    assert first.status == JobStatus.RUNNING
    held, claimed = claim(run_id=run.pk, tenant_id=tenant_a.id, task_id=task_id)
    assert (held.attempts, claimed) == (1, False)  # its lease is alive
    assert reload(run).attempts == 1


@worker_path
def test_the_one_round_trip_finish_is_fenced_by_the_attempt(tenant_a, sent):
    run = services.job_submit(tenant=tenant_a, kind="noop")
    first, _ = claim(run_id=run.pk, tenant_id=tenant_a.id, task_id=str(run.task_id))
    zombie = JobContext(first, get_job_kind("noop"))
    expire_lease(run)
    second, claimed = claim(run_id=run.pk, tenant_id=tenant_a.id, task_id=str(run.task_id))
    assert claimed
    assert second.attempts == 2
    assert finish(zombie, JobStatus.SUCCEEDED, result={"zombie": True}) is False
    assert reload(run).status == JobStatus.RUNNING
    successor = JobContext(second, get_job_kind("noop"))
    assert finish(successor, JobStatus.SUCCEEDED, result={"attempt": 2}) is True
    run = reload(run)
    assert (run.status, run.attempts, run.result) == ("succeeded", 2, {"attempt": 2})
    assert finish(successor, JobStatus.FAILED, error="twice?") is False  # finished once


@worker_path
def test_a_finish_with_log_lines_writes_them_with_the_outcome(tenant_a, sent):
    run = services.job_submit(tenant=tenant_a, kind="test_failing")
    outcome = job_run_execute(
        run_id=run.pk, tenant_id=tenant_a.id, task_id=str(run.task_id), use_heartbeat=False
    )
    assert outcome == "failed"
    run = reload(run)
    assert run.status == JobStatus.FAILED
    assert "boom" in run.error

    assert logs_of(run) == ["About to fail", "Failed: ValueError: boom: the secret internals"]


@worker_path
def test_a_fleet_run_goes_through_the_one_round_trip_path_too(tenant_a, tenant_b, sent):
    from tests.jobs.conftest import activate

    tenants = [activate(tenant_a), activate(tenant_b)]
    parent = services.job_submit_fleet(kind="test_tenant_echo")

    def execute(run) -> str:
        return job_run_execute(
            run_id=run.pk, tenant_id=run.tenant_id, task_id=str(run.task_id), use_heartbeat=False
        )

    assert execute(parent) == "awaiting children"  # claimed with no tenant scope at all
    with tenant_scope(*(tenant.id for tenant in tenants)):
        children = list(JobRun.objects.filter(parent_id=parent.pk).order_by("tenant_id"))
    assert [child.tenant_id for child in children] == [tenant.id for tenant in tenants]
    assert [execute(child) for child in children] == ["succeeded", "succeeded"]
    assert execute(children[0]) == "already finished"
    parent = reload(parent)
    assert (parent.status, parent.children_succeeded, parent.progress) == ("succeeded", 2, 100)
    for child in children:
        assert reload(child).result == {
            "tenant": child.tenant_id,
            "visible_tenants": [child.tenant_id],
        }


@worker_path
def test_a_fleet_childs_finish_counts_it_on_the_parent_in_the_same_round_trip(
    tenant_a, tenant_b, sent
):
    from tests.jobs.conftest import activate

    tenants = [activate(tenant_a), activate(tenant_b)]
    parent = services.job_submit_fleet(kind="test_tenant_echo")
    assert job_run_execute(
        run_id=parent.pk, tenant_id=None, task_id=str(parent.task_id), use_heartbeat=False
    ) == ("awaiting children")
    with tenant_scope(*(tenant.id for tenant in tenants)):
        first, second = JobRun.objects.filter(parent_id=parent.pk).order_by("tenant_id")
    kind = get_job_kind("test_tenant_echo")

    for child in (first, second):
        claimed, _ = claim(run_id=child.pk, tenant_id=child.tenant_id, task_id=str(child.task_id))
        context = JobContext(claimed, kind)
        context.log("a line written with the outcome")
        with CaptureQueriesContext(connection) as captured:
            assert finish(context, JobStatus.SUCCEEDED, result={"ok": True}) is True
        if connection.vendor == "postgresql":
            # The log line, the child's outcome and the parent's count: one round trip (the
            # last child then finishes the parent in a transaction of its own).
            assert "INSERT" in captured.captured_queries[0]["sql"]
            assert "counted" in captured.captured_queries[0]["sql"]
            if child is first:
                assert len(captured.captured_queries) == 1
        if child is first:
            stored = reload(parent)
            assert (stored.status, stored.children_succeeded, stored.progress) == (
                "running",
                1,
                50,
            )
            assert stored.progress_message == "1 of 2 tenants done"
        assert logs_of(reload(child))[-1] == "a line written with the outcome"
        # A zombie's second finish neither writes nor counts again.
        assert finish(context, JobStatus.FAILED, error="late") is False
    parent = reload(parent)
    assert (parent.status, parent.children_succeeded, parent.children_failed) == (
        "succeeded",
        2,
        0,
    )
    assert parent.result == {"tenants": 2, "succeeded": 2, "failed": 0, "cancelled": 0}
    assert any(line.startswith("All child runs finished") for line in logs_of(parent))


@worker_path
def test_recovery_finishes_a_parent_whose_last_child_was_counted_but_not_finalised(tenant_a, sent):
    from tests.jobs.conftest import activate

    activate(tenant_a)
    parent = services.job_submit_fleet(kind="test_tenant_echo")
    job_run_execute(
        run_id=parent.pk, tenant_id=None, task_id=str(parent.task_id), use_heartbeat=False
    )
    # As if the last child's worker died between its counted finish and finishing the parent.
    JobRun.fleet.filter(pk=parent.pk).update(children_succeeded=1)
    assert reload(parent).status == JobStatus.RUNNING
    assert services.job_runs_recover().parents_finished == 1
    parent = reload(parent)
    assert (parent.status, parent.progress, parent.awaiting_children) == ("succeeded", 100, False)
    assert services.job_runs_recover().parents_finished == 0


# --- A run's message, from the template --------------------------------------------------------


def _published_by(producer, monkeypatch) -> list[tuple]:
    """What ``producer.publish`` is given, recorded instead of sent."""
    published: list[tuple] = []
    monkeypatch.setattr(producer, "publish", lambda body, **kw: published.append((body, kw)))
    return published


def _run_message(tenant_id: int | None = 3, **options):
    import uuid

    from operations.jobs.outbox import EXECUTE_TASK, OutboxMessage

    return OutboxMessage(
        task_name=EXECUTE_TASK,
        task_id=str(uuid.uuid4()),
        queue="jobs",
        kwargs={"run_id": 7, "tenant_id": tenant_id},
        options=options,
    )


@contextmanager
def _inside_a_task(parent: bool):
    """As inside a task the worker runs (a fleet run's fan-out): its id is the messages'
    parent, and each message is added to its trail."""
    from celery._state import _task_stack

    from operations.jobs.tasks import noop_task

    if not parent:
        yield None
        return
    noop_task.push_request(id="parent-task", root_id="root-task", called_directly=False)
    _task_stack.push(noop_task)
    try:
        yield noop_task.request
    finally:
        _task_stack.pop()
        noop_task.pop_request()


@pytest.mark.parametrize("tenant_id", [3, None], ids=["tenant run", "fleet run"])
@pytest.mark.parametrize("parent", [False, True], ids=["submitted", "from a task"])
@pytest.mark.parametrize(
    "options", [{}, {"soft_time_limit": 30, "time_limit": 60}], ids=["plain", "time limits"]
)
def test_a_runs_message_is_the_one_send_task_publishes(monkeypatch, options, parent, tenant_id):
    from msp.celery import app
    from operations.jobs.outbox import publish_message

    row = _run_message(tenant_id, **options)
    with app.producer_or_acquire() as producer, _inside_a_task(parent) as request:
        published = _published_by(producer, monkeypatch)
        with monkeypatch.context() as patch:
            # The template's own path: Celery's send_task is not used for it.
            patch.setattr(app, "send_task", lambda *a, **kw: pytest.fail("send_task used"))
            publish_message(app, producer, row)
        app.send_task(
            row.task_name,
            kwargs=row.kwargs,
            task_id=row.task_id,
            queue=row.queue,
            producer=producer,
            retry=False,
            **row.options,
        )
    (body, template), (celery_body, celery) = published
    assert body == celery_body
    # send_task declares the queue every time (kombu skips it once declared on the connection);
    # the template only until it is declared. Its retry policy does not apply without a retry.
    assert [queue.name for queue in celery.pop("declare")] == ["jobs"]
    assert [queue.name for queue in template.pop("declare")] in ([], ["jobs"])
    celery.pop("retry_policy")
    headers = template.pop("headers")
    assert headers == celery.pop("headers")
    if parent:
        assert (headers["parent_id"], headers["root_id"]) == ("parent-task", "root-task")
        assert [result.id for result in request.children] == [row.task_id, row.task_id]
    else:
        assert (headers["parent_id"], headers["root_id"]) == (None, row.task_id)
    # Left out or None: kombu's default either way (timeouts, compression).
    assert {key: value for key, value in template.items() if value is not None} == {
        key: value for key, value in celery.items() if value is not None
    }
    assert headers["timelimit"] == [
        options.get("time_limit", app.conf.task_time_limit),
        options.get("soft_time_limit", app.conf.task_soft_time_limit),
    ]


def test_a_connected_publish_signal_sees_a_runs_message(monkeypatch):
    """Whoever listens to Celery's publish signals (tracing, metrics) still sees every run's
    message: the template steps aside for send_task."""
    from celery import signals

    from msp.celery import app
    from operations.jobs.outbox import publish_message

    seen = []

    def listener(sender=None, headers=None, **kwargs):
        seen.append((sender, headers["id"]))

    row = _run_message()
    signals.before_task_publish.connect(listener)
    try:
        with app.producer_or_acquire() as producer:
            published = _published_by(producer, monkeypatch)
            publish_message(app, producer, row)
    finally:
        signals.before_task_publish.disconnect(listener)
    assert seen == [("jobs.execute", row.task_id)]
    assert len(published) == 1


@pytest.mark.django_db(transaction=True)
def test_the_kept_eager_setting_follows_a_settings_change(tenant_a, settings):
    """The outbox keeps Celery's eager flag (its lookup is dear) until a setting changes."""
    from msp.celery import app
    from operations.jobs.outbox import tasks_run_eagerly

    assert not tasks_run_eagerly(app)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    had_changes = "task_always_eager" in app.conf.changes
    previous = app.conf.changes.pop("task_always_eager", None)
    try:
        assert tasks_run_eagerly(app)
        # Eager: the run is executed in-process once its submit has committed.
        run = services.job_submit(tenant=tenant_a, kind="noop")
        assert reload(run).status == JobStatus.SUCCEEDED
    finally:
        if had_changes:
            app.conf.changes["task_always_eager"] = previous


# --- Runs built without Model.__init__ ---------------------------------------------------------


def _run_values() -> list:
    import uuid

    from django.utils import timezone

    values = [field.get_default() for field in JobRun._meta.concrete_fields]
    position = {field.attname: i for i, field in enumerate(JobRun._meta.concrete_fields)}
    values[position["id"]] = 41
    values[position["task_id"]] = uuid.uuid4()
    values[position["tenant_id"]] = 3
    values[position["kind"]] = "noop"
    values[position["parameters"]] = {"seconds": 1.0}
    values[position["created_at"]] = timezone.now()
    return values


@pytest.mark.parametrize("db", [None, "default"], ids=["new", "read back"])
def test_a_run_built_from_values_is_the_one_django_builds(db):
    from operations.jobs.execution import run_from_values

    values = _run_values()
    ours = run_from_values(values, db=db)
    djangos = JobRun(*values) if db is None else JobRun.from_db(db, None, values)
    assert {k: v for k, v in vars(ours).items() if k != "_state"} == {
        k: v for k, v in vars(djangos).items() if k != "_state"
    }
    assert (ours._state.adding, ours._state.db) == (djangos._state.adding, djangos._state.db)
    assert (ours.tenant_id, ours.parameters) == (3, {"seconds": 1.0})


def test_a_run_built_from_values_still_tells_init_receivers():
    from django.db.models.signals import post_init

    from operations.jobs.execution import run_from_values

    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance.pk)

    post_init.connect(receiver, sender=JobRun)
    try:
        run_from_values(_run_values())
    finally:
        post_init.disconnect(receiver, sender=JobRun)
    assert seen == [41]

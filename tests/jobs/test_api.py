"""The jobs API: /api/v1/tenants/{slug}/jobs/ — list, detail with logs, trigger, cancel."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from operations.jobs import services
from operations.jobs.models import JobRun, JobStatus
from tenants.models import AuditEvent, TenantRole
from tests.conftest import Actor
from tests.factories import make_member, make_token
from tests.isolation import TenantIsolationTests
from tests.jobs.conftest import reload

pytestmark = pytest.mark.django_db


def url(tenant, *parts) -> str:
    return "/".join([f"/api/v1/tenants/{tenant.slug}/jobs", *map(str, parts)]) + "/"


class TestJobRunIsolation(TenantIsolationTests):
    resource = "jobs"
    model = JobRun
    can_update = False
    can_delete = False
    detail_actions = ("cancel",)

    def make_object(self, tenant):
        return services.job_submit(tenant=tenant, kind="noop")

    def create_payload(self, tenant) -> dict:
        return {"kind": "noop", "parameters": {}}

    def test_foreign_logs_are_the_same_404_as_missing(self, caller, objects, tenant_a):
        _own, foreign = objects
        response = caller.client.get(self.url(tenant_a.slug, foreign.pk, "logs"))
        assert response.status_code == 404
        assert response.content == self.not_found_body(caller, tenant_a)


def test_triggering_answers_201_with_the_queued_run_and_sends_it_after_commit(
    admin_a, tenant_a, sent, committed
):
    with committed():
        response = admin_a.client.post(
            url(tenant_a), {"kind": "noop", "parameters": {"seconds": 1}}
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["kind"], body["parameters"]) == (
        "queued",
        "noop",
        {"seconds": 1.0},
    )
    assert body["triggered_by"]["type"] == "token"
    assert body["triggered_by"]["label"].startswith("acme-admin (token ")
    assert body["logs"] == []
    assert [m["task_id"] for m in sent] == [body["task_id"]]
    event = AuditEvent.objects.get(object_type="jobs.JobRun", object_id=str(body["id"]))
    assert (event.tenant_id, event.source) == (tenant_a.id, "api")


def test_trigger_validates_kind_and_parameters(admin_a, tenant_a):
    unknown = admin_a.client.post(url(tenant_a), {"kind": "nope"})
    assert unknown.status_code == 400
    assert "kind" in unknown.json()["error"]["fields"]
    bad = admin_a.client.post(url(tenant_a), {"kind": "noop", "parameters": {"seconds": 60}})
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"parameters.seconds"}
    not_an_object = admin_a.client.post(url(tenant_a), {"kind": "noop", "parameters": [1]})
    assert not_an_object.status_code == 400
    assert "parameters" in not_an_object.json()["error"]["fields"]


def test_staff_only_kinds_are_refused_to_clients_and_run_for_staff(
    admin_a, engineer_a, tenant_a, sent
):
    refused = admin_a.client.post(url(tenant_a), {"kind": "diagnostic"})
    assert refused.status_code == 403
    allowed = engineer_a.client.post(url(tenant_a), {"kind": "diagnostic"})
    assert allowed.status_code == 201, allowed.content


def test_viewers_and_read_tokens_cannot_trigger_or_cancel(tenant_a, sent):
    viewer = make_member(tenant_a, TenantRole.VIEWER, username="viewer")
    viewer_actor = Actor(viewer, make_token(viewer))
    admin = make_member(tenant_a, TenantRole.ADMIN, username="reader")
    reader = Actor(admin, make_token(admin, scopes=("read",)))
    run = services.job_submit(tenant=tenant_a, kind="noop")
    for actor in (viewer_actor, reader):
        assert actor.client.get(url(tenant_a)).status_code == 200
        assert actor.client.post(url(tenant_a), {"kind": "noop"}).status_code == 403
        assert actor.client.post(url(tenant_a, run.pk, "cancel")).status_code == 403
    assert reload(run).status == JobStatus.QUEUED


def test_cancel_a_queued_run_then_a_finished_one_conflicts(admin_a, tenant_a, sent):
    run = services.job_submit(tenant=tenant_a, kind="noop")
    response = admin_a.client.post(url(tenant_a, run.pk, "cancel"))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancel_requested_by"].startswith("acme-admin")
    again = admin_a.client.post(url(tenant_a, run.pk, "cancel"))
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


def test_detail_shows_logs_and_hides_the_traceback_from_clients(
    admin_a, engineer_a, tenant_a, eager, committed
):
    with committed():
        run = services.job_submit(tenant=tenant_a, kind="test_failing")
    client_view = admin_a.client.get(url(tenant_a, run.pk)).json()
    assert client_view["status"] == "failed"
    assert client_view["error"] == "ValueError: boom: the secret internals"
    assert "traceback" not in client_view
    assert [line["message"] for line in client_view["logs"]] == [
        "About to fail",
        "Failed: ValueError: boom: the secret internals",
    ]
    for listed in admin_a.client.get(url(tenant_a)).json()["results"]:
        assert "traceback" not in listed
    staff_view = engineer_a.client.get(url(tenant_a, run.pk)).json()
    assert "raise ValueError" in staff_view["traceback"]


def test_logs_can_be_polled_after_a_line(admin_a, tenant_a, eager, committed):
    with committed():
        run = services.job_submit(
            tenant=tenant_a, kind="test_self_cancelling", parameters={"cancel_at_step": 3}
        )
    first = admin_a.client.get(url(tenant_a, run.pk, "logs"), {"limit": 1}).json()
    assert [line["message"] for line in first["results"]] == ["did step 1"]
    rest = admin_a.client.get(url(tenant_a, run.pk, "logs"), {"after": first["next_after"]}).json()
    assert rest["results"][-1]["message"] == "Stopped: the run was cancelled."
    assert first["results"][-1]["id"] < rest["results"][0]["id"]
    assert admin_a.client.get(url(tenant_a, run.pk, "logs"), {"after": "x"}).status_code == 400


def test_list_filters_and_a_constant_number_of_queries(admin_a, tenant_a, sent):
    for _ in range(3):
        services.job_submit(tenant=tenant_a, kind="noop")
    done = services.job_submit(tenant=tenant_a, kind="test_failing")
    services.job_cancel(run=done, label="x")
    admin_a.client.get(url(tenant_a))  # the token's first use of the minute writes last_used
    with CaptureQueriesContext(connection) as few:
        response = admin_a.client.get(url(tenant_a))
    assert response.json()["count"] == 4
    for _ in range(20):
        services.job_submit(tenant=tenant_a, kind="noop")
    with CaptureQueriesContext(connection) as many:
        response = admin_a.client.get(url(tenant_a), {"page_size": 100})
    assert response.json()["count"] == 24
    assert len(many) == len(few)

    def count(**params):
        return admin_a.client.get(url(tenant_a), params).json()["count"]

    assert count(status="cancelled") == 1
    assert count(kind="test_failing") == 1
    assert count(status__in="queued,cancelled") == 24
    assert count(finished="true") == 1
    assert count(trigger="system") == 24


def test_kinds_lists_what_runs_per_tenant_and_who_may_run_it(admin_a, engineer_a, tenant_a):
    kinds = {k["name"]: k for k in admin_a.client.get(url(tenant_a, "kinds")).json()}
    assert kinds["noop"]["can_trigger"] is True
    assert kinds["diagnostic"]["can_trigger"] is False
    assert kinds["noop"]["parameters"]["seconds"]["type"] == "float"
    staff = {k["name"]: k for k in engineer_a.client.get(url(tenant_a, "kinds")).json()}
    assert staff["diagnostic"]["can_trigger"] is True

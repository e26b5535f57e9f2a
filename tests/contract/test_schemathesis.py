"""The published contract is the real one: schemathesis fuzzes every operation of the schema.

Each operation runs as a tenant admin and as an MSP admin, both with write-scoped tokens, in a
tenant holding a small estate; the tenant slug is fixed to that tenant and ``{id}`` to one of
its objects, so requests reach the views. Checks: no 5xx, every status documented, every
response inside its schema. Bounded (a few derandomised examples per operation, no coverage
phase) so that it runs in every ``make test``.
"""

from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from operations.compliance.models import Waiver
from operations.incidents import services as incident_services
from operations.readiness.catalogue import readiness_frameworks_load
from operations.readiness.models import Assessment
from operations.readiness.selectors import readiness_framework_current
from operations.readiness.services import readiness_rescore
from tenants.models import MspRole
from tenants.scoping import tenant_scope
from tests.conftest import Actor
from tests.factories import make_member, make_staff, make_token
from tests.incidents.factories import make_incident
from tests.inventory.estate import (
    make_ai_system,
    make_dataset,
    make_deployment,
    make_gpu_node,
    make_link,
    make_usage,
)

pytestmark = pytest.mark.django_db

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = get_wsgi_application()
# The coverage phase walks every combination of every parameter: minutes per list operation.
schema.config.phases.coverage.enabled = False

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
WRITE_SCOPES = ("read", "write", "ingest")


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Django's WSGI handler closes the connection after each request, and with it the test's
    transaction; its test client unhooks the same signals."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(params=["tenant_admin", "msp_admin"])
def actor(request, tenant_a):
    if request.param == "tenant_admin":
        user = make_member(tenant_a, username="contract-tenant-admin")
    else:
        user = make_staff(role=MspRole.ADMIN, username="contract-msp-admin")
    return Actor(user, make_token(user, scopes=WRITE_SCOPES))


@pytest.fixture
def estate(tenant_a):
    """One object of each main kind in the tenant, by route, for ``{id}`` path parameters."""
    node = make_gpu_node(tenant_a)
    system = make_ai_system(tenant_a)
    dataset = make_dataset(tenant_a)
    incident = make_incident(tenant_a)
    with tenant_scope(tenant_a.id):
        incident_services.incident_comment(
            tenant=tenant_a, incident=incident, body="Looking into it.", internal=False, user=None
        )
        waiver = Waiver.objects.create(
            tenant=tenant_a,
            check_code="ai_system.accountable_owner",
            reason="Owner being recruited.",
            approved_by="CISO",
            expires_at=timezone.now() + dt.timedelta(days=30),
        )
    readiness_frameworks_load()  # a transactional test may have flushed the migration's row
    framework = readiness_framework_current()
    with tenant_scope(tenant_a.id):
        draft = Assessment.objects.create(tenant=tenant_a, framework=framework)
        snapshot = readiness_rescore(tenant=tenant_a)
    return {
        "assessments": draft.pk,
        "scores": snapshot.pk,
        "compute": node.pk,
        "sites": node.site_id,
        "links": make_link(tenant_a).pk,
        "ai-systems": system.pk,
        "datasets": dataset.pk,
        "ai-system-datasets": make_usage(tenant_a, ai_system=system, dataset=dataset).pk,
        "deployments": make_deployment(tenant_a, ai_system=system, compute=node).pk,
        "incidents": incident.pk,
        "waivers": waiver.pk,
    }


def aim_at_the_tenant(case, tenant, estate) -> None:
    parameters = case.path_parameters or {}
    for name in ("tenant_slug", "slug"):
        if name in parameters:
            parameters[name] = tenant.slug
    if "id" in parameters:
        resource = case.path.split("/{id}")[0].rsplit("/", 1)[-1]
        if resource in estate:
            parameters["id"] = estate[resource]


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_its_published_contract(case, actor, tenant_a, estate):
    aim_at_the_tenant(case, tenant_a, estate)
    case.call_and_validate(headers={"Authorization": f"Bearer {actor.token}"}, checks=CHECKS)

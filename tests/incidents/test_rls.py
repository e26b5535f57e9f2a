"""Row-level security under the incident and outbox tables: raw SQL sees the scope only."""

from __future__ import annotations

import pytest
from django.db import connection

from operations.events.models import OutboxEvent
from operations.incidents import services
from operations.incidents.models import (
    AlertRule,
    Incident,
    IncidentCounter,
    Postmortem,
    PostmortemActionItem,
    TimelineEntry,
)
from tenants.scoping import tenant_scope
from tests.conftest import requires_postgres
from tests.incidents.alerting import make_rule
from tests.incidents.factories import act, make_incident

pytestmark = [requires_postgres, pytest.mark.django_db]

TABLES = [
    model._meta.db_table
    for model in (
        Incident,
        IncidentCounter,
        TimelineEntry,
        Postmortem,
        PostmortemActionItem,
        OutboxEvent,
        AlertRule,
    )
]


def raw_tenant_ids(table: str) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT tenant_id FROM {table}")  # noqa: S608 - our table names
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.parametrize("table", TABLES)
def test_raw_sql_sees_only_the_scoped_tenant(table, tenant_a, tenant_b):
    for tenant in (tenant_a, tenant_b):
        incident = act(tenant, services.incident_resolve, make_incident(tenant, severity="SEV1"))
        act(
            tenant,
            services.postmortem_save,
            incident,
            summary="s",
            action_items=[{"description": "d", "owner": "o"}],
        )
        make_rule(tenant)
    assert raw_tenant_ids(table) == set()  # no scope, no rows
    with tenant_scope(tenant_a.id):
        assert raw_tenant_ids(table) == {tenant_a.id}

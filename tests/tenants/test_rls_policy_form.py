"""Every isolation policy reads the scope's tenant ids once per query and checks a row with one
hash probe (a hashed SubPlan), not once per row nor against each id in turn; a database migrated
with an older form is brought to the new one."""

from __future__ import annotations

import pytest
from django.db import connection

from tenants.rls import POLICY_NAME, policies_refresh
from tests.conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db]

INITPLAN = (
    "tenant_id = ANY ((SELECT string_to_array(NULLIF(current_setting('app.tenant_ids', true), "
    "''), ','))::bigint[])"
)
PER_ROW = (
    "tenant_id = ANY (string_to_array(NULLIF(current_setting('app.tenant_ids', true), ''), ',')"
    "::bigint[])"
)


def policies() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, qual FROM pg_policies WHERE policyname = %s", [POLICY_NAME]
        )
        return dict(cursor.fetchall())


def test_every_policy_reads_the_scope_once_per_query_into_a_hash():
    found = policies()
    assert len(found) > 20  # every tenant-owned table
    assert all("SELECT" in qual for qual in found.values()), [
        table for table, qual in found.items() if "SELECT" not in qual
    ]
    assert all("unnest" in qual for qual in found.values()), [
        table for table, qual in found.items() if "unnest" not in qual
    ]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL app.tenant_ids = '1,2,3'")
        # The policy itself, as the planner applies it to a read of the table.
        cursor.execute("EXPLAIN SELECT count(*) FROM incidents_incident")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "hashed SubPlan" in plan


def test_the_migration_brings_a_per_row_policy_to_the_new_form():
    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER POLICY {POLICY_NAME} ON incidents_incident "
            f"USING ({PER_ROW}) WITH CHECK ({PER_ROW})"
        )
        cursor.execute(
            f"ALTER POLICY {POLICY_NAME} ON jobs_jobrun "
            f"USING (tenant_id IS NULL OR {PER_ROW}) WITH CHECK (tenant_id IS NULL OR {PER_ROW})"
        )
        cursor.execute(
            f"ALTER POLICY {POLICY_NAME} ON compliance_score "
            f"USING ({INITPLAN}) WITH CHECK ({INITPLAN})"
        )
    assert "SELECT" not in policies()["incidents_incident"]

    with connection.schema_editor() as editor:
        refreshed = policies_refresh(editor)

    after = policies()
    assert refreshed == len(after)
    assert "SELECT" in after["incidents_incident"]
    assert all("unnest" in qual for qual in after.values())
    assert "SELECT" in after["jobs_jobrun"]
    assert "IS NULL" in after["jobs_jobrun"]
    assert "IS NULL" not in after["incidents_incident"]

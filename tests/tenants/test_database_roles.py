"""The runtime role: DML under row-level security, and nothing that could switch the guards off.

The suite runs as the owner role (it needs CREATEDB for its test database). These tests grant
a second, existing role on the test database as ``migrate`` does in production, connect as it
and prove what it may and may not do. Creating that role takes a privilege the suite's role
must not have (CREATEROLE), so ``.ci/run`` creates it; where it is missing the tests say so and
skip. ``DATABASE_TEST_RUNTIME_ROLE`` names it (default ``groundwork_app``); libpq finds its
password, if it needs one, in ``PGPASSWORD`` or ``~/.pgpass``.
"""

from __future__ import annotations

import datetime as dt
import os

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from psycopg import errors

from tenants.database_roles import runtime_role_grant, runtime_role_problems
from tenants.models import OnboardingStep
from tenants.scoping import rls_set_statement, tenant_scope
from tests.conftest import requires_postgres

pytestmark = requires_postgres

RUNTIME_ROLE = os.environ.get("DATABASE_TEST_RUNTIME_ROLE", "groundwork_app")
AUDIT = "tenants_auditevent"
# A day no other test makes a telemetry partition for.
FAR_DAY = dt.date(2031, 1, 1)
FAR_PARTITION = f"telemetry_sample_block_p{FAR_DAY:%Y%m%d}"


@pytest.fixture(scope="session")
def runtime_role(django_db_setup, django_db_blocker) -> str:
    """The runtime role, granted on the test database exactly as ``migrate`` grants it."""
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", [RUNTIME_ROLE])
        if cursor.fetchone() is None:
            pytest.skip(
                f"needs the runtime role {RUNTIME_ROLE}: create it as .ci/run does (README, "
                "'Two database roles'), or name another in DATABASE_TEST_RUNTIME_ROLE"
            )
        runtime_role_grant(role=RUNTIME_ROLE)
    return RUNTIME_ROLE


@pytest.fixture
def runtime(runtime_role):
    """A connection to the test database as the runtime role: it sees committed data only, so
    tests that give it rows use ``transactional_db``."""
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        dbname=settings["NAME"],
        user=runtime_role,
    ) as runtime_connection:
        yield runtime_connection


@pytest.fixture
def steps(tenant_a, tenant_b):
    """One onboarding step (a table under forced RLS) per tenant, committed."""
    for tenant in (tenant_a, tenant_b):
        with tenant_scope(tenant.id):
            OnboardingStep.objects.create(
                tenant=tenant, key="contract", title=f"{tenant.slug} contract"
            )


def _in_scope(runtime_connection, *tenants) -> psycopg.Cursor:
    """A cursor whose transaction has the scope ``tenant_scope`` would set for ``tenants``."""
    cursor = runtime_connection.cursor()
    cursor.execute(*rls_set_statement(tenant.id for tenant in tenants))
    return cursor


def _titles(cursor) -> set[str]:
    cursor.execute("SELECT title FROM tenants_onboardingstep")
    return {title for (title,) in cursor.fetchall()}


def test_the_granted_role_is_confined(runtime_role, db):
    assert runtime_role_problems(role=runtime_role) == []


def test_it_reads_and_writes_rows_in_its_tenant_scope(runtime, transactional_db, steps, tenant_a):
    with runtime.transaction():
        cursor = _in_scope(runtime, tenant_a)
        assert _titles(cursor) == {"acme contract"}
        cursor.execute(
            "INSERT INTO tenants_onboardingstep (tenant_id, key, title, required, position, notes) "
            "VALUES (%s, 'kickoff', 'acme kickoff', true, 1, '')",
            [tenant_a.id],
        )
        cursor.execute("UPDATE tenants_onboardingstep SET notes = 'signed' WHERE key = 'contract'")
        assert cursor.rowcount == 1
        cursor.execute("DELETE FROM tenants_onboardingstep WHERE key = 'kickoff'")
        assert cursor.rowcount == 1
        # The audit log takes new events.
        cursor.execute(
            "INSERT INTO tenants_auditevent (occurred_at, tenant_id, actor_label, source, action, "
            "object_type, object_id, object_repr, changes, request_id) "
            "VALUES (now(), %s, 'runtime test', 'service', 'update', 'tenants.onboardingstep', "
            "'1', 'acme contract', '{}', '')",
            [tenant_a.id],
        )
    with tenant_scope(tenant_a.id):
        assert OnboardingStep.objects.get(key="contract").notes == "signed"


def test_row_level_security_hides_and_guards_another_tenants_rows(
    runtime, transactional_db, steps, tenant_a, tenant_b
):
    with runtime.transaction():
        cursor = _in_scope(runtime, tenant_b)
        assert _titles(cursor) == {"borealis contract"}
        cursor.execute("UPDATE tenants_onboardingstep SET title = 'hijacked'")
        assert cursor.rowcount == 1  # only B's own row is reachable
    with (
        pytest.raises(errors.InsufficientPrivilege, match="row-level security"),
        runtime.transaction(),
    ):
        _in_scope(runtime, tenant_b).execute(
            "INSERT INTO tenants_onboardingstep (tenant_id, key, title, required, position, notes) "
            "VALUES (%s, 'smuggled', 'x', true, 0, '')",
            [tenant_a.id],
        )
    with runtime.transaction(), runtime.cursor() as cursor:
        assert _titles(cursor) == set()  # no scope, no rows
    with tenant_scope(tenant_a.id):
        assert OnboardingStep.objects.get().title == "acme contract"


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE tenants_auditevent DISABLE TRIGGER tenants_auditevent_append_only",
        "ALTER TABLE tenants_auditevent DISABLE TRIGGER tenants_auditevent_no_truncate",
        "ALTER TABLE tenants_auditevent DISABLE TRIGGER ALL",
        "DROP TRIGGER tenants_auditevent_append_only ON tenants_auditevent",
        "ALTER TABLE tenants_onboardingstep NO FORCE ROW LEVEL SECURITY",
        "ALTER TABLE tenants_onboardingstep DISABLE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON tenants_onboardingstep",
        "ALTER TABLE telemetry_sample_block NO FORCE ROW LEVEL SECURITY",
        "TRUNCATE tenants_auditevent",
        "TRUNCATE tenants_onboardingstep",
        "DROP TABLE tenants_auditevent",
        "CREATE TABLE groundwork_intruder (id integer)",
        "CREATE FUNCTION groundwork_intruder() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
        "UPDATE tenants_auditevent SET action = 'delete'",
        "DELETE FROM tenants_auditevent",
    ],
)
def test_it_cannot_switch_off_the_guards_or_change_the_schema(runtime, statement):
    with pytest.raises(errors.InsufficientPrivilege), runtime.transaction():
        runtime.execute(statement)


def test_partitions_it_makes_belong_to_the_owner(runtime, runtime_role, db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        owner = cursor.fetchone()[0]
    # What an ingest or the maintenance task does when a day's partition is missing.
    with runtime.transaction():
        made = runtime.execute("SELECT telemetry_block_partition_create(%s)", [FAR_DAY]).fetchone()[
            0
        ]
    try:
        assert made
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_get_userbyid(relowner), relrowsecurity, relforcerowsecurity "
                "FROM pg_class WHERE relname = %s",
                [FAR_PARTITION],
            )
            assert cursor.fetchone() == (owner, True, True)
        assert runtime_role_problems(role=runtime_role) == []
        with pytest.raises(errors.InsufficientPrivilege), runtime.transaction():
            runtime.execute(f"ALTER TABLE {FAR_PARTITION} NO FORCE ROW LEVEL SECURITY")
    finally:
        with runtime.transaction():
            dropped = runtime.execute(
                "SELECT telemetry_block_partition_drop(%s)", [FAR_DAY]
            ).fetchone()[0]
    assert dropped


def test_granting_refuses_a_role_that_owns_the_tables(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        owner = cursor.fetchone()[0]
    with pytest.raises(CommandError, match="is an owner, not a runtime role"):
        call_command("grant_runtime_role", role=owner)
    with connection.cursor() as cursor:
        # The owner kept its own privileges (a revoke would have stripped them).
        cursor.execute("SELECT has_table_privilege(%s, %s, 'INSERT')", [owner, AUDIT])
        assert cursor.fetchone()[0]
    with pytest.raises(CommandError, match=f"role {owner} owns"):
        call_command("grant_runtime_role", role=owner, check=True)


def test_flush_empties_the_audit_log_and_puts_the_guard_back(transactional_db, tenant_a):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tenants_auditevent (occurred_at, tenant_id, actor_label, source, action, "
            "object_type, object_id, object_repr, changes, request_id) "
            "VALUES (now(), NULL, 'flush test', 'service', 'update', 'x', '1', 'x', '{}', '')"
        )
    call_command("flush", interactive=False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tenants_auditevent")
        assert cursor.fetchone()[0] == 0
        cursor.execute(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = 'tenants_auditevent_no_truncate'"
        )
        assert cursor.fetchone()[0] == "O"  # enabled again

from django.db import migrations

from tenants.rls import EnableTenantRowLevelSecurity

# A published report never changes: the database refuses an UPDATE of a published row, whoever
# asks (a regenerated report is a new version, a new row).
POSTGRES_GUARD = """
CREATE OR REPLACE FUNCTION reports_report_published_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'A published report is immutable; generate a new version';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER reports_report_published_immutable
    BEFORE UPDATE ON reports_report
    FOR EACH ROW WHEN (OLD.status = 'published')
    EXECUTE FUNCTION reports_report_published_immutable();
"""
POSTGRES_DROP = """
DROP TRIGGER IF EXISTS reports_report_published_immutable ON reports_report;
DROP FUNCTION IF EXISTS reports_report_published_immutable();
"""
SQLITE_GUARD = """
CREATE TRIGGER reports_report_published_immutable
BEFORE UPDATE ON reports_report
FOR EACH ROW WHEN OLD.status = 'published'
BEGIN
    SELECT RAISE(ABORT, 'A published report is immutable; generate a new version');
END;
"""
SQLITE_DROP = "DROP TRIGGER IF EXISTS reports_report_published_immutable;"


def _guard(forward: bool):
    def run(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        if vendor == "postgresql":
            schema_editor.execute(POSTGRES_GUARD if forward else POSTGRES_DROP)
        elif vendor == "sqlite":
            schema_editor.execute(SQLITE_GUARD if forward else SQLITE_DROP)

    return run


class Migration(migrations.Migration):
    dependencies = [("reports", "0001_initial")]

    operations = [
        EnableTenantRowLevelSecurity("report"),
        migrations.RunPython(_guard(True), _guard(False)),
    ]

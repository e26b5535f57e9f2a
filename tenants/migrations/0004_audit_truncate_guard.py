from django.db import migrations

# Row triggers never fire on TRUNCATE: a statement trigger with the same refusal closes that gap,
# for the table's owner too. ``manage.py flush`` lifts it for its own transaction only.
NO_TRUNCATE = """
CREATE TRIGGER tenants_auditevent_no_truncate
    BEFORE TRUNCATE ON tenants_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION tenants_auditevent_append_only();
"""
DROP_NO_TRUNCATE = "DROP TRIGGER IF EXISTS tenants_auditevent_no_truncate ON tenants_auditevent;"


def _postgres_only(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("tenants", "0003_user_manager")]

    operations = [
        migrations.RunPython(_postgres_only(NO_TRUNCATE), _postgres_only(DROP_NO_TRUNCATE)),
    ]

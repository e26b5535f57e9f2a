"""Django's ``flush``, able to empty the audit log: the one deliberate wipe of every table.

On PostgreSQL the audit table refuses TRUNCATE, for its owner too; this command lifts that
guard inside its own transaction only, so a failed flush leaves the guard in place.
"""

from __future__ import annotations

from django.core.management.commands import flush
from django.db import connections, transaction

from tenants.models import AuditEvent

TRUNCATE_GUARD = "tenants_auditevent_no_truncate"


class Command(flush.Command):
    def handle(self, **options):
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            return super().handle(**options)
        if options["interactive"]:
            # Ask before the guard is lifted: its lock would stop audited writes meanwhile.
            name = connection.settings_dict["NAME"]
            confirm = input(
                f'This will IRREVERSIBLY DESTROY all data in the "{name}" database, the audit '
                "log included.\nType 'yes' to continue, or 'no' to cancel: "
            )
            if confirm != "yes":
                self.stdout.write("Flush cancelled.")
                return None
        table = connection.ops.quote_name(AuditEvent._meta.db_table)
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {TRUNCATE_GUARD}")
            super().handle(**{**options, "interactive": False})
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {TRUNCATE_GUARD}")
        return None

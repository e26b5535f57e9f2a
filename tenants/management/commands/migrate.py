"""Django's ``migrate``, run as the owner role when ``DATABASE_OWNER_URL`` is set.

It then grants the runtime role (``DATABASE_URL``'s) its DML privileges and fails when that
role could still alter the schema or its guards. Without the owner URL, or with an explicit
``--database``, it is Django's command unchanged.
"""

from __future__ import annotations

from django.core.management.base import CommandError
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS

from tenants.database_roles import (
    OWNER_ALIAS,
    owner_configured,
    owner_session,
    runtime_role_grant,
    runtime_role_name,
    runtime_role_problems,
)


class Command(migrate.Command):
    help = (
        migrate.Command.help + " With DATABASE_OWNER_URL set it runs as that role, then grants "
        "DATABASE_URL's role DML only."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        # None: the owner's connection when there is one, else "default".
        parser.set_defaults(database=None)

    def execute(self, *args, **options):
        database = options.get("database") or (
            OWNER_ALIAS if owner_configured() else DEFAULT_DB_ALIAS
        )
        options["database"] = database
        if database != OWNER_ALIAS:
            return super().execute(*args, **options)
        with owner_session():
            output = super().execute(*args, **options)
        if not (options.get("plan") or options.get("check_unapplied")):
            role = runtime_role_name()
            runtime_role_grant(role=role, using=OWNER_ALIAS)
            problems = runtime_role_problems(role=role, using=OWNER_ALIAS)
            if problems:
                raise CommandError("The runtime role is not confined: " + "; ".join(problems))
            if options.get("verbosity", 1) >= 1:
                self.stdout.write(f"Granted the runtime role {role} DML only; it owns nothing.")
        return output

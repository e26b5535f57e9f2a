"""Grant the runtime role DML only, and check that it cannot alter the schema or its guards.

``migrate`` does this itself when ``DATABASE_OWNER_URL`` is set; run this where migrations run
otherwise (as the owner), or to re-check a role.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from tenants.database_roles import (
    OWNER_ALIAS,
    owner_configured,
    runtime_role_grant,
    runtime_role_name,
    runtime_role_problems,
)


class Command(BaseCommand):
    help = (
        "Grant the runtime role USAGE on the schema, DML on every table (SELECT and INSERT on "
        "the audit log), sequences and functions, also by default for what the owner makes "
        "later; then fail if the role could still alter the schema or its guards."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--role",
            help="The runtime role (default: DATABASE_URL's user when DATABASE_OWNER_URL is set).",
        )
        parser.add_argument(
            "--database",
            choices=tuple(connections),
            help="The owner's connection (default: 'owner' when DATABASE_OWNER_URL is set).",
        )
        parser.add_argument(
            "--check", action="store_true", help="Only check the role; grant nothing."
        )

    def handle(self, *args, **options):
        database = options["database"] or (OWNER_ALIAS if owner_configured() else DEFAULT_DB_ALIAS)
        role = options["role"] or (runtime_role_name() if owner_configured() else None)
        if not role:
            raise CommandError("Name the runtime role: --role NAME (or set DATABASE_OWNER_URL).")
        if connections[database].vendor != "postgresql":
            raise CommandError("Database roles are PostgreSQL's; this database has none.")
        if not options["check"]:
            try:
                runtime_role_grant(role=role, using=database)
            except ValueError as error:
                raise CommandError(str(error)) from error
        problems = runtime_role_problems(role=role, using=database)
        if problems:
            raise CommandError("The runtime role is not confined: " + "; ".join(problems))
        done = "holds" if options["check"] else "was granted"
        self.stdout.write(f"Role {role} {done} DML only and owns nothing.")

"""Issue an API token from the command line. The secret is printed once, as the last line."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants import services
from tenants.audit import AuditActor, audit_actor
from tenants.models import Tenant, TokenScope

User = get_user_model()


# The service's field names, as this command's options.
_OPTION_FOR_FIELD = {
    "user": "--user",
    "tenant": "--tenant",
    "scopes": "--scopes",
    "name": "--name",
    "expires_in_days": "--expires-days",
}


def _validation_message(error: ValidationError) -> str:
    if not hasattr(error, "message_dict"):
        return " ".join(error.messages)
    return " ".join(
        f"{_OPTION_FOR_FIELD.get(field, field)}: {' '.join(messages)}"
        for field, messages in error.message_dict.items()
    )


class Command(BaseCommand):
    help = (
        "Issue an API token for a user and print it once. Client users' tokens are bound to "
        "their tenant; staff tokens reach every tenant the user can see unless --tenant is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="Username of the token's owner.")
        parser.add_argument("--tenant", help="Slug of the tenant the token is bound to.")
        parser.add_argument(
            "--scopes",
            nargs="+",
            default=[TokenScope.READ.value],
            metavar="SCOPE",
            help=f"One or more of: {', '.join(TokenScope.values)} (default: read).",
        )
        parser.add_argument("--name", default="", help="A label for the token.")
        parser.add_argument(
            "--expires-days", type=int, default=None, help="Expire after N days (1-3650)."
        )

    def handle(self, *args, **options):
        username: str = options["user"]
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named '{username}'.")
        if not user.is_active:
            raise CommandError(f"User '{username}' is inactive; their tokens would not work.")

        tenant = None
        if options["tenant"]:
            tenant = Tenant.objects.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"No tenant with slug '{options['tenant']}'.")

        scopes = list(dict.fromkeys(options["scopes"]))
        unknown = [scope for scope in scopes if scope not in TokenScope.values]
        if unknown:
            raise CommandError(
                f"Unknown scope(s): {', '.join(unknown)}. "
                f"Choose from: {', '.join(TokenScope.values)}."
            )

        name = options["name"] or f"{username} (issue_token)"
        with audit_actor(AuditActor(label="issue_token", source="command")):
            try:
                token, plaintext = services.token_issue(
                    user=user,
                    name=name,
                    tenant=tenant,
                    scopes=scopes,
                    expires_in_days=options["expires_days"],
                )
            except ValidationError as error:
                raise CommandError(_validation_message(error)) from error

        bound = f"tenant {token.tenant.slug}" if token.tenant else "every tenant the user can see"
        expires = (
            f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC"
            if token.expires_at
            else "never expires"
        )
        self.stdout.write(
            f"Issued token '{token.name}' (prefix {token.prefix}) for {user.get_username()}, "
            f"{bound}, scopes {', '.join(token.scopes)}, {expires}. "
            "It is shown only this once:"
        )
        self.stdout.write(plaintext)

"""Sign-in lockout: django-axes' database handler with a second, higher limit per address.

Axes compares one failure count with one limit. The count here is the failures of this
username from this address, raised to the limit when the address alone has failed
``LOGIN_ADDRESS_FAILURE_LIMIT`` times (many usernames tried from one place: password spraying).
"""

from __future__ import annotations

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit
from django.conf import settings
from django.db.models import Sum


def _failures(attempts) -> int:
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


class LoginLockoutHandler(AxesDatabaseHandler):
    """Needs ``AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]``."""

    def get_failures(self, request, credentials: dict | None = None) -> int:
        per_username_and_address, per_address = (
            _failures(attempts) for attempts in self.get_user_attempts(request, credentials)
        )
        if per_address >= settings.LOGIN_ADDRESS_FAILURE_LIMIT:
            return max(per_username_and_address, get_failure_limit(request, credentials))
        return per_username_and_address

    def reset_user_attempts(self, request, credentials: dict | None = None) -> int:
        # A success clears that username's failures from that address only: signing in to
        # one's own account must not wipe the address's record of trying everybody else's.
        per_username_and_address = self.filter_user_attempts(request, credentials)[0]
        deleted, _ = per_username_and_address.delete()
        return deleted

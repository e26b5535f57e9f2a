from __future__ import annotations

import zoneinfo

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"'{value}' is not a known time zone.")


class MspRole(models.TextChoices):
    ADMIN = "msp_admin", "MSP admin"
    ENGINEER = "msp_engineer", "MSP engineer"
    ANALYST = "msp_analyst", "MSP analyst (read-only)"


class GroundworkUserManager(UserManager):
    def create_superuser(self, username, email=None, password=None, **extra_fields):
        # A superuser is an MSP admin: every Groundwork admin page is gated on msp_role.
        extra_fields.setdefault("msp_role", MspRole.ADMIN)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    """A person: MSP staff (``msp_role`` set) or a client user (one membership, no role)."""

    msp_role = models.CharField(max_length=20, choices=MspRole.choices, blank=True, default="")
    timezone = models.CharField(
        max_length=64,
        blank=True,
        default="",
        validators=[validate_timezone],
        help_text="MSP staff: the time zone pages show times in (empty: UTC). Client users "
        "see their tenant's.",
    )

    objects = GroundworkUserManager()

    class Meta:
        db_table = "tenants_user"

    @property
    def is_msp_staff(self) -> bool:
        return bool(self.msp_role) and self.is_active

    @property
    def is_msp_admin(self) -> bool:
        return self.msp_role == MspRole.ADMIN and self.is_active

    @property
    def can_write_as_staff(self) -> bool:
        return self.msp_role in (MspRole.ADMIN, MspRole.ENGINEER) and self.is_active

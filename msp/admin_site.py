"""The admin site: for active MSP staff only, whatever ``is_staff`` says, with a second factor."""

from django.contrib.admin import AdminSite


class GroundworkAdminSite(AdminSite):
    site_header = "Groundwork — MSP console"
    site_title = "Groundwork"
    index_title = "Operate every client's AI estate"

    def has_permission(self, request):
        user = request.user
        # is_verified comes from django-otp's middleware; without it, nobody is verified.
        verified = getattr(user, "is_verified", lambda: False)()
        return bool(user.is_active and user.is_staff and getattr(user, "msp_role", "") and verified)

"""The Django admin at /admin/ for MSP staff.

``tenants.admin.base`` holds the base every tenant-bound admin uses (later apps included);
the modules below register this app's models on import.
"""

from tenants.admin import audit_log, onboarding, people, signin, tenant, tokens  # noqa: F401

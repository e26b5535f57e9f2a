"""Demo compliance data (filled in by the compliance work)."""


def seed_compliance(tenant) -> None:
    """Idempotent: run the tenant's compliance scan, add a waiver."""

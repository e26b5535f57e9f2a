"""Demo optimisation data (filled in by the optimisation work)."""


def seed_optimisation(tenant) -> None:
    """Idempotent: refresh the tenant's recommendations from its demo telemetry."""

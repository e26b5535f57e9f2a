"""Exceptions a job kind raises, or meets, while it runs."""

from __future__ import annotations


class TransientJobError(Exception):
    """A failure worth retrying (a timeout, a busy upstream): the run is retried with capped
    exponential backoff and jitter until its ``max_attempts`` are spent, then fails."""


class JobCancelled(Exception):
    """Raised at a progress point once someone asked to cancel the run."""


class LeaseLost(Exception):
    """This attempt no longer owns the run (it was taken over, or finished elsewhere).

    The attempt stops without writing anything more: the owner's writes win.
    """


class UnknownJobKind(LookupError):
    pass


class JobStateConflict(Exception):
    """The run is not in a state that allows the operation (e.g. cancelling a finished run)."""

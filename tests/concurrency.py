"""Races on PostgreSQL: run the same work in threads released at one instant, each thread on its
own database connection (as the app's ordinary role, so row-level security is in force)."""

from __future__ import annotations

import threading

from django.db import connection


def run_together(count: int, work, *, timeout: float = 60) -> list:
    """Run ``work(index)`` in ``count`` threads released together; their results, in order.

    Any exception in a thread fails the caller's test (after every thread has finished).
    """
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list = []

    def runner(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = work(index)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not errors, errors
    return results

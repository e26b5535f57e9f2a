"""Keep one Celery worker running: start it again whenever it exits without being asked to.

For `make demo` (honcho), where one process ending stops all of them and nothing restarts a
worker that died (kombu's Redis transport can end one with an "Unrecoverable error" after an
abrupt broker loss). In production systemd does this job (``deploy/systemd/``).

The worker runs as a child in the supervisor's process group, so a signal to the group
(honcho's SIGTERM, the CI's SIGKILL fallback) reaches both. SIGTERM or SIGINT to the
supervisor stops it: the child gets SIGTERM (Celery's warm shutdown, idempotent if the group
signal already delivered one) and the supervisor exits with the child's exit code.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
# A child that ran at least this long was healthy: the next restart waits the first backoff.
HEALTHY_AFTER_SECONDS = 60.0


def worker_command(worker_args: Sequence[str]) -> list[str]:
    """The Celery worker command line, with this interpreter (the project's virtualenv)."""
    return [sys.executable, "-m", "celery", "-A", "msp", "worker", *worker_args]


def worker_supervise(
    *,
    command: Sequence[str],
    backoff_seconds: float = BACKOFF_FIRST_SECONDS,
    say: Callable[[str], None],
) -> int:
    """Run ``command`` until SIGTERM/SIGINT, restarting it (with a doubling backoff, capped)
    whenever it exits on its own. Returns the last child's exit code."""
    stop_signal: int | None = None
    child: subprocess.Popen | None = None

    def on_stop(signum, frame):
        nonlocal stop_signal
        stop_signal = signum
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, on_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    delay = backoff_seconds
    try:
        while True:
            started = time.monotonic()
            child = subprocess.Popen(list(command))  # noqa: S603 - our own celery command line
            if stop_signal is not None:  # the signal came between the check and the start
                child.send_signal(signal.SIGTERM)
            say(f"supervisor: started the worker, pid {child.pid}")
            code = child.wait()
            if stop_signal is not None:
                name = signal.Signals(stop_signal).name
                say(f"supervisor: worker stopped (exit code {code}) on {name}")
                return code
            if time.monotonic() - started >= HEALTHY_AFTER_SECONDS:
                delay = backoff_seconds
            say(f"supervisor: worker exited unexpectedly (exit code {code}); restart in {delay:g}s")
            deadline = time.monotonic() + delay
            while stop_signal is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if stop_signal is not None:
                return code
            delay = min(delay * 2, BACKOFF_MAX_SECONDS)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

"""Real Celery workers for the failure tests, each a bounded subprocess that is always stopped.

``WorkerPool`` gives a test a broker namespace of its own (a key prefix on Redis when
``REDIS_URL`` is set, private folders with the filesystem transport otherwise) and starts
workers on it that use the test database. The test process is pointed at the same broker with
``pool.broker()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection

from msp.queues import QUEUES
from tests.jobs.broker import CLOSED_PORT_BROKER, broker_at

ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT = 30


def why_workers_cannot_share_the_database() -> str | None:
    """Why a worker subprocess cannot see the test database, or None if it can."""
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        return (
            "the SQLite test database is in memory; a worker subprocess needs a file "
            '(set DATABASES["default"]["TEST"]["NAME"] in tests/settings.py) or PostgreSQL'
        )
    return None


class Worker:
    def __init__(self, process: subprocess.Popen, log_path: Path):
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no acknowledgement, nothing written on the way out."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """The test is over: SIGKILL the worker's whole process group (a prefork pool's child, a
        supervised worker). A warm shutdown here proved nothing and cost ~5 s a worker (the idle
        solo loop notices SIGTERM only after its 2 s drain, then the exit's garbage collection);
        warm shutdown has its own test (test_worker_supervisor)."""
        with contextlib.suppress(ProcessLookupError):  # the group is gone already
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)


class WorkerPool:
    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.workers: list[Worker] = []
        redis_url = os.environ.get("REDIS_URL", "")
        if redis_url:
            self.url = redis_url
            self.options = {
                "global_keyprefix": f"gwtest-{uuid.uuid4().hex[:12]}:",
                # A killed worker's unacknowledged message comes back within seconds.
                "visibility_timeout": 6,
                "unacked_restore_interval": 1,
                "unacked_restore_throttle": 1,
            }
        else:
            folders = {name: tmp_path / "broker" / name for name in ("queue", "done", "control")}
            for folder in folders.values():
                folder.mkdir(parents=True, exist_ok=True)
            self.url = "filesystem://"
            self.options = {
                "data_folder_in": str(folders["queue"]),
                "data_folder_out": str(folders["queue"]),
                "processed_folder": str(folders["done"]),
                "control_folder": str(folders["control"]),
                "store_processed": False,
                # A message is picked up within 0.1 s, not the default 1 s.
                "polling_interval": 0.1,
            }

    def broker(self):
        """Point this process's Celery app at the pool's broker."""
        return broker_at(self.url, self.options)

    @staticmethod
    def broker_down():
        """Point this process at a port where no broker listens."""
        return broker_at(CLOSED_PORT_BROKER)

    def start(
        self,
        *,
        pool: str = "solo",
        lease_seconds: int | None = None,
        supervised: bool = False,
        queues: tuple[str, ...] = QUEUES,
    ) -> Worker:
        """A worker; ``pool="prefork"`` runs the jobs in a pool child (one), ``lease_seconds``
        overrides the short test lease, ``supervised`` runs it under ``manage.py
        supervise_worker`` as the demo's Procfile does (the process is then the supervisor),
        ``queues`` are the queues it consumes (all of them unless told)."""
        name = f"gwtest-{uuid.uuid4().hex[:8]}"
        log_path = self.tmp_path / f"{name}.log"
        env = {
            **os.environ,
            **({"GROUNDWORK_TEST_LEASE_SECONDS": str(lease_seconds)} if lease_seconds else {}),
            "DJANGO_SETTINGS_MODULE": "tests.jobs.worker_settings",
            "GROUNDWORK_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
            "GROUNDWORK_TEST_BROKER_URL": self.url,
            "GROUNDWORK_TEST_BROKER_OPTIONS": json.dumps(self.options),
            "GROUNDWORK_VAR_DIR": str(settings.VAR_DIR),
        }
        with log_path.open("w") as log:
            launcher = (
                [sys.executable, "manage.py", "supervise_worker", "--backoff", "0.5", "--"]
                if supervised
                else [sys.executable, "-m", "celery", "-A", "msp", "worker"]
            )
            process = subprocess.Popen(
                [
                    *launcher,
                    "-Q",
                    ",".join(queues),
                    "--pool",
                    pool,
                    "--concurrency",
                    "1",
                    "-n",
                    f"{name}@%h",
                    "-l",
                    "info",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # A process group of its own, so that stop() reaches its children too.
                start_new_session=True,
            )
        worker = Worker(process, log_path)
        self.workers.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {w.log_path.name}\n{w.log()[-4000:]}" for w in self.workers)


def celery_worker_pid(root_pid: int) -> int | None:
    """The Celery worker's main process: ``root_pid`` itself or its nearest descendant running
    ``celery ... worker`` (read from /proc; None if there is none)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone since the listing
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    queue = [root_pid]
    while queue:
        pid = queue.pop(0)
        try:
            argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"celery" in argv and b"worker" in argv:
            return pid
        queue.extend(children.get(pid, []))
    return None


def wait_until(
    condition: Callable[[], bool],
    *,
    what: str,
    timeout: float = 90,
    every: float = 0.2,
    between: Callable[[], object] | None = None,
    pool: WorkerPool | None = None,
) -> None:
    """Poll ``condition`` (bounded); run ``between`` after each miss (e.g. beat's recovery)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"gave up after {timeout:.0f}s waiting for: {what}\n{pool.logs() if pool else ''}"
            )
        if between is not None:
            between()
        time.sleep(every)

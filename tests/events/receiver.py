"""A real HTTP receiver for webhook tests and the bench: ``http.server`` in a thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes


@dataclass
class WebhookReceiver:
    """Records every POST; answers the statuses in ``script`` in turn, then ``status``.

    ``hold``: that many first requests get no answer until ``release()`` (a sender that dies
    mid-request); ``arrived`` records every request as it comes, answered or not.
    """

    status: int = 200
    script: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    hold: int = 0
    arrived: list[Received] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do
            # One write per reply and no Nagle: else each request waits on a delayed ACK.
            disable_nagle_algorithm = True
            wbufsize = 1 << 16

            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.arrived.append(Received(self.path, headers, body))
                    held = receiver.hold > 0
                    receiver.hold -= int(held)
                if held:
                    receiver._released.wait(timeout=120)
                    return  # no answer: the sender is gone by now
                with receiver._lock:
                    status = receiver.script.pop(0) if receiver.script else receiver.status
                    receiver.answered.append(status)
                    if 200 <= status < 300:
                        receiver.received.append(
                            Received(
                                self.path, {k.lower(): v for k, v in self.headers.items()}, body
                            )
                        )
                reply = b'{"ok": true}' if status < 300 else b'{"error": "try later"}'
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self._lock = threading.Lock()
        self._released = threading.Event()
        self.server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port_bound}/hook"

    @property
    def port_bound(self) -> int:
        return self.server.server_address[1]

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

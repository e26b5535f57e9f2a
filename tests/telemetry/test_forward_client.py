"""The forwarding client's request on the wire (``VictoriaMetricsClient.forward``, straight on
urllib3's pool): the body as is, the labels as query arguments, the caller's headers, the
insert URL's credentials; and what each kind of answer becomes. Against a small local server
that records what it receives (tests/telemetry/victoriametrics/ covers the real store)."""

from __future__ import annotations

import base64
import http.server
import socket
import threading
from urllib.parse import parse_qsl, urlsplit

import pytest
from rest_framework import exceptions

from operations.telemetry.backends.victoriametrics import (
    TelemetryBackendUnavailable,
    VictoriaMetricsClient,
)

BODY = b'DCGM_FI_DEV_GPU_UTIL{gpu="0",Hostname="gpu-node-01"} 97 1795600800000\n' * 2000


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as VictoriaMetrics
    answers: list[tuple[int, bytes]] = []
    received: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status, text = self.answers.pop(0) if self.answers else (204, b"")
        self.send_response(status)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    _Recorder.answers, _Recorder.received = [], []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _client(url: str) -> VictoriaMetricsClient:
    return VictoriaMetricsClient(insert_url=url, select_url=url, timeout=5)


def _forward(client: VictoriaMetricsClient) -> None:
    client.forward(
        "/api/v1/import/prometheus",
        BODY,
        params=[("extra_label", "tenant=7"), ("extra_label", "kind=scrape"), ("timestamp", "1")],
        headers={"Content-Type": "text/plain"},
    )


def test_the_body_goes_as_is_with_the_labels_and_headers(recorder):
    port = recorder.server_address[1]
    client = _client(f"http://127.0.0.1:{port}/insert/0/prometheus/")
    _forward(client)
    _forward(client)  # the same kept-alive connection
    first, second = _Recorder.received
    assert first["body"] == BODY
    assert first["headers"]["Content-Type"] == "text/plain"
    assert first["headers"]["Content-Length"] == str(len(BODY))
    path = urlsplit(first["path"])
    assert path.path == "/insert/0/prometheus/api/v1/import/prometheus"
    assert parse_qsl(path.query) == [
        ("extra_label", "tenant=7"),
        ("extra_label", "kind=scrape"),
        ("timestamp", "1"),
    ]
    assert "Authorization" not in first["headers"]
    assert second["path"] == first["path"]


def test_the_insert_urls_credentials_are_sent(recorder):
    port = recorder.server_address[1]
    _forward(_client(f"http://gw:s3cret@127.0.0.1:{port}"))
    expected = "Basic " + base64.b64encode(b"gw:s3cret").decode()
    assert _Recorder.received[0]["headers"]["Authorization"] == expected


def test_a_refusal_is_a_validation_error_with_the_stores_reason(recorder):
    _Recorder.answers = [(400, b"cannot parse\n  line 1: bad   label")]
    with pytest.raises(exceptions.ValidationError) as refused:
        _forward(_client(f"http://127.0.0.1:{recorder.server_address[1]}"))
    assert refused.value.detail == {
        "body": ["The telemetry store refused the body: cannot parse line 1: bad label"]
    }


def test_a_server_error_is_unavailable(recorder):
    _Recorder.answers = [(503, b"overloaded")]
    with pytest.raises(TelemetryBackendUnavailable):
        _forward(_client(f"http://127.0.0.1:{recorder.server_address[1]}"))


def test_nothing_listening_is_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TelemetryBackendUnavailable):
        _forward(_client(f"http://127.0.0.1:{port}"))


def test_a_pool_closed_meanwhile_is_taken_again(recorder):
    client = _client(f"http://127.0.0.1:{recorder.server_address[1]}")
    _forward(client)
    # What urllib3 may do to a pool its manager evicts: drop it and close it.
    manager = client._session.get_adapter(client.insert_url).poolmanager
    manager.clear()
    client._forward_target("/api/v1/import/prometheus")[0].close()
    _forward(client)
    assert len(_Recorder.received) == 2

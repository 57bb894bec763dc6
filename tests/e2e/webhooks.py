"""A distributor's two ways to receive alerts, for the end-to-end tests: a webhook endpoint (a real
HTTP server on a free port that records every request and answers 204) and a live-stream client."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


@dataclass
class ReceivedRequest:
    headers: dict[str, str]
    body: bytes
    received_at: float  # time.time()

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class WebhookReceiver:
    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(ReceivedRequest(dict(self.headers.items()), body, time.time()))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/pantau"

    def __enter__(self) -> WebhookReceiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class StreamedEvent:
    event_type: str
    data: dict
    received_at: float  # time.time()


class AlertStreamListener:
    """A small client of the API's live alert stream (SSE), reading in the background from the
    moment it is entered, as a browser tab left open would."""

    def __init__(self, url: str, api_key: str) -> None:
        self.url, self.api_key = url, api_key
        self.events: list[StreamedEvent] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()

    def _read(self) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "text/event-stream"}
        try:
            with httpx.stream("GET", self.url, headers=headers, timeout=httpx.Timeout(10, read=None)) as response:
                response.raise_for_status()
                event_type = "message"
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("event:"):
                        event_type = line.split(":", 1)[1].strip()
                    elif line.startswith("data:"):
                        self.events.append(StreamedEvent(event_type, json.loads(line.split(":", 1)[1]), time.time()))
                    elif not line:
                        event_type = "message"
        except BaseException as exc:  # noqa: BLE001 (reported by the test that reads the stream)
            if not self._stop.is_set():
                self.error = exc

    def __enter__(self) -> AlertStreamListener:
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()

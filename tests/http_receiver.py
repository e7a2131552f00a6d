"""A tiny local HTTP server standing in for our own endpoints in tests that
talk to the simulator: it captures every POST and answers ``responder(request)``."""

import json
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest


@dataclass(frozen=True)
class Captured:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))


class CapturingReceiver:
    def __init__(self, *, ok_body: bytes, fail_body: bytes) -> None:
        self.captured: queue.Queue[Captured] = queue.Queue()
        self.responder: Callable[[Captured], int] = lambda request: 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = Captured(path=self.path, headers=dict(self.headers.items()), body=body)
                receiver.captured.put(request)
                status = receiver.responder(request)
                answer = ok_body if status == 200 else fail_body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = False
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})

    def next(self, timeout: float = 5.0) -> Captured:
        return self.captured.get(timeout=timeout)

    def assert_no_more(self, wait: float = 0.3) -> None:
        with pytest.raises(queue.Empty):
            self.captured.get(timeout=wait)


@contextmanager
def running_receiver(**bodies: bytes) -> Iterator[CapturingReceiver]:
    receiver = CapturingReceiver(**bodies)
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        receiver.thread.join(timeout=5)

"""A real HTTP receiver on 127.0.0.1 standing in for an operator's webhook (Slack, Teams...)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET_PATH = "/services/T0000/B0000/XXXXSECRET"
SECRET_QUERY = "token=hunter2"


@dataclass
class Receiver:
    """Answers each POST with the next scripted (status, delay); 200 once the script runs out."""

    url: str
    script: list[tuple[int, float]] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)

    def payloads(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            rec = box[0]
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            rec.requests.append({"path": self.path, "body": body,
                                 "content_type": self.headers.get("Content-Type")})
            status, delay = rec.script.pop(0) if rec.script else (200, 0.0)
            time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout test): nothing to answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    host, port = server.server_address[:2]
    box.append(Receiver(url=f"http://{host}:{port}{SECRET_PATH}?{SECRET_QUERY}"))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        server.shutdown()
        server.server_close()

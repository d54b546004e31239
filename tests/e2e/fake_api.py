"""What the fake model APIs (fake_anthropic.py, fake_openai.py) share: a threaded stdlib HTTP
server on 127.0.0.1 (port 0: ephemeral), its start and stop, the plumbing of a request handler
(body, JSON answers, noticing a client that went away) and the command-line entry point.

A fake subclasses ``LoopbackServer`` (setting ``name`` and ``handler``) and ``Handler`` (its
verbs); the server hands itself to its handlers as ``self.fake``.
"""

import argparse
import json
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple


class Gone(Exception):
    """The client disconnected while its answer was being prepared."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: "LoopbackServer"  # set on the subclass made per server
    # Headers every JSON answer carries besides the content's.
    extra_headers: Tuple[Tuple[str, str], ...] = ()

    def log_message(self, fmt, *args):  # keep test output quiet
        if self.fake.verbose:
            sys.stderr.write("%s: %s\n" % (self.fake.name, fmt % args))

    def _read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _send_json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in self.extra_headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _client_gone(self) -> bool:
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _wait(self, secs: float) -> None:
        """Sleep in small steps; raise Gone when the client disconnects."""
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            if self._client_gone():
                raise Gone()
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


class LoopbackServer:
    """A fake API's server: thread-safe; start()/stop() or a context manager."""

    name = "fake"
    handler = Handler

    def __init__(self, host: str = "127.0.0.1", port: int = 0, verbose: bool = False):
        self.host = host
        self.port = port
        self.verbose = verbose
        self._lock = threading.Lock()
        self._abandoned = 0
        self._log: List[Dict[str, Any]] = []
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    def start(self):
        if self._server is not None:
            return self
        handler = type("Handler", (self.handler,), {"fake": self})
        srv = ThreadingHTTPServer((self.host, self.port), handler)
        srv.daemon_threads = True
        self._server = srv
        self.port = srv.server_address[1]
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        srv, self._server = self._server, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return "http://%s:%d" % (self.host, self.port)

    @property
    def abandoned(self) -> int:
        """Slow answers whose client disconnected before the end (a cancelled turn)."""
        with self._lock:
            return self._abandoned

    def _note_abandoned(self) -> None:
        with self._lock:
            self._abandoned += 1


def serve(make, doc: str, argv=None) -> int:
    """The script entry point: ``make(port=, verbose=)`` a server, print its URL, serve until
    interrupted."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    api = make(port=args.port, verbose=args.verbose).start()
    print(api.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
    return 0


def text_chunks(text: str, parts: int = 4) -> List[str]:
    """`text` cut into up to `parts` non-empty pieces that concatenate to it."""
    size = max(1, -(-len(text) // parts))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]

"""A partner's notification receiver, run as its own process: ``python -m tests.partners.receiver PORT LOG MODE``.

Every request is appended to LOG as one JSON line (path, headers, the body's bytes
as text), then answered as MODE says: ``ok`` (a SNAP success), ``fail:N`` (HTTP
500 for the first N requests, then success), ``hang`` (never answers), ``500``,
``non-success`` (HTTP 200 with ``responseCode`` 5005200), ``redirect`` (307, method kept, to
another path of this server, which would answer success).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SUCCESS = b'{"responseCode":"2005200","responseMessage":"Successful"}'


def main() -> None:
    port, log_path, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    lock = threading.Lock()
    seen = [0]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                seen[0] += 1
                count = seen[0]
                with open(log_path, "a") as log:
                    entry = {"path": self.path, "headers": dict(self.headers.items()), "body": body.decode()}
                    log.write(json.dumps(entry) + "\n")
            if mode == "hang":
                time.sleep(3600)
            if mode == "redirect" and self.path != "/followed":
                self._answer(307, b"", {"Location": "/followed"})
            elif mode == "500" or (mode.startswith("fail:") and count <= int(mode.split(":")[1])):
                self._answer(500, b'{"responseCode":"5005200","responseMessage":"General Error"}')
            elif mode == "non-success":
                self._answer(200, b'{"responseCode":"5005200","responseMessage":"General Error"}')
            else:
                self._answer(200, SUCCESS)

        def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

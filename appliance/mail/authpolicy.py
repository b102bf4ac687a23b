"""Logins that keep failing from one address are turned away for a while.

Dovecot checks every login (IMAP, and SMTP AUTH, which Postfix hands to Dovecot) with an
authentication policy server before the password, and reports each result after it
(Dovecot's auth_policy_*). This is that server: it counts the failures per client address
and refuses an address with LIMIT failures in the last WINDOW seconds, whatever password
it tries next, until the oldest of them ages out. Other addresses are not held back.
Dovecot still answers every wrong password slowly (auth_failure_delay).

Standard library only: it runs in the box's mail filter (milter.py), on 127.0.0.1.
"""

import json
import threading
import time
from collections import OrderedDict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LIMIT = 10  # failed logins from one address ...
WINDOW = 900  # ... within this many seconds: refused until the oldest is that old
ADDRESSES_MAX = 10_000  # addresses remembered at once (the longest-quiet are forgotten)


class Failures:
    def __init__(self, limit: int = LIMIT, window: float = WINDOW, clock=time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._by_address: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, address: str) -> deque[float]:
        times = self._by_address.get(address, deque())
        while times and times[0] <= self.clock() - self.window:
            times.popleft()
        return times

    def failed(self, address: str) -> None:
        with self._lock:
            times = self._recent(address)
            times.append(self.clock())
            while len(times) > self.limit:
                times.popleft()
            self._by_address[address] = times
            self._by_address.move_to_end(address)
            while len(self._by_address) > ADDRESSES_MAX:
                self._by_address.popitem(last=False)

    def blocked(self, address: str) -> bool:
        with self._lock:
            return len(self._recent(address)) >= self.limit


def answer(failures: Failures, command: str, request: dict) -> dict:
    """Dovecot's policy protocol: status 0 lets the login go on, -1 refuses it."""
    address = str(request.get("remote", ""))
    if command == "report":
        # A login the policy itself refused is not counted again: the block ends on time.
        if request.get("success") is False and not request.get("policy_reject") and address:
            failures.failed(address)
        return {"status": 0, "msg": ""}
    if address and failures.blocked(address):
        return {"status": -1, "msg": "Too many failed logins from your address: try later"}
    return {"status": 0, "msg": ""}


def server(port: int, failures: Failures) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
            size = min(int(self.headers.get("Content-Length") or 0), 65536)
            try:
                request = json.loads(self.rfile.read(size) or b"{}")
            except ValueError:
                request = {}
            command = parse_qs(urlparse(self.path).query).get("command", [""])[0]
            body = json.dumps(answer(failures, command, request)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_) -> None:  # addresses and names stay out of any log
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.daemon_threads = True
    return httpd

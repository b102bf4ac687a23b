"""The harness's side of the test-only command channel (the guest's testchannel.py).

QEMU serves the guest's virtio port org.commonsbox.test as a Unix socket; each request
and answer is one JSON line. Test images only: a real image has no such channel.
"""

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Result:
    argv: tuple
    rc: int
    stdout: str
    stderr: str


class Channel:
    def __init__(self, path: Path):
        self.path = path
        self.sock = None
        self.buf = b""
        self.next_id = 1

    def connect(self, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(self.path))
                self.sock = s
                return
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def request(self, argv, timeout: float = 60.0) -> Result | None:
        """Send one command; its answer, or None if none came within TIMEOUT."""
        rid = self.next_id
        self.next_id += 1
        req = {"id": rid, "argv": list(argv), "timeout": max(1, int(timeout) - 1)}
        self.sock.settimeout(timeout)
        try:  # the leading newline ends any line a timed-out send left half written
            self.sock.sendall(b"\n" + json.dumps(req).encode() + b"\n")
        except TimeoutError:  # the guest has not opened its end: QEMU stops reading
            return None
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                # an answer has "rc": the guest's hello line and stray bytes do not
                if isinstance(msg, dict) and msg.get("id") == rid and "rc" in msg:
                    return Result(tuple(argv), msg["rc"], msg["stdout"], msg["stderr"])
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                raise ConnectionError("the test channel closed")
            self.buf += chunk

    def close(self):
        if self.sock:
            self.sock.close()

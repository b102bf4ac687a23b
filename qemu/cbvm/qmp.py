"""A minimal QMP client: one JSON object a line over QEMU's monitor socket."""

import json
import socket
import time
from pathlib import Path


class QMP:
    def __init__(self, path: Path, timeout: float = 10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile("rwb", buffering=0)
        self._read()  # the greeting
        self.command("qmp_capabilities")

    def _read(self) -> dict:
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("QMP socket closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def command(self, name: str, **arguments) -> dict:
        req = {"execute": name} | ({"arguments": arguments} if arguments else {})
        self.file.write(json.dumps(req).encode() + b"\n")
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(f"QMP {name}: {answer['error']}")
        return answer.get("return", {})

    def close(self):
        try:
            self.file.close()
        finally:
            self.sock.close()

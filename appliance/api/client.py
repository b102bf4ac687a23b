"""The client end: the CLI and the web UI call the agent through this."""

import json
import socket
from pathlib import Path
from typing import BinaryIO

from ..errors import ERRORS_BY_CODE, ApplianceError, RateLimited
from ..paths import DEFAULT_SOCKET


class AgentUnavailable(ApplianceError):
    code = "unavailable"


class Client:
    def __init__(
        self, path: Path = DEFAULT_SOCKET, timeout: float = 120, session: str | None = None
    ):
        self.path = Path(path)
        self.timeout = timeout
        self.session = session
        self._sock: socket.socket | None = None
        self._file: BinaryIO | None = None

    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except OSError as err:
            sock.close()
            raise AgentUnavailable(
                f"cannot reach the agent at {self.path}: {err.strerror}"
            ) from None
        self._sock, self._file = sock, sock.makefile("rb")

    def call(self, method: str, **params):
        if self._sock is None:
            self._connect()
        request = {"method": method, "params": params}
        if self.session is not None:
            request["session"] = self.session
        assert self._sock is not None and self._file is not None
        try:
            self._sock.sendall(json.dumps(request).encode() + b"\n")
            line = self._file.readline()
        except OSError as err:
            self.close()
            raise AgentUnavailable(f"lost the agent: {err}") from None
        if not line:
            self.close()
            raise AgentUnavailable("the agent closed the connection")
        answer = json.loads(line)
        if answer["ok"]:
            return answer["result"]
        error = answer["error"]
        refused = ERRORS_BY_CODE.get(error["code"], ApplianceError)(
            error["message"], error.get("field")
        )
        if isinstance(refused, RateLimited):
            refused.retry_after = error.get("retry_after", 0.0)
        raise refused

    def close(self) -> None:
        if self._sock is not None and self._file is not None:
            self._file.close()
            self._sock.close()
            self._sock = self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

"""The client end: the CLI and the web UI call the agent through this."""

import json
import socket
from pathlib import Path
from typing import BinaryIO

from ..errors import ERRORS_BY_CODE, ApplianceError, Forbidden, RateLimited, Unauthorized
from ..paths import DEFAULT_SOCKET


class AgentUnavailable(ApplianceError):
    code = "unavailable"


_UNTOLD = object()  # whose the session is: not yet told by the agent


class Client:
    def __init__(
        self, path: Path = DEFAULT_SOCKET, timeout: float = 120, session: str | None = None
    ):
        self.path = Path(path)
        self.timeout = timeout
        self.session = session
        self._sock: socket.socket | None = None
        self._file: BinaryIO | None = None
        self._whoami: dict | None | object = _UNTOLD

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

    def whoami(self) -> dict | None:
        """The member whose session this is (None: no session, or it has ended, or the box
        is not claimed), as the agent told it with an earlier call, else asked now."""
        if self.session is None:
            return None
        if self._whoami is _UNTOLD:
            try:
                found = self._call("auth.whoami", {}, whoami=False)
            except (Unauthorized, Forbidden):
                found = None
            self._whoami = found
        return self._whoami  # type: ignore[return-value]

    def call(self, method: str, **params):
        # Until the agent has said whose the session is, it says so with this answer (a
        # page's first call then needs no round trip of its own to learn it).
        return self._call(method, params, whoami=self._whoami is _UNTOLD)

    def _call(self, method: str, params: dict, whoami: bool):
        if self._sock is None:
            self._connect()
        request: dict = {"method": method, "params": params}
        if self.session is not None:
            request["session"] = self.session
            if whoami:
                request["whoami"] = True
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
        if "whoami" in answer:
            self._whoami = answer["whoami"]
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

"""The agent's end of the socket: peer check, framing, size limit, typed errors."""

import json
import logging
import os
import pwd
import socket
import socketserver
import struct
import threading
from pathlib import Path

from ..accounts.service import ROOT, Caller
from ..box import Box
from ..errors import ApplianceError, Forbidden, Invalid, TooLarge, Unauthorized
from . import MAX_REQUEST
from .methods import HARDWARE, call

log = logging.getLogger(__name__)
IDLE_TIMEOUT = 300


def peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def _unprivileged(user: str, what: str) -> tuple[int, int]:
    entry = pwd.getpwnam(user)
    if entry.pw_uid == 0:
        raise ValueError(f"{what} must run as its own unprivileged user, not root")
    return entry.pw_uid, entry.pw_gid


def _answer(result=None, error: ApplianceError | None = None, told: dict | None = None) -> bytes:
    body = {"ok": False, "error": error.to_json()} if error else {"ok": True, "result": result}
    return json.dumps({**body, **(told or {})}, ensure_ascii=False).encode() + b"\n"


def _whoami(box: Box, caller: Caller) -> dict | None:
    """What ``auth.whoami`` would answer this caller, or None for no member's session (an
    ended one, or a box not claimed yet)."""
    try:
        return call(box, caller, "auth.whoami", {})
    except (Unauthorized, Forbidden):
        return None


class _Handler(socketserver.StreamRequestHandler):
    server: "ApiServer"

    def handle(self) -> None:
        self.request.settimeout(IDLE_TIMEOUT)
        uid = peer_uid(self.request)
        if uid not in self.server.allowed_uids:
            log.warning("refused an API connection from uid %d", uid)
            self.wfile.write(_answer(error=Unauthorized(f"uid {uid} may not use this API")))
            return
        while True:
            try:
                line = self.rfile.readline(MAX_REQUEST + 1)
            except (TimeoutError, ConnectionError):
                return
            if not line:
                return
            if len(line) > MAX_REQUEST:
                self.wfile.write(
                    _answer(error=TooLarge(f"a request may be at most {MAX_REQUEST} bytes"))
                )
                return  # the rest of the line cannot be trusted to frame anything
            try:
                self.wfile.write(self._serve(uid, line))
            except (BrokenPipeError, ConnectionError):
                return

    def _serve(self, uid: int, line: bytes) -> bytes:
        told = None
        try:
            try:
                request = json.loads(line)
            except (UnicodeDecodeError, ValueError, RecursionError):
                raise Invalid("the request is not valid JSON") from None
            if not isinstance(request, dict):
                raise Invalid("the request must be a JSON object")
            caller = self.server.caller(uid, request.get("session"))
            if request.get("whoami") is True:  # whose the session is, before the call runs
                told = {"whoami": _whoami(self.server.box, caller)}
            return _answer(
                call(self.server.box, caller, request.get("method"), request.get("params")),
                told=told,
            )
        except ApplianceError as err:
            return _answer(error=err, told=told)
        except Exception:
            log.exception("API request failed")
            return _answer(error=ApplianceError("the agent failed; see its log"))


class ApiServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(
        self,
        path: Path,
        box: Box,
        webui_user: str | None = None,
        hardware_user: str | None = None,
        api_group: str | None = None,
    ):
        """API_GROUP may open the socket (default: the web UI user's group); the hardware
        user must be in it."""
        self.box = box
        self.allowed_uids = {0, os.getuid()}
        self.webui_uid = self.hardware_uid = None
        group = None
        if webui_user:
            self.webui_uid, group = _unprivileged(webui_user, "the web UI")
            self.allowed_uids.add(self.webui_uid)
        if hardware_user:
            self.hardware_uid, _ = _unprivileged(hardware_user, "the hardware service")
            if self.hardware_uid == self.webui_uid:
                raise ValueError("the hardware service and the web UI need users of their own")
            self.allowed_uids.add(self.hardware_uid)
        if api_group:
            import grp

            group = grp.getgrnam(api_group).gr_gid
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_socket():
            path.unlink()
        old_umask = os.umask(0o177)
        try:
            super().__init__(str(path), _Handler)
        finally:
            os.umask(old_umask)
        if group is not None:
            os.chown(path, 0 if os.getuid() == 0 else -1, group)
            os.chmod(path, 0o660)
        self.path = path

    def caller(self, uid: int, session) -> Caller:
        """Root is root; the hardware service is itself (allowed only its own methods);
        the web UI acts for whoever its session token belongs to."""
        if uid == self.hardware_uid:
            return HARDWARE
        if uid != self.webui_uid:
            return ROOT
        return self.box.accounts.caller(self.box.head()[1], session)

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="api", daemon=True)
        thread.start()
        return thread

"""The "encrypted only" mail filter: a Postfix milter that refuses a message from the
household's apps to a household member unless it is end-to-end encrypted (PGP/MIME, as
Delta Chat and Thunderbird send it). Mail to the rest of the world is not its business.

It runs on the box as its own unprivileged user, standard library only: the agent writes
this file into the box and starts it (`python3 -I milter.py SOCKET [--pidfile FILE]`).
It sees only the envelope's recipients and the message's headers, never its body.

The milter protocol (version 6): each packet is a 4-byte length, a command byte, data.
"""

import os
import signal
import socketserver
import struct
import sys

VERSION = 6
# We ask Postfix not to send the connection, HELO, body and unknown commands.
NOCONNECT, NOHELO, NOBODY, NOUNKNOWN, NODATA = 0x1, 0x2, 0x10, 0x100, 0x200
PROTOCOL = NOCONNECT | NOHELO | NOBODY | NOUNKNOWN | NODATA
CONTINUE, REPLYCODE = b"c", b"y"
REFUSAL = (
    b"550 5.7.1 This box accepts only end-to-end encrypted mail between its "
    b"household members (turn encryption on in your app)\0"
)
# Delta Chat's first step when two people verify each other: unencrypted by necessity.
SECURE_JOIN_REQUESTS = {"vc-request", "vg-request"}
MAX_PACKET = 1 << 20
LOCAL_MAILER = "lmtp"  # Postfix's {rcpt_mailer} for the box's own mailboxes


def encrypted(headers: dict[str, str]) -> bool:
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    return (
        content_type == "multipart/encrypted"
        or headers.get("secure-join", "").strip().lower() in SECURE_JOIN_REQUESTS
    )


def pairs(data: bytes) -> list[bytes]:
    return data.split(b"\0")[:-1] if data.endswith(b"\0") else data.split(b"\0")


class Message:
    """What one message has shown the filter so far."""

    def __init__(self):
        self.macros: dict[str, str] = {}
        self.local_recipient = False
        self.headers: dict[str, str] = {}

    def verdict(self) -> bytes:
        if self.local_recipient and not encrypted(self.headers):
            return REPLYCODE + REFUSAL
        return CONTINUE


class Session(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        message = Message()
        while True:
            head = self._read(4)
            if head is None:
                return
            (size,) = struct.unpack(">I", head)
            if not 0 < size <= MAX_PACKET:
                return
            packet = self._read(size)
            if packet is None:
                return
            cmd, data = packet[:1], packet[1:]
            if cmd == b"O":  # option negotiation: ask for no more than Postfix offers
                _, _, offered = struct.unpack(">III", data[:12])
                self._send(b"O", struct.pack(">III", VERSION, 0, PROTOCOL & offered))
            elif cmd == b"D":  # macros for the command that follows: no answer
                values = pairs(data[1:])
                message.macros = {
                    k.decode("latin-1"): v.decode("latin-1")
                    for k, v in zip(values[::2], values[1::2], strict=False)
                }
            elif cmd == b"R":
                if message.macros.get("{rcpt_mailer}") == LOCAL_MAILER:
                    message.local_recipient = True
                self._send(CONTINUE)
            elif cmd == b"L":
                name, value = (pairs(data) + [b"", b""])[:2]
                message.headers[name.decode("latin-1").lower()] = value.decode("latin-1")
                self._send(CONTINUE)
            elif cmd == b"N":  # end of headers: everything we need is known
                self._send(message.verdict())
            elif cmd in (b"A", b"E"):  # abort, or end of message: the next one starts
                if cmd == b"E":
                    self._send(CONTINUE)
                message = Message()
            elif cmd in (b"Q", b"K"):
                return
            else:  # MAIL FROM and anything else we did not ask to skip
                self._send(CONTINUE)

    def _read(self, n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            chunk = self.request.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def _send(self, cmd: bytes, data: bytes = b"") -> None:
        self.request.sendall(struct.pack(">I", len(cmd) + len(data)) + cmd + data)


class Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def daemonize(pidfile: str) -> None:
    """Without an init system: detach, and say where we are."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    with open(pidfile, "w") as f:
        f.write(f"{os.getpid()}\n")


def main(argv: list[str]) -> int:
    path = argv[0]
    if os.path.exists(path):
        os.unlink(path)
    os.umask(0o111)  # the socket: rw for all; its directory says who may reach it
    server = Server(path, Session)
    mine = os.stat(path).st_ino
    if argv[1:2] == ["--pidfile"]:
        daemonize(argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    finally:  # a successor may have bound the path already: leave its socket alone
        if os.path.exists(path) and os.stat(path).st_ino == mine:
            os.unlink(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

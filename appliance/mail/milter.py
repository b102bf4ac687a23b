"""The box's mail filter: a Postfix milter with one socket per kind of port, and the
login policy server Dovecot asks (authpolicy.py), in one small unprivileged process.

- ``milter.sock`` (the submission ports): a member sends only as themselves (sender.py).
- ``sealed.sock`` (the submission ports in "encrypted only" mode): the same, and mail to
  a household member must be end-to-end encrypted (sealed.py). Mail to the rest of the
  world is not its business.
- ``inbound.sock`` (port 25): nobody on the Internet sends as the household's domain;
  SPF, DKIM and DMARC are checked and written into Authentication-Results (inbound.py).

The agent writes these files into the box and starts it (`python3 -I milter.py SOCKET
[--pidfile FILE]`; the other sockets sit beside SOCKET, the settings in filter.json
beside this file). The milter protocol (version 6): each packet is a 4-byte length, a
command byte, data.
"""

import json
import os
import signal
import socketserver
import struct
import sys
import threading
from pathlib import Path

try:
    from . import authpolicy, inbound, sealed, sender
except ImportError:  # run as a script in the box: its siblings are beside it
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import authpolicy  # type: ignore[no-redef]
    import inbound  # type: ignore[no-redef]
    import sealed  # type: ignore[no-redef]
    import sender  # type: ignore[no-redef]

VERSION = 6
NOCONNECT, NOHELO, NOBODY, NOUNKNOWN, NODATA = 0x1, 0x2, 0x10, 0x100, 0x200
HEADER_LEADING_SPACE = 0x100000  # header values exactly as written (DKIM needs them)
ADD_HEADERS, CHANGE_HEADERS = 0x1, 0x10  # actions: Authentication-Results in, forgeries out
CONTINUE, REPLYCODE, INSERT_HEADER, CHANGE_HEADER = b"c", b"y", b"i", b"m"
MAX_PACKET = 1 << 20
MAX_MESSAGE = 128 << 20  # more than Postfix lets in (message_size_limit <= 100 MiB)
LOCAL_MAILER = "lmtp"  # Postfix's {rcpt_mailer} for the box's own mailboxes

SUBMISSION, SEALED, INBOUND = "submission", "sealed", "inbound"
SOCKETS = {SUBMISSION: "milter.sock", SEALED: "sealed.sock", INBOUND: "inbound.sock"}
PROTOCOL = {
    SUBMISSION: NOCONNECT | NOHELO | NOBODY | NOUNKNOWN | NODATA,
    SEALED: NOCONNECT | NOHELO | NOUNKNOWN | NODATA,
    INBOUND: NOUNKNOWN | NODATA | HEADER_LEADING_SPACE,
}
ACTIONS = {SUBMISSION: 0, SEALED: 0, INBOUND: ADD_HEADERS | CHANGE_HEADERS}
NOT_SEALED = "This box accepts only end-to-end encrypted mail between its household members"


def reply(code: str, text: str) -> bytes:
    """An SMTP reply for Postfix to give: one line, printable ASCII only."""
    clean = "".join(c if " " <= c < "\x7f" else "?" for c in text)[:400]
    return REPLYCODE + f"{code} {clean}".encode("ascii") + b"\0"


def pairs(data: bytes) -> list[bytes]:
    return data.split(b"\0")[:-1] if data.endswith(b"\0") else data.split(b"\0")


class Message:
    """What one message has shown the filter so far."""

    def __init__(self):
        self.macros: dict[str, str] = {}
        self.mail_from = ""
        self.local_recipient = False
        self.headers: list[tuple[str, str]] = []  # in order, repeats kept
        self.body: list[bytes] = []
        self.size = 0

    def raw(self, leading_space: bool) -> bytes:
        sep = ":" if leading_space else ": "
        head = "".join(f"{n}{sep}{v}\r\n" for n, v in self.headers)
        head = head.replace("\r\n", "\n").replace("\n", "\r\n")
        return head.encode("latin-1") + b"\r\n" + b"".join(self.body)

    def header_values(self) -> list[tuple[str, str]]:
        return [(n, v.strip()) for n, v in self.headers]


class Filter:
    """One role's decisions; the protocol is Session's."""

    def __init__(self, role: str, settings: dict):
        self.role, self.settings = role, settings
        self.household = settings.get("domain", "")

    def at_mail(self, message: Message) -> bytes:
        if self.role == INBOUND and self.household and message.mail_from:
            why = inbound.own_domain_refusal(self.household, message.mail_from, [])
            if why:
                return reply("550", f"5.7.1 {why}")
        return CONTINUE

    def at_headers(self, message: Message) -> bytes:
        if self.role in (SUBMISSION, SEALED):
            why = sender.refusal(message.macros.get("{auth_authen}", ""), message.header_values())
            if why:
                return reply("550", f"5.7.1 {why}")
        if self.role == INBOUND and self.household:
            why = inbound.own_domain_refusal(
                self.household, message.mail_from, message.header_values()
            )
            if why:
                return reply("550", f"5.7.1 {why}")
        return CONTINUE

    def at_end(self, message: Message, connection: dict) -> list[bytes]:
        """The replies at the end of the message: modifications, then the verdict."""
        if self.role == SEALED and message.local_recipient:
            if message.size > MAX_MESSAGE:
                return [reply("550", "5.7.1 too large to check for encryption")]
            why = sealed.refusal(message.raw(leading_space=False))
            if why:
                return [reply("550", f"5.7.1 {NOT_SEALED} ({why}): turn encryption on")]
        if self.role == INBOUND:
            return self._inbound(message, connection)
        return [CONTINUE]

    def _inbound(self, message: Message, connection: dict) -> list[bytes]:
        if message.size > MAX_MESSAGE:
            return [reply("550", "5.3.4 message too large")]
        verdict = inbound.check(
            self.household,
            connection.get("ip", ""),
            connection.get("helo", ""),
            message.mail_from,
            message.raw(leading_space=True),
            message.header_values(),
        )
        if verdict.refusal:
            return [reply("550", f"5.7.1 {verdict.refusal}")]
        if verdict.tempfail:
            return [reply("451", f"4.7.0 {verdict.tempfail}")]
        out = []
        # Authentication-Results that claim to be this box's, from elsewhere: removed
        # (the last first, so that each index still names the header it meant).
        results = [v for n, v in message.headers if n.lower() == "authentication-results"]
        for index in range(len(results), 0, -1):
            if results[index - 1].strip().split(";")[0].strip().lower() == self.household:
                out.append(CHANGE_HEADER + struct.pack(">I", index) + b"Authentication-Results\0\0")
        value = " " + inbound.header_value(self.household, verdict)
        out.append(INSERT_HEADER + struct.pack(">I", 0) + b"Authentication-Results\0")
        out[-1] += value.encode("ascii", "replace") + b"\0"
        return [*out, CONTINUE]


class Session(socketserver.BaseRequestHandler):
    server: "Server"

    def handle(self) -> None:
        role = self.server.role
        rules = Filter(role, self.server.settings)
        connection: dict[str, str] = {}
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
                _, actions, offered = struct.unpack(">III", data[:12])
                self._send(
                    b"O",
                    struct.pack(">III", VERSION, ACTIONS[role] & actions, PROTOCOL[role] & offered),
                )
            elif cmd == b"D":  # macros for the command that follows: no answer
                values = pairs(data[1:])
                message.macros.update(
                    {
                        k.decode("latin-1"): v.decode("latin-1")
                        for k, v in zip(values[::2], values[1::2], strict=False)
                    }
                )
            elif cmd == b"C":  # hostname, family, port, address
                _host, _, rest = data.partition(b"\0")
                address = rest[3:].rstrip(b"\0").decode("latin-1")
                connection["ip"] = address.removeprefix("IPv6:")
                self._send(CONTINUE)
            elif cmd == b"H":
                connection["helo"] = pairs(data)[0].decode("latin-1") if data else ""
                self._send(CONTINUE)
            elif cmd == b"M":
                message.mail_from = (pairs(data) or [b""])[0].decode("latin-1").strip("<>")
                self._send(rules.at_mail(message))
            elif cmd == b"R":
                if message.macros.get("{rcpt_mailer}") == LOCAL_MAILER:
                    message.local_recipient = True
                self._send(CONTINUE)
            elif cmd == b"L":
                name, value = (pairs(data) + [b"", b""])[:2]
                message.headers.append((name.decode("latin-1"), value.decode("latin-1")))
                self._send(CONTINUE)
            elif cmd == b"N":  # end of headers
                self._send(rules.at_headers(message))
            elif cmd == b"B":  # kept only where a rule reads it
                message.size += len(data)
                if message.size <= MAX_MESSAGE and (role == INBOUND or message.local_recipient):
                    message.body.append(data)
                self._send(CONTINUE)
            elif cmd == b"E":  # end of message: the verdict; the next one starts afresh
                if data:
                    message.body.append(data)
                for answer in rules.at_end(message, connection):
                    self.request.sendall(struct.pack(">I", len(answer)) + answer)
                message = Message()
            elif cmd == b"A":  # abort: the next message on the same connection
                message = Message()
            elif cmd in (b"Q", b"K"):
                return
            else:
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
    # Postfix opens one connection per SMTP session: a burst of them must queue, not be
    # refused (the default of 5 deferred part of a 4-connection burst with "451 4.7.1").
    request_queue_size = 128

    def __init__(self, path: str, role: str, settings: dict):
        self.role, self.settings = role, settings
        super().__init__(path, Session)


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
    first = Path(argv[0])
    config = Path(__file__).resolve().with_name("filter.json")
    if "--config" in argv:
        config = Path(argv[argv.index("--config") + 1])
    settings = json.loads(config.read_text()) if config.exists() else {}
    os.umask(0o111)  # the sockets: rw for all; their directory says who may reach them
    servers, mine = [], {}
    for role, name in SOCKETS.items():
        path = first if role == SUBMISSION else first.with_name(name)
        if path.exists():
            path.unlink()
        servers.append(Server(str(path), role, settings))
        mine[path] = path.stat().st_ino
    policy = None
    if settings.get("policy_port"):
        failures = authpolicy.Failures(
            settings.get("login_failures", authpolicy.LIMIT),
            settings.get("login_window", authpolicy.WINDOW),
        )
        policy = authpolicy.server(settings["policy_port"], failures)
    if "--pidfile" in argv:
        daemonize(argv[argv.index("--pidfile") + 1])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    for s in [*servers[1:], *([policy] if policy else [])]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        servers[0].serve_forever()
    finally:  # a successor may have bound the paths already: leave its sockets alone
        for path, inode in mine.items():
            if path.exists() and path.stat().st_ino == inode:
                path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Boxes that federate: the relay's tests, benchmark and demo run on this.

A "world" namespace with a bridge joins the boxes and serves their DNS (a small
authoritative server for the test domains, made from what each box's `mail.dns` says to
publish). Each box is its own network namespace running the box's own Debian 13 root
(boxroot.BoxRoot) for its daemons, and the real agent (sandbox.BoxSandbox) configuring
them through `--enter`. Mail and chat apps run in the world namespace, so the boxes see
them as outsiders, as they would a phone on a mobile network.
"""

import concurrent.futures
import ctypes
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from .boxroot import BoxRoot, tree
from .netns import Netns, run
from .sandbox import BoxSandbox

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@contextmanager
def in_netns(name: str):
    """This thread in network namespace NAME: sockets opened inside stay there."""
    with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{name}") as there:
        if _libc.setns(there.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name}")
        try:
            yield
        finally:
            _libc.setns(home.fileno(), CLONE_NEWNET)


class Zone:
    """DNS records by (name, type), served over UDP from a thread."""

    def __init__(self):
        self.records: dict[tuple[str, str], list[str]] = {}
        self.sock: socket.socket | None = None

    def add(self, name: str, rtype: str, value: str) -> None:
        if rtype == "TXT":  # one quoted string per 255 bytes, as DNS carries it
            value = " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
        self.records.setdefault((name.rstrip(".").lower(), rtype), []).append(value)

    def lookup(self, name: str, rtype: str) -> list[str]:
        return self.records.get((name.rstrip(".").lower(), rtype), [])

    def serve(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 53))
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        import dns.flags
        import dns.message
        import dns.rdatatype
        import dns.rrset

        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(data)
            answer = dns.message.make_response(query)
            answer.flags |= dns.flags.AA
            q = query.question[0]
            name, rtype = q.name.to_text(), dns.rdatatype.to_text(q.rdtype)
            values = self.lookup(name, rtype)
            if values:
                answer.answer.append(dns.rrset.from_text_list(q.name, 60, "IN", rtype, values))
            elif not any(n == name.rstrip(".").lower() for n, _ in self.records):
                answer.set_rcode(3)  # NXDOMAIN
            self.sock.sendto(answer.to_wire(), peer)

    def close(self) -> None:
        if self.sock:
            self.sock.close()

    def dkim_dns(self, name: bytes, timeout: int = 5) -> bytes:
        """dkimpy's dnsfunc: the TXT record, as DNS would give it."""
        return "".join(
            v.replace('" "', "").strip('"') for v in self.lookup(name.decode(), "TXT")
        ).encode()


class RelayBox:
    """One box: its namespace on the world's bridge, its own root, its agent."""

    def __init__(self, world: "RelayWorld", domain: str, address: str, work: Path):
        self.domain, self.address = domain, address
        short = f"{world.tag}{domain[:8]}".replace(".", "").replace("-", "")[:11]
        self.ns = Netns(f"cbr{short}")
        run(
            [
                "ip",
                "link",
                "add",
                f"cbr{short}",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                self.ns.name,
            ]
        )
        run(["ip", "link", "set", f"cbr{short}", "netns", world.ns.name])
        world.ns.run(["ip", "link", "set", f"cbr{short}", "master", "br0", "up"])
        self.ns.run(["ip", "addr", "add", f"{address}/24", "dev", "eth0"])
        self.ns.run(["ip", "link", "set", "eth0", "up"])
        self.root = BoxRoot(self.ns, world.lower, work / domain, domain, world.NAMESERVER)
        self.system = self.root.start()
        # The agent's own state stays on this machine; its daemons are the box's.
        self.agent = BoxSandbox(
            self.ns, work / f"{domain}-agent", backend="userspace", enter=self.root.pid
        )
        self.agent.start(timeout=60)
        self.api = self.agent.client()

    def user(self, name: str, label: str = "phone") -> dict:
        """A household member with a mailbox, and an app password for LABEL: the answer
        of `mail.password.add` (address, password)."""
        self.api.call(
            "users.add", name=name, role="member", passphrase="correct horse battery staple 7"
        )
        return self.api.call("mail.password.add", owner=name, label=label)

    def stop(self) -> None:
        self.api.close()
        self.agent.stop()
        self.root.stop()
        self.ns.delete()


class RelayWorld:
    WORLD, NAMESERVER = "10.79.0.254", "10.79.0.53"

    def __init__(self, work: Path, mail: dict[str, str], max_message_mib: int = 25):
        """MAIL: domain -> address for each box, mail on for each."""
        self.tag = str(int(time.time() * 1000) % 10000)
        self.lower = tree()
        self.ns = Netns(f"cbw{self.tag}")
        self.zone = Zone()
        self.boxes: dict[str, RelayBox] = {}
        try:
            for cmd in (
                ["ip", "link", "add", "br0", "type", "bridge"],
                ["ip", "addr", "add", f"{self.WORLD}/24", "dev", "br0"],
                ["ip", "addr", "add", f"{self.NAMESERVER}/24", "dev", "br0"],
                ["ip", "link", "set", "br0", "up"],
            ):
                self.ns.run(cmd)
            for domain, address in mail.items():
                self.boxes[domain] = box = RelayBox(self, domain, address, work)
                # No disks in namespaces: the boxes keep their data unencrypted, by choice.
                box.api.call("storage.settings.set", allow_unencrypted=True)
                box.api.call(
                    "mail.settings.set",
                    enabled=True,
                    domain=domain,
                    max_message_mib=max_message_mib,
                )
                self.zone.add(domain, "A", address)
                for r in box.api.call("mail.dns"):
                    self.zone.add(r["name"], r["type"], r["value"])
            with in_netns(self.ns.name):
                self.zone.serve(self.NAMESERVER)
        except BaseException:
            self.stop()
            raise

    def outside(self):
        """Where the apps are: `with world.outside(): smtplib.SMTP(...)`."""
        return in_netns(self.ns.name)

    def submission(self, host: str):
        """An app's connection to HOST's submission port (587), after STARTTLS."""
        import smtplib

        with self.outside():
            smtp = smtplib.SMTP(host, 587, timeout=60)
        smtp.starttls(context=app_tls())
        return smtp

    def stop(self) -> None:
        self.zone.close()
        for box in self.boxes.values():
            box.stop()
        self.ns.delete()


def app_tls():
    """What a mail app does on first contact with a self-signed box: accept the
    certificate (a real app asks its user to confirm it once)."""
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Idler:
    """A mail app waiting in IMAP IDLE for new mail, as phones do."""

    def __init__(self, world: RelayWorld, host: str, login: dict):
        import imaplib

        with world.outside():
            self.imap = imaplib.IMAP4_SSL(host, ssl_context=app_tls())
        self.imap.login(login["address"], login["password"])
        self.imap.select("INBOX")
        self.imap.send(b"I1 IDLE\r\n")
        if not self.imap.readline().startswith(b"+"):
            raise RuntimeError("the server refused IDLE")

    def wait(self, timeout: float = 30) -> int:
        """Block until the server says a new message exists; return the message count."""
        self.imap.sock.settimeout(timeout)
        while True:
            line = self.imap.readline()
            if not line:
                raise ConnectionError("the IMAP server closed the connection")
            if line.startswith(b"* ") and line.rstrip().endswith(b"EXISTS"):
                return int(line.split()[1])

    def close(self) -> None:
        try:
            self.imap.send(b"DONE\r\n")
            while not self.imap.readline().startswith(b"I1 "):
                pass
            self.imap.logout()
        except (OSError, self.imap.abort):
            pass


def chat(
    world: RelayWorld,
    sender: tuple[dict, str],
    recipient: tuple[dict, str],
    text: str,
    timeout: float = 30,
) -> float:
    """SENDER's app sends TEXT to RECIPIENT's app, both XMPP clients (slixmpp) logged in
    at their boxes ((login, box address) each); returns the seconds until it arrived.
    A refused login raises PermissionError."""
    import asyncio

    import slixmpp

    class App(slixmpp.ClientXMPP):
        def __init__(self, login: dict):
            super().__init__(login["address"], login["password"])
            self.ssl_context = app_tls()
            self.online, self.refused = asyncio.Event(), asyncio.Event()
            self.inbox: asyncio.Queue = asyncio.Queue()
            self.add_event_handler("session_start", self._online)
            self.add_event_handler("failed_all_auth", lambda _: self.refused.set())
            self.add_event_handler("message", lambda m: self.inbox.put_nowait(m))

        async def _online(self, _):
            self.send_presence()
            self.online.set()

    async def run() -> float:
        apps = [App(login) for login, _ in (sender, recipient)]
        for app, (_, host) in zip(apps, (sender, recipient), strict=True):
            app.connect(host, 5222)
        try:
            for app in apps:
                waits = [asyncio.ensure_future(e.wait()) for e in (app.online, app.refused)]
                await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
                if app.refused.is_set():
                    raise PermissionError(f"{app.boundjid.bare}: the box refused the login")
                if not app.online.is_set():
                    raise TimeoutError(f"{app.boundjid.bare}: not online after {timeout} s")
            started = time.perf_counter()
            apps[0].send_message(mto=recipient[0]["address"], mbody=text, mtype="chat")
            while True:
                got = await asyncio.wait_for(apps[1].inbox.get(), timeout)
                if got["body"] == text:
                    return time.perf_counter() - started
        finally:
            for app in apps:
                app.disconnect()

    def in_world():
        with world.outside():
            return asyncio.run(run())

    # A thread of its own: the caller's may already run an event loop (Playwright's).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(in_world).result()

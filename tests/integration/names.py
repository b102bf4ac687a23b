"""The test world's name service: a small authoritative DNS server (dnspython) for the
test domains, and a way to run code inside a network namespace from this process."""

import ctypes
import socket
import threading
from contextlib import contextmanager

import dns.flags
import dns.message
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

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
    """Records by (name, type); served over UDP from a thread. ``add`` takes what the
    agent's `mail.dns` lists, so the world sees exactly what the household would publish."""

    def __init__(self):
        self.records: dict[tuple[str, str], list[str]] = {}
        self.sock: socket.socket | None = None

    def add(self, name: str, rtype: str, value: str) -> None:
        if rtype == "TXT":  # one quoted string per 255 bytes, as DNS carries it
            value = " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255))
        self.records.setdefault((name.rstrip(".").lower(), rtype), []).append(value)

    def lookup(self, name: str, rtype: str) -> list[str]:
        return self.records.get((name.rstrip(".").lower(), rtype), [])

    def serve(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 53))
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
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
        return "".join(v.replace('" "', "").strip('"')
                       for v in self.lookup(name.decode(), "TXT")).encode()

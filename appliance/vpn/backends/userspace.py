"""wireguard-go, driven through its UAPI socket (the cross-platform text protocol).

The daemon is started detached (``setsid -f``) so it outlives an agent restart:
restarting the agent must not reset any device's session.
"""

import os
import socket
import subprocess
import time
from pathlib import Path

from ...errors import SystemFailure
from ...secrets import Secret
from .. import links
from ..facts import Interface, Peer
from ..keys import from_hex, to_hex
from ..plan import WantedPeer

SOCKET_DIR = Path("/run/wireguard")
ZERO_KEY = "0" * 64


def _uapi(name: str, request: str) -> str:
    """One UAPI exchange; the reply's lines without the closing errno."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(SOCKET_DIR / f"{name}.sock"))
        sock.sendall(request.encode() + b"\n")
        reply = bytearray()
        while not reply.endswith(b"\n\n"):
            chunk = sock.recv(1 << 18)
            if not chunk:
                break
            reply += chunk
    body, _, errno = reply.decode().rstrip("\n").rpartition("errno=")
    if errno != "0":
        raise SystemFailure(f"wireguard-go refused the change on {name} (errno {errno or '?'})")
    return body


def _parse_peer(block: str) -> Peer:
    hex_key, *lines = block.splitlines()
    fields, allowed = {}, []
    for line in lines:
        key, _, value = line.partition("=")
        if key == "allowed_ip":
            allowed.append(value)
        else:
            fields[key] = value
    psk = fields.get("preshared_key", ZERO_KEY)
    return Peer(
        public_key=from_hex(hex_key),
        preshared_key=None if psk == ZERO_KEY else Secret(from_hex(psk)),
        allowed_ips=frozenset(allowed),
        endpoint=fields.get("endpoint"),
        last_handshake=int(fields.get("last_handshake_time_sec", 0))
        + int(fields.get("last_handshake_time_nsec", 0)) / 1e9,
        rx_bytes=int(fields.get("rx_bytes", 0)),
        tx_bytes=int(fields.get("tx_bytes", 0)),
    )


def _parse(name: str, body: str, seen: dict[str, Peer]) -> tuple[Interface, dict[str, Peer]]:
    """Parse a `get=1` reply: device lines, then one block per peer.

    A peer whose block is unchanged since the last read (no traffic, no change) is
    not parsed again: with a thousand mostly idle devices, that is most of them.
    """
    device_part, *blocks = body.split("public_key=")
    device = dict(line.split("=", 1) for line in device_part.splitlines() if "=" in line)
    parsed = {block: seen.get(block) or _parse_peer(block) for block in blocks}
    private = device.get("private_key")
    iface = Interface(
        name,
        private_key=Secret(from_hex(private)) if private else None,
        listen_port=int(device.get("listen_port", 0)),
        peers={peer.public_key: peer for peer in parsed.values()},
    )
    return iface, parsed


def _peer_lines(peer: WantedPeer) -> list[str]:
    psk = to_hex(peer.preshared_key.reveal()) if peer.preshared_key else ZERO_KEY
    return [
        f"public_key={to_hex(peer.public_key)}",
        f"preshared_key={psk}",
        "replace_allowed_ips=true",
    ] + [f"allowed_ip={ip}" for ip in sorted(peer.allowed_ips)]


class UserspaceBackend:
    kind = "userspace"

    def __init__(self, log_dir: Path | None = None):
        self.log_dir = log_dir
        self._seen: dict[str, Peer] = {}

    def read(self, name: str) -> Interface | None:
        link = links.state(name)
        if link is None:
            return None
        try:
            iface, self._seen = _parse(name, _uapi(name, "get=1\n"), self._seen)
        except (FileNotFoundError, ConnectionRefusedError):
            return None  # a TUN link without its daemon: not a WireGuard interface
        up, addresses = link
        return Interface(
            iface.name, iface.private_key, iface.listen_port, addresses, up, iface.peers
        )

    def create(self, name: str) -> None:
        log = (
            open(self.log_dir / f"wireguard-go-{name}.log", "ab")
            if self.log_dir
            else subprocess.DEVNULL
        )
        try:
            subprocess.run(
                ["setsid", "-f", "wireguard-go", "-f", name],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin"), "LOG_LEVEL": "error"},
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        sock = SOCKET_DIR / f"{name}.sock"
        deadline = time.monotonic() + 10
        while not (sock.exists() and links.exists(name)):
            if time.monotonic() > deadline:
                raise SystemFailure(f"wireguard-go did not create {name}")
            time.sleep(0.005)
        links.mark(name)

    def configure(self, name: str, private_key: Secret, listen_port: int) -> None:
        _uapi(
            name, f"set=1\nprivate_key={to_hex(private_key.reveal())}\nlisten_port={listen_port}\n"
        )

    def set_peers(self, name, upserts, removals) -> None:
        lines = ["set=1"]
        for key in removals:
            lines += [f"public_key={to_hex(key)}", "remove=true"]
        for peer in upserts:
            lines += _peer_lines(peer)
        _uapi(name, "\n".join(lines) + "\n")

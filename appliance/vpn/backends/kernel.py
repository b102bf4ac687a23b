"""Kernel WireGuard over generic netlink (pyroute2): what the box itself runs.

pyroute2's ``WireGuard.set`` takes one peer per call, so peers are changed one by
one; that is also what keeps every other peer's session untouched.
"""

import errno

from pyroute2 import IPRoute, WireGuard
from pyroute2.netlink.exceptions import NetlinkError

from ...secrets import Secret
from .. import links
from ..facts import Interface, Peer
from ..plan import WantedPeer

ZERO_KEY = "A" * 43 + "="


def _value(attr):
    """pyroute2 hands back either a plain value or an NLA whose 'value' holds it."""
    if hasattr(attr, "get") and "value" in attr:
        return attr["value"]
    return attr


def _text(key) -> str:
    key = _value(key)
    return key.decode() if isinstance(key, bytes) else key


def _endpoint(endpoint) -> str | None:
    """ "addr:port", or "[addr]:port" for IPv6: what `wg show` and the UAPI print."""
    if not endpoint:
        return None
    addr = endpoint["addr"]
    return f"[{addr}]:{endpoint['port']}" if ":" in addr else f"{addr}:{endpoint['port']}"


def _peer(nla) -> Peer:
    key = _text(nla.get_attr("WGPEER_A_PUBLIC_KEY"))
    psk = nla.get_attr("WGPEER_A_PRESHARED_KEY")
    psk = _text(psk) if psk is not None else ZERO_KEY
    handshake = nla.get_attr("WGPEER_A_LAST_HANDSHAKE_TIME")
    endpoint = nla.get_attr("WGPEER_A_ENDPOINT")
    return Peer(
        public_key=key,
        preshared_key=None if psk == ZERO_KEY else Secret(psk),
        allowed_ips=frozenset(ip["addr"] for ip in nla.get_attr("WGPEER_A_ALLOWEDIPS") or ()),
        endpoint=_endpoint(endpoint),
        last_handshake=(handshake["tv_sec"] + handshake["tv_nsec"] / 1e9) if handshake else 0.0,
        rx_bytes=nla.get_attr("WGPEER_A_RX_BYTES") or 0,
        tx_bytes=nla.get_attr("WGPEER_A_TX_BYTES") or 0,
    )


class KernelBackend:
    kind = "kernel"

    def read(self, name: str) -> Interface | None:
        link = links.state(name)
        if link is None:
            return None
        try:
            with WireGuard() as wg:
                messages = wg.info(name)
        except NetlinkError as err:
            if err.code in (errno.EOPNOTSUPP, errno.ENODEV):
                return None  # not a kernel WireGuard link (say wireguard-go's TUN), or gone
            raise
        private_key, listen_port, peers = None, 0, {}
        for msg in messages:  # a dump: peers may be split over several messages
            if msg.get_attr("WGDEVICE_A_PRIVATE_KEY") is not None:
                private_key = Secret(_text(msg.get_attr("WGDEVICE_A_PRIVATE_KEY")))
            listen_port = msg.get_attr("WGDEVICE_A_LISTEN_PORT") or listen_port
            for nla in msg.get_attr("WGDEVICE_A_PEERS") or ():
                peer = _peer(nla)
                if peer.public_key in peers:  # continuation of a peer's allowed IPs
                    old = peers[peer.public_key]
                    peer = Peer(
                        **{**old.__dict__, "allowed_ips": old.allowed_ips | peer.allowed_ips}
                    )
                peers[peer.public_key] = peer
        up, addresses = link
        return Interface(name, private_key, listen_port, addresses, up, peers)

    def create(self, name: str) -> None:
        if name in links.managed():  # ours, but not kernel WireGuard (read() gave None)
            links.delete(name)
        with IPRoute() as ipr:
            ipr.link("add", ifname=name, kind="wireguard")
        links.mark(name)

    def configure(self, name: str, private_key: Secret, listen_port: int) -> None:
        with WireGuard() as wg:
            wg.set(name, private_key=private_key.reveal(), listen_port=listen_port)

    def set_peers(self, name, upserts: tuple[WantedPeer, ...], removals: tuple[str, ...]) -> None:
        with WireGuard() as wg:
            for key in removals:
                wg.set(name, peer={"public_key": key, "remove": True})
            for peer in upserts:
                wg.set(
                    name,
                    peer={
                        "public_key": peer.public_key,
                        "preshared_key": peer.preshared_key.reveal()
                        if peer.preshared_key
                        else ZERO_KEY,
                        "replace_allowed_ips": True,
                        "allowed_ips": sorted(peer.allowed_ips),
                    },
                )

"""The VPN capability: facts from the backend, the wanted interface from the desired
state and the secrets, the pure planner, and the actions carried out."""

from ..capability import Capability, Check, Parts, Ports
from ..errors import SystemFailure
from ..schema import Desired
from ..secrets import SecretStore
from . import links
from .backends import Backend
from .facts import VpnFacts
from .plan import (
    AddAddress,
    BringUp,
    ConfigureInterface,
    CreateInterface,
    DeleteInterface,
    RemoveAddress,
    SetPeers,
    WantedInterface,
    WantedPeer,
    plan,
)
from .schema import Device

BOX_KEY = "vpn/box"
BOX_PUBLIC_KEY = "vpn/box.public"  # not secret; kept with its private half


def device_key_name(device_id: int) -> str:
    return f"vpn/device/{device_id}"


def psk_name(device_id: int) -> str:
    return f"vpn/psk/{device_id}"


Known = dict[int, tuple[Device, WantedPeer]]


def wanted(
    desired: Desired, secrets: SecretStore, known: Known | None = None
) -> tuple[WantedInterface, Known]:
    """The interface the desired state asks for. ``known`` holds the peers made last
    time: a device that did not change (the very same frozen Device object, which
    revisions share) keeps its peer, found by identity rather than by hashing it."""
    vpn = desired.vpn
    known = known or {}
    private_key = secrets.get(BOX_KEY)
    if private_key is None:
        raise SystemFailure("the box has no WireGuard key")
    psks = None
    peers = {}
    for d in vpn.devices:
        entry = known.get(id(d))
        peer = entry[1] if entry is not None and entry[0] is d else None
        if peer is None:
            psk = None
            if d.preshared_key:
                psks = psks if psks is not None else secrets.get_many("vpn/psk/")
                psk = psks.get(psk_name(d.id))
                if psk is None:
                    raise SystemFailure(f"device {d.id} has lost its preshared key")
            peer = WantedPeer(d.public_key, psk, frozenset((f"{d.ipv4}/32", f"{d.ipv6}/128")))
        peers[id(d)] = (d, peer)
    return WantedInterface(
        vpn.interface,
        private_key,
        vpn.listen_port,
        frozenset((str(vpn.box_ipv4), str(vpn.box_ipv6))),
        {peer.public_key: peer for _, peer in peers.values()},
    ), peers


class VpnCapability(Capability):
    name = "vpn"
    packages = ("wireguard-tools",)  # the kernel's module does the rest
    card_secrets = ("vpn/",)  # the box's key and the devices': the VPN comes up while locked

    @classmethod
    def made(cls, parts: Parts) -> "VpnCapability":
        return cls(parts.backend, parts.secrets)

    @staticmethod
    def ports(desired: Desired) -> Ports:
        return Ports(open=frozenset({("udp", desired.vpn.listen_port)}))

    def __init__(self, backend: Backend, secrets: SecretStore):
        self.backend = backend
        self.secrets = secrets
        self._peers: Known = {}

    def depends_on(self, desired: Desired):
        return desired.vpn

    def read_facts(self, desired: Desired) -> VpnFacts:
        found = {}
        for name in links.managed():
            iface = self.backend.read(name)
            if iface is not None:
                found[name] = iface
        return VpnFacts(found)

    def plan(self, facts: VpnFacts, desired: Desired) -> list:
        want, self._peers = wanted(desired, self.secrets, self._peers)
        return plan(facts, want)

    def apply(self, actions: list) -> None:
        for action in actions:
            match action:
                case DeleteInterface(name):
                    links.delete(name)
                case CreateInterface(name):
                    self.backend.create(name)
                case ConfigureInterface(name, private_key, listen_port):
                    self.backend.configure(name, private_key, listen_port)
                case AddAddress(name, address):
                    links.add_address(name, address)
                case RemoveAddress(name, address):
                    links.remove_address(name, address)
                case BringUp(name):
                    links.bring_up(name)
                case SetPeers(name, upserts, removals):
                    self.backend.set_peers(name, upserts, removals)
                case _:
                    raise self.unknown(action)

    def health(self, facts: VpnFacts, desired: Desired) -> list[Check]:
        iface = facts.interfaces.get(desired.vpn.interface)
        checks = [
            Check(
                self.name,
                "interface",
                iface is not None and iface.up,
                f"{desired.vpn.interface} ({self.backend.kind} WireGuard)",
            )
        ]
        if iface is not None:
            missing = {d.public_key for d in desired.vpn.devices} - iface.peers.keys()
            checks.append(
                Check(
                    self.name,
                    "devices",
                    not missing,
                    f"{len(missing)} device(s) not yet on the interface"
                    if missing
                    else f"{len(iface.peers)} device(s)",
                )
            )
        checks.append(
            Check(
                self.name,
                "endpoint",
                desired.vpn.endpoint is not None,
                str(desired.vpn.endpoint)
                if desired.vpn.endpoint
                else "not set: devices cannot find the box",
            )
        )
        return checks

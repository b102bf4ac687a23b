"""The VPN capability: facts from the backend, the wanted interface from the desired
state and the secrets, the pure planner, and the actions carried out."""

from dataclasses import dataclass, field, replace

from ..capability import Capability, Check, Parts, Ports
from ..errors import SystemFailure
from ..schema import Desired
from ..secrets import SecretStore
from . import links
from .backends import Backend
from .facts import Peer, VpnFacts
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
from .schema import Device, VpnSettings, psk_name

# Below this many peers, reading the interface back after a change costs a few ms and
# catches a change made behind the agent's back at once; above it, the read costs
# more than everything else (300 ms at 10,000 peers) and the system's acknowledgement
# of each peer is trusted, the timer's full reconcile healing any drift.
ACKNOWLEDGE_FROM = 256

BOX_KEY = "vpn/box"
BOX_PUBLIC_KEY = "vpn/box.public"  # not secret; kept with its private half


@dataclass(frozen=True)
class Known:
    """The peers made last time: ``by_device`` maps id(device) to (device, its peer) for
    the devices of ``devices``; ``peers`` maps public keys to those peers."""

    devices: tuple[Device, ...] = ()
    by_device: dict[int, tuple[Device, WantedPeer]] = field(default_factory=dict)
    peers: dict[str, WantedPeer] = field(default_factory=dict)


def wanted(
    desired: Desired, secrets: SecretStore, known: Known | None = None
) -> tuple[WantedInterface, Known]:
    """The interface the desired state asks for. ``known`` holds the peers made last
    time: a device that did not change (the very same frozen Device object, which
    revisions share) keeps its peer, found by identity rather than by hashing it, and
    only the devices that came or went are looked at."""
    vpn = desired.vpn
    known = known or Known()
    private_key = secrets.get(BOX_KEY)
    if private_key is None:
        raise SystemFailure("the box has no WireGuard key")
    changed: set[str] = set()  # the keys whose peers differ from known.peers
    if vpn.devices is known.devices:
        by_device, peers = known.by_device, known.peers
    else:
        current = dict(zip(map(id, vpn.devices), vpn.devices, strict=True))  # in C
        by_device, peers = dict(known.by_device), dict(known.peers)
        for gone in by_device.keys() - current.keys():  # removed or changed
            key = by_device.pop(gone)[1].public_key
            del peers[key]
            changed.add(key)
        psks = None
        for new in current.keys() - by_device.keys():
            d = current[new]
            psk = None
            if d.preshared_key:
                psks = psks if psks is not None else secrets.get_many("vpn/psk/")
                psk = psks.get(psk_name(d.id))
                if psk is None:
                    raise SystemFailure(f"device {d.id} has lost its preshared key")
            peer = WantedPeer(d.public_key, psk, frozenset((f"{d.ipv4}/32", f"{d.ipv6}/128")))
            by_device[new] = (d, peer)
            peers[peer.public_key] = peer
            changed.add(peer.public_key)
    return WantedInterface(
        vpn.interface,
        private_key,
        vpn.listen_port,
        frozenset((str(vpn.box_ipv4), str(vpn.box_ipv6))),
        peers,
        since=(known.peers, frozenset(changed)),
    ), Known(vpn.devices, by_device, peers)


class VpnCapability(Capability):
    name = "vpn"
    settings = ("vpn", VpnSettings)
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
        self._known = Known()
        self._wanted: WantedInterface | None = None  # what the last plan was for
        # (facts, the wanted interface they are known to match): planning from those
        # very facts only looks at what changed since
        self._settled: tuple[VpnFacts, WantedInterface] | None = None

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
        want, self._known = wanted(desired, self.secrets, self._known)
        settled = self._settled[1] if self._settled and self._settled[0] is facts else None
        actions = plan(facts, want, settled)
        self._wanted = want
        if not actions:
            self._settled = (facts, want)
        return actions

    def acknowledged(self, facts: VpnFacts, actions: list) -> VpnFacts | None:
        """The facts after ACTIONS were applied, when the system's acknowledgement of
        each is enough to know them (peer changes only: wireguard-go answers errno=0
        for each set, netlink an ack per peer), so that adding one device does not read
        ten thousand peers back. Anything else, a small interface (ACKNOWLEDGE_FROM)
        and the timer's reconcile read the system."""
        if self._wanted is None or not all(isinstance(a, SetPeers) for a in actions):
            return None
        if sum(len(i.peers) for i in facts.interfaces.values()) < ACKNOWLEDGE_FROM:
            return None
        interfaces = dict(facts.interfaces)
        for action in actions:
            iface = interfaces.get(action.name)
            if iface is None:
                return None
            peers = dict(iface.peers)
            for key in action.removals:
                peers.pop(key, None)
            for p in action.upserts:
                before = peers.get(p.public_key) or Peer(p.public_key)
                peers[p.public_key] = replace(
                    before, preshared_key=p.preshared_key, allowed_ips=p.allowed_ips
                )
            interfaces[action.name] = replace(iface, peers=peers)
        after = VpnFacts(interfaces, read_at=facts.read_at)
        self._settled = (after, self._wanted)
        return after

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

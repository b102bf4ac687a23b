"""The VPN planner: facts + desired -> the fewest actions, as plain data.

Pure: no I/O, so tests feed it facts and compare the actions. Peers are changed one
by one inside a single SetPeers action; the interface is never recreated to change
a peer, so other devices' sessions are untouched.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..secrets import Secret
from .facts import Interface, VpnFacts


@dataclass(frozen=True)
class WantedPeer:
    public_key: str
    preshared_key: Secret | None
    allowed_ips: frozenset[str]


@dataclass(frozen=True)
class WantedInterface:
    name: str
    private_key: Secret
    listen_port: int
    addresses: frozenset[str]
    peers: Mapping[str, WantedPeer]
    # (earlier peers, keys): ``peers`` differs from that earlier mapping only at these
    # keys, which lets a plan from settled facts look at those alone
    since: tuple[Mapping[str, WantedPeer], frozenset[str]] | None = field(
        default=None, compare=False
    )


# -- actions -----------------------------------------------------------------------


@dataclass(frozen=True)
class CreateInterface:
    name: str


@dataclass(frozen=True)
class DeleteInterface:
    name: str


@dataclass(frozen=True)
class ConfigureInterface:
    name: str
    private_key: Secret
    listen_port: int


@dataclass(frozen=True)
class AddAddress:
    name: str
    address: str


@dataclass(frozen=True)
class RemoveAddress:
    name: str
    address: str


@dataclass(frozen=True)
class BringUp:
    name: str


@dataclass(frozen=True)
class SetPeers:
    """Add or update ``upserts`` and remove ``removals`` (public keys), in one go."""

    name: str
    upserts: tuple[WantedPeer, ...] = ()
    removals: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"SetPeers({self.name}: {len(self.upserts)} set, {len(self.removals)} removed)"


Action = (
    CreateInterface
    | DeleteInterface
    | ConfigureInterface
    | AddAddress
    | RemoveAddress
    | BringUp
    | SetPeers
)


def plan(
    facts: VpnFacts, wanted: WantedInterface, settled: WantedInterface | None = None
) -> list[Action]:
    """``settled``: the wanted interface these very facts are known to match (what the
    last reconcile converged to), if any: the peers are then planned from what changed
    since, not compared one by one with the interface's (a device added to ten
    thousand costs one peer, not ten thousand comparisons)."""
    actions: list[Action] = [
        DeleteInterface(name) for name in sorted(facts.interfaces) if name != wanted.name
    ]
    have = facts.interfaces.get(wanted.name)
    if have is None:
        actions.append(CreateInterface(wanted.name))
        have = Interface(wanted.name, private_key=None, listen_port=0)
    if have.private_key != wanted.private_key or have.listen_port != wanted.listen_port:
        actions.append(ConfigureInterface(wanted.name, wanted.private_key, wanted.listen_port))
    actions += [RemoveAddress(wanted.name, a) for a in sorted(have.addresses - wanted.addresses)]
    actions += [AddAddress(wanted.name, a) for a in sorted(wanted.addresses - have.addresses)]
    if not have.up:
        actions.append(BringUp(wanted.name))
    if settled is not None and settled.name == wanted.name and wanted.name in facts.interfaces:
        peers = plan_peers_since(settled, wanted)
    else:
        peers = plan_peers(have, wanted)
    if peers.upserts or peers.removals:
        actions.append(peers)
    return actions


def plan_peers(have: Interface, wanted: WantedInterface) -> SetPeers:
    upserts = tuple(
        peer
        for key, peer in sorted(wanted.peers.items())
        if key not in have.peers
        or have.peers[key].preshared_key != peer.preshared_key
        or have.peers[key].allowed_ips != peer.allowed_ips
    )
    removals = tuple(sorted(key for key in have.peers if key not in wanted.peers))
    return SetPeers(wanted.name, upserts, removals)


def plan_peers_since(settled: WantedInterface, wanted: WantedInterface) -> SetPeers:
    """The peers that differ from those already settled: found by identity first (an
    unchanged device keeps its very WantedPeer), by value when the objects differ."""
    old = settled.peers
    if wanted.since is not None and wanted.since[0] is old:
        keys = wanted.since[1]
        new = wanted.peers
        return SetPeers(
            wanted.name,
            tuple(sorted((new[k] for k in keys if k in new and old.get(k) != new[k]), key=_key)),
            tuple(sorted(k for k in keys if k not in new and k in old)),
        )
    other = [p for key, p in wanted.peers.items() if old.get(key) is not p]
    upserts = sorted((p for p in other if old.get(p.public_key) != p), key=_key)
    removals = tuple(sorted(old.keys() - wanted.peers.keys()))
    return SetPeers(wanted.name, tuple(upserts), removals)


def _key(peer: WantedPeer) -> str:
    return peer.public_key

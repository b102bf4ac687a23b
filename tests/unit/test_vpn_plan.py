"""The VPN planner as data: facts + wanted -> actions."""

import pytest

from appliance.secrets import Secret
from appliance.vpn.facts import Interface, Peer, VpnFacts
from appliance.vpn.plan import (
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

BOX_KEY = Secret("box-private")
ADDRS = frozenset({"10.0.0.1/24", "fd00::1/64"})
A = WantedPeer("A" * 43 + "=", None, frozenset({"10.0.0.2/32", "fd00::2/128"}))
B = WantedPeer("B" * 43 + "=", Secret("psk-b"), frozenset({"10.0.0.3/32", "fd00::3/128"}))


def wanted(*peers, name="wg0", port=51820):
    return WantedInterface(name, BOX_KEY, port, ADDRS, {p.public_key: p for p in peers})


def have(*peers, name="wg0", key=BOX_KEY, port=51820, addresses=ADDRS, up=True, handshake=0.0):
    return Interface(
        name,
        key,
        port,
        addresses,
        up,
        {
            p.public_key: Peer(
                p.public_key, p.preshared_key, p.allowed_ips, last_handshake=handshake
            )
            for p in peers
        },
    )


def facts(*interfaces):
    return VpnFacts({i.name: i for i in interfaces})


CASES = {
    "a fresh box creates, configures, addresses and brings up the interface": (
        facts(),
        wanted(A),
        [
            CreateInterface("wg0"),
            ConfigureInterface("wg0", BOX_KEY, 51820),
            AddAddress("wg0", "10.0.0.1/24"),
            AddAddress("wg0", "fd00::1/64"),
            BringUp("wg0"),
            SetPeers("wg0", (A,), ()),
        ],
    ),
    "nothing to do touches nothing": (facts(have(A, B, handshake=1700000000.0)), wanted(A, B), []),
    "one new device is one peer set, nothing else": (
        facts(have(A)),
        wanted(A, B),
        [SetPeers("wg0", (B,), ())],
    ),
    "a removed device is one peer removed": (
        facts(have(A, B)),
        wanted(B),
        [SetPeers("wg0", (), (A.public_key,))],
    ),
    "a changed preshared key re-sets only that peer": (
        facts(have(A, WantedPeer(B.public_key, Secret("old"), B.allowed_ips))),
        wanted(A, B),
        [SetPeers("wg0", (B,), ())],
    ),
    "a drifted allowed-ips list is repaired": (
        facts(have(WantedPeer(A.public_key, None, frozenset({"0.0.0.0/0"})))),
        wanted(A),
        [SetPeers("wg0", (A,), ())],
    ),
    "a peer someone added by hand is removed": (
        facts(have(A, WantedPeer("C" * 43 + "=", None, frozenset()))),
        wanted(A),
        [SetPeers("wg0", (), ("C" * 43 + "=",))],
    ),
    "a new listen port reconfigures without recreating": (
        facts(have(A)),
        wanted(A, port=51821),
        [ConfigureInterface("wg0", BOX_KEY, 51821)],
    ),
    "a wrong key is replaced": (
        facts(have(A, key=Secret("other"))),
        wanted(A),
        [ConfigureInterface("wg0", BOX_KEY, 51820)],
    ),
    "address drift is corrected both ways": (
        facts(have(A, addresses=frozenset({"10.0.0.1/24", "10.9.9.9/8"}))),
        wanted(A),
        [RemoveAddress("wg0", "10.9.9.9/8"), AddAddress("wg0", "fd00::1/64")],
    ),
    "a downed link is brought up": (facts(have(A, up=False)), wanted(A), [BringUp("wg0")]),
    "a renamed interface: the old one goes, the new one comes": (
        facts(have(A, name="wg0")),
        wanted(A, name="home0"),
        [
            DeleteInterface("wg0"),
            CreateInterface("home0"),
            ConfigureInterface("home0", BOX_KEY, 51820),
            AddAddress("home0", "10.0.0.1/24"),
            AddAddress("home0", "fd00::1/64"),
            BringUp("home0"),
            SetPeers("home0", (A,), ()),
        ],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_plan(case):
    given, want, expected = CASES[case]
    assert plan(given, want) == expected


def test_actions_print_without_secrets():
    actions = plan(facts(), wanted(A, B))
    text = " ".join(map(str, actions)) + " ".join(map(repr, actions))
    assert "box-private" not in text and "psk-b" not in text


C = WantedPeer("C" * 43 + "=", None, frozenset({"10.0.0.4/32", "fd00::4/128"}))
B2 = WantedPeer(B.public_key, None, B.allowed_ips)  # B without its preshared key

SINCE = {
    # facts known to match SETTLED; what WANT needs
    "one device added": (wanted(A, B), wanted(A, B, C), [SetPeers("wg0", (C,), ())]),
    "one removed": (wanted(A, B, C), wanted(A, C), [SetPeers("wg0", (), (B.public_key,))]),
    "one changed": (wanted(A, B), wanted(A, B2), [SetPeers("wg0", (B2,), ())]),
    "an equal peer in a new object is no change": (
        wanted(A, B),
        wanted(A, WantedPeer(B.public_key, Secret("psk-b"), B.allowed_ips)),
        [],
    ),
}


@pytest.mark.parametrize("case", SINCE)
def test_planning_from_settled_facts_looks_only_at_what_changed(case):
    settled, want, expected = SINCE[case]
    # The interface's own peer list is not consulted: what it holds is SETTLED's.
    given = facts(have(*settled.peers.values()))
    assert plan(given, want, settled) == expected
    assert plan(given, want) == expected  # the same answer the long way


@pytest.mark.parametrize("case", SINCE)
def test_a_wanted_interface_that_says_what_changed_is_planned_from_that(case):
    settled, want, expected = SINCE[case]
    changed = frozenset(settled.peers.keys() ^ want.peers.keys()) | frozenset(
        k for k in settled.peers.keys() & want.peers.keys() if settled.peers[k] is not want.peers[k]
    )
    told = WantedInterface(
        want.name,
        want.private_key,
        want.listen_port,
        want.addresses,
        want.peers,
        since=(settled.peers, changed),
    )
    assert plan(facts(have(*settled.peers.values())), told, settled) == expected

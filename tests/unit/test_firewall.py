"""The firewall: its rendered table, the planner as data, and reading nft's listing."""

from appliance.firewall import ruleset
from appliance.firewall.capability import parse_comment, parse_members
from appliance.firewall.plan import (
    AddMembers,
    EnableForwarding,
    Facts,
    RemoveMembers,
    ReplaceTable,
    plan,
)
from appliance.schema import Desired
from appliance.vpn import keys
from appliance.vpn.schema import Device


def desired_with(*modes):
    d = Desired.new()
    vpn = d.vpn
    devices = [
        Device(
            i + 1,
            f"d{i}",
            keys.public_key(keys.new_private_key()),
            str(vpn.ipv4_subnet[i + 2]),
            str(vpn.ipv6_subnet[i + 2]),
            mode,
        )
        for i, mode in enumerate(modes)
    ]
    return d.replace(vpn=vpn.with_devices(devices))


ON = {"/proc/sys/net/ipv4/ip_forward": True}


def test_a_missing_table_is_created_whole_with_its_members():
    d = desired_with("full", "home")
    actions = plan(Facts(None, {}, ON), ruleset.wanted(d))
    assert len(actions) == 1 and isinstance(actions[0], ReplaceTable)
    text = actions[0].text
    assert str(d.vpn.devices[0].ipv4) in text and str(d.vpn.devices[1].ipv4) not in text
    assert text.startswith("add table inet commonsbox\ndelete table inet commonsbox\n")


def test_the_same_table_with_one_more_full_tunnel_device_is_one_member_added():
    d = desired_with("full", "full")
    w = ruleset.wanted(d)
    first = str(d.vpn.devices[0].ipv4), str(d.vpn.devices[0].ipv6)
    facts = Facts(
        w.comment,
        {ruleset.FULL_V4: frozenset({first[0]}), ruleset.FULL_V6: frozenset({first[1]})},
        ON,
    )
    assert plan(facts, w) == [
        AddMembers(ruleset.FULL_V4, (str(d.vpn.devices[1].ipv4),)),
        AddMembers(ruleset.FULL_V6, (str(d.vpn.devices[1].ipv6),)),
    ]


def test_converged_is_nothing_and_a_stale_member_is_removed():
    d = desired_with("home")
    w = ruleset.wanted(d)
    assert plan(Facts(w.comment, {}, ON), w) == []
    assert plan(Facts(w.comment, {ruleset.FULL_V4: frozenset({"10.9.9.9"})}, ON), w) == [
        RemoveMembers(ruleset.FULL_V4, ("10.9.9.9",))
    ]


def test_forwarding_off_is_turned_on():
    w = ruleset.wanted(desired_with())
    assert plan(Facts(w.comment, {}, {"/proc/sys/net/ipv4/ip_forward": False}), w) == [
        EnableForwarding("/proc/sys/net/ipv4/ip_forward")
    ]


def test_a_changed_interface_changes_the_structure_digest():
    d = desired_with("full")
    from dataclasses import replace

    other = d.replace(vpn=replace(d.vpn, interface="home0"))
    assert ruleset.wanted(d).digest != ruleset.wanted(other).digest


LISTING = """table inet commonsbox {
\tcomment "commonsbox 0123456789abcdef"
\tset full_tunnel_v4 {
\t\ttype ipv4_addr
\t\telements = { 10.0.0.2, 10.0.0.3,
\t\t\t     10.0.0.4 }
\t}

\tset full_tunnel_v6 {
\t\ttype ipv6_addr
\t}

\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
\t}
}
"""


def test_reading_nfts_listing():
    assert parse_comment(LISTING) == "commonsbox 0123456789abcdef"
    assert parse_members(LISTING) == {
        "full_tunnel_v4": frozenset({"10.0.0.2", "10.0.0.3", "10.0.0.4"}),
        "full_tunnel_v6": frozenset(),
    }

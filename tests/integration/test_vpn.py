"""Family devices on the real VPN: connect, cut off, come back, and nobody else notices."""

import re
import subprocess
import time

from appliance.box import VIEW_MAX_AGE

from .conftest import BOX_OUTSIDE_IP, BOX_VPN_IP, INTERNET, wait_until


def test_two_devices_one_removed_then_restored_and_the_other_never_disturbed(lab):
    d1 = lab.api.call("vpn.device.add", name="Grandma's phone")["device"]
    d2 = lab.api.call("vpn.device.add", name="Laptop", preshared_key=True)["device"]
    lab.phone(0, d1["id"])
    p2 = lab.phone(1, d2["id"])
    assert lab.phone_ns[0].ping(BOX_VPN_IP, timeout=3)
    assert lab.phone_ns[1].ping(BOX_VPN_IP, timeout=3)
    assert lab.phone_ns[1].ping("fd00:77::1", timeout=3)
    ifindex = lab.box_ifindex()
    session = lab.box_peer(d2["public_key"])["latest_handshake"], p2.latest_handshake()
    assert session[0] > 0 and session[1] > 0
    before_removal = lab.api.call("config.history", limit=1)[0]["revision"]

    gone = lab.api.call("vpn.device.remove", device=d1["id"])
    assert gone["applied"]
    assert not lab.phone_ns[0].ping(BOX_VPN_IP, count=3, timeout=1)  # cut off at once
    assert lab.phone_ns[1].ping(BOX_VPN_IP, timeout=1)
    assert (lab.box_peer(d2["public_key"])["latest_handshake"], p2.latest_handshake()) == session
    assert lab.box_ifindex() == ifindex

    restored = lab.api.call("config.rollback", revision=before_removal)
    assert restored["applied"]
    # The phone notices its session is dead and handshakes anew (WireGuard: within ~15 s).
    assert wait_until(lambda: lab.phone_ns[0].ping(BOX_VPN_IP, timeout=1), timeout=40)
    assert (lab.box_peer(d2["public_key"])["latest_handshake"], p2.latest_handshake()) == session
    assert lab.box_ifindex() == ifindex

    # Restarting the agent changes nothing on the system.
    lab.restart_agent()
    outcomes = lab.api.call("status")["last_reconcile"]
    assert not any(o["actions"] for o in outcomes), outcomes
    assert lab.box_ifindex() == ifindex
    assert (lab.box_peer(d2["public_key"])["latest_handshake"], p2.latest_handshake()) == session
    assert lab.phone_ns[1].ping(BOX_VPN_IP, timeout=1)


def by_capability(change: dict) -> dict[str, dict]:
    """A change's reconcile outcomes, by capability."""
    return {o["capability"]: o for o in change["reconcile"]}


def test_changing_one_device_touches_only_that_device(lab):
    d1 = lab.api.call("vpn.device.add", name="one")["device"]
    d2 = lab.api.call("vpn.device.add", name="two")["device"]
    lab.phone(0, d1["id"]), lab.phone(1, d2["id"])
    assert lab.phone_ns[0].ping(BOX_VPN_IP, timeout=3) and lab.phone_ns[1].ping(
        BOX_VPN_IP, timeout=3
    )
    session = lab.box_peer(d2["public_key"])["latest_handshake"]
    changed = lab.api.call("vpn.device.update", device=d1["id"], mode="full", name="one (full)")
    assert by_capability(changed)["vpn"]["actions"] == [] and changed["applied"]  # same peer
    assert any("AddMembers" in a for a in by_capability(changed)["firewall"]["actions"])
    added = by_capability(lab.api.call("vpn.device.add", name="three"))
    assert added["vpn"]["actions"] == ["SetPeers(wg0: 1 set, 0 removed)"]
    assert added["firewall"]["skipped"]  # a home-only device: the firewall is as it was
    assert lab.box_peer(d2["public_key"])["latest_handshake"] == session


def test_full_tunnel_reaches_the_internet_and_home_only_cannot(lab):
    full = lab.api.call("vpn.device.add", name="full", mode="full")["device"]
    home = lab.api.call("vpn.device.add", name="home")["device"]
    lab.phone(0, full["id"])
    assert lab.phone_ns[0].ping(INTERNET, timeout=3)  # the internet host has no route to the
    # VPN: only NAT on the box's uplink lets the answer come back
    # A home-only device that widens its own AllowedIPs is still stopped by the box.
    text = lab.api.call("vpn.device.config", device=home["id"])["config"]
    text = re.sub(r"AllowedIPs = .*", "AllowedIPs = 0.0.0.0/0", text)
    lab.phone(1, home["id"], config=text)
    assert lab.phone_ns[1].ping(BOX_VPN_IP, timeout=3)
    assert not lab.phone_ns[1].ping(INTERNET, count=2, timeout=1)
    listing = lab.box_ns.run(["nft", "list", "chain", "inet", "commonsbox", "forward"]).stdout
    assert re.search(r"counter packets [1-9]\d* bytes \d+ drop", listing), listing
    # Promoting it to full tunnel opens the way, without touching its session.
    lab.api.call("vpn.device.update", device=home["id"], mode="full")
    assert lab.phone_ns[1].ping(INTERNET, timeout=3)


def test_a_change_made_behind_the_agents_back_is_repaired_by_the_next_change(lab):
    """Planning starts from the facts the last verify read; the verify reads afresh,
    so a peer someone removed by hand comes back with the very next change."""
    import base64
    import socket

    a = lab.api.call("vpn.device.add", name="a")["device"]
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(lab.box.paths.root / "run/wireguard/wg0.sock"))
        key = base64.b64decode(a["public_key"]).hex()
        s.sendall(f"set=1\npublic_key={key}\nremove=true\n\n".encode())
        assert b"errno=0" in s.recv(100)
    b = lab.api.call("vpn.device.add", name="b")
    assert b["applied"] and by_capability(b)["vpn"]["actions"] == [
        "SetPeers(wg0: 1 set, 0 removed)",
        "SetPeers(wg0: 1 set, 0 removed)",
    ]
    assert not any(o["actions"] for o in lab.api.call("reconcile"))


def test_from_outside_the_box_answers_only_its_open_ports_and_the_vpn_reaches_the_rest(lab):
    """A service someone starts on the box is not reachable from the network around it
    unless the firewall opens its port; through the VPN a household device reaches it."""
    device = lab.api.call("vpn.device.add", name="phone")["device"]
    server = lab.box_ns.popen(["python3", "-c", PROBE_SERVER], stdout=subprocess.PIPE)
    try:
        assert server.stdout.readline().strip() == b"listening"
        lab.phone(0, device["id"])
        outside = lab.phone_ns[1].run(["python3", "-c", PROBE_CLIENT, BOX_OUTSIDE_IP], check=False)
        assert outside.stdout.strip() == "timeout", outside
        inside = lab.phone_ns[0].run(["python3", "-c", PROBE_CLIENT, BOX_VPN_IP], check=False)
        assert inside.stdout.strip() == "connected", inside
    finally:
        server.kill()
        server.wait()


# A TCP service on a port the firewall does not open (8080), on every address of the box.
PROBE_SERVER = """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen()
print("listening", flush=True)
while True:
    s.accept()[0].close()
"""
PROBE_CLIENT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], 8080), timeout=2).close(); print("connected")
except socket.timeout:
    print("timeout")
except OSError as e:
    print("refused", e)
"""


def test_status_shows_a_fresh_handshake_after_a_change_that_does_not_touch_the_vpn(lab):
    device = lab.api.call("vpn.device.add", name="phone")["device"]
    lab.phone(0, device["id"])
    time.sleep(VIEW_MAX_AGE + 0.5)  # what the add's verify read is now older than a view allows
    assert lab.phone_ns[0].ping(BOX_VPN_IP, timeout=3)
    # A change elsewhere skips the VPN: what its last verify read (before the phone ever
    # spoke) must not be shown as if it had just been read.
    lab.api.call("box.settings.set", name="Our house")
    shown = {d["id"]: d for d in lab.api.call("status")["vpn"]["devices"]}
    assert shown[device["id"]]["latest_handshake"] > 0

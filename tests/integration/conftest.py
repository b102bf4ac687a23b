"""The integration tier: real namespaces, the real agent, real WireGuard and nftables.

A ``Lab`` is a small world on this machine: the box (endpoint 192.0.2.1 on its
loopback), family phones each on their own cable to the box, and an "internet" host
(203.0.113.7) behind the box's uplink. All of it lives in network namespaces made
here, so no packet leaves the machine.
"""

import itertools
import os
import shutil
import signal
import time

import pytest

from appliance.sandbox import BoxSandbox, Netns, Phone, link

ENDPOINT = {"host": "192.0.2.1", "port": 51820}
SUBNET4, SUBNET6 = "10.77.0.0/24", "fd00:77::/64"
BOX_VPN_IP = "10.77.0.1"
INTERNET = "203.0.113.7"
_counter = itertools.count()


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "wg", "wg-quick", "wireguard-go", "nft", "ping", "setsid"):
        if not shutil.which(tool):
            return f"needs {tool} (`make test` installs it)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _missing()
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.netns)
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"INTEGRATION TIER NOT RUN: {reason}"))


class Lab:
    def __init__(self, tmp_path, phones: int = 2, root=None, webui_user=None):
        tag = f"{os.getpid() % 10000}{next(_counter)}"
        self.tag = tag
        self.tmp = tmp_path
        self.namespaces: list[Netns] = []
        self.box_ns = self._ns(f"cbt{tag}-box")
        self.box_ns.run(["ip", "addr", "add", "192.0.2.1/32", "dev", "lo"])
        self.inet = self._ns(f"cbt{tag}-inet")
        link(self.box_ns, "up0", "203.0.113.1/24", self.inet, "eth0", f"{INTERNET}/24")
        self.phone_ns = []
        for i in range(phones):
            ns = self._ns(f"cbt{tag}-p{i}")
            link(self.box_ns, f"lan{i}", f"100.64.{i}.1/24", ns, "eth0", f"100.64.{i}.10/24")
            ns.run(["ip", "route", "add", "default", "via", f"100.64.{i}.1"])
            self.phone_ns.append(ns)
        self.box = BoxSandbox(self.box_ns, root or tmp_path / "box", webui_user=webui_user)
        self.box.start()
        self.api = self.box.client()
        self.api.call("vpn.settings.set", endpoint=ENDPOINT, ipv4_subnet=SUBNET4,
                      ipv6_subnet=SUBNET6)

    def _ns(self, name: str) -> Netns:
        ns = Netns(name)
        self.namespaces.append(ns)
        return ns

    def phone(self, i: int, device, config: str | None = None) -> Phone:
        """Bring phone ``i`` up with ``device``'s exported config (or the text given)."""
        phone = Phone(self.phone_ns[i], f"cbp{self.tag}{i}"[:15], self.tmp / f"phone{i}")
        phone.up(config or self.api.call("vpn.device.config", device=device)["config"])
        return phone

    def box_peer(self, public_key: str) -> dict | None:
        devices = self.api.call("status")["vpn"]["devices"]
        by_key = {d["id"]: d for d in devices}
        for d in self.api.call("vpn.device.list"):
            if d["public_key"] == public_key:
                return by_key[d["id"]]
        return None

    def restart_agent(self, sig=signal.SIGTERM) -> None:
        self.api.close()
        self.box.stop(sig)
        self.box.start()

    def box_ifindex(self) -> int:
        out = self.box_ns.run(["ip", "-o", "link", "show", "wg0"]).stdout
        return int(out.split(":")[0])

    def close(self) -> None:
        self.api.close()
        try:
            self.box.stop()
        finally:
            for ns in reversed(self.namespaces):
                ns.delete()


def wait_until(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture
def lab(tmp_path):
    world = Lab(tmp_path)
    yield world
    world.close()


@pytest.fixture
def box(tmp_path):
    """Just the box, for API tests: no phones."""
    world = Lab(tmp_path, phones=0)
    yield world
    world.close()


__all__ = ["Lab", "wait_until", "BOX_VPN_IP", "INTERNET", "signal"]

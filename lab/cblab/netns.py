"""Hosts of their own on this machine: a network namespace, a command run in it, and a veth
cable between two of them. Everything else in the lab builds on these."""

import os
import signal
import subprocess
import time
from pathlib import Path


def run(cmd: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


class Netns:
    def __init__(self, name: str):
        self.name = name
        run(["ip", "netns", "del", name], check=False)  # a leftover from a killed run
        run(["ip", "netns", "add", name])
        Path("/run/wireguard").mkdir(mode=0o700, exist_ok=True)
        self.run(["ip", "link", "set", "lo", "up"])

    def cmd(self, cmd: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(self, cmd: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
        return run(self.cmd(cmd), check=check, **kw)

    def popen(self, cmd: list[str], **kw) -> subprocess.Popen:
        return subprocess.Popen(self.cmd(cmd), **kw)

    def pids(self) -> list[int]:
        out = run(["ip", "netns", "pids", self.name], check=False).stdout
        return [int(p) for p in out.split()]

    def ping(self, address: str, count: int = 1, timeout: float = 1) -> bool:
        return (
            self.run(
                ["ping", "-n", "-q", "-c", str(count), "-W", str(timeout), address], check=False
            ).returncode
            == 0
        )

    def delete(self) -> None:
        """Stop everything running inside (wireguard-go too), then the namespace."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids()
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 3
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.02)
        run(["ip", "netns", "del", self.name], check=False)


def link(a: Netns, a_if: str, a_addr: str, b: Netns, b_if: str, b_addr: str) -> None:
    """A veth cable between two namespaces, with an address (CIDR) at each end."""
    run(
        [
            "ip",
            "link",
            "add",
            a_if,
            "netns",
            a.name,
            "type",
            "veth",
            "peer",
            "name",
            b_if,
            "netns",
            b.name,
        ]
    )
    for ns, ifname, addr in ((a, a_if, a_addr), (b, b_if, b_addr)):
        ns.run(["ip", "addr", "add", addr, "dev", ifname])
        ns.run(["ip", "link", "set", ifname, "up"])

"""VPN at scale: the agent against the raw `wg` tool, measured in the same run.

  1. Add one device to an interface that already has N devices: p50/p95 latency
     through the agent's API (store a revision, reconcile, verify), beside a raw
     `wg set` of one peer on an interface with N peers.
  2. A full reconcile of N devices onto an empty interface, beside a raw
     `wg addconf` of the same peers.
  3. The agent's resident memory: idle on a fresh box, idle with N devices, and
     after the adds (which load `cryptography` to make keys).

Both sides use wireguard-go (this machine has no kernel WireGuard), each in its own
network namespace. Prints a table, then JSON (also written to --json-out).

    sudo .venv/bin/python bench/vpn_scale.py [--sizes 1000,10000] [--adds 40] [--runs 3]
"""

import argparse
import ipaddress
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path[:0] = [
    str(Path(__file__).resolve().parents[1]),
    str(Path(__file__).resolve().parents[1] / "lab"),
]

from appliance.paths import Paths  # noqa: E402
from appliance.schema import Desired  # noqa: E402
from appliance.secrets import SecretStore  # noqa: E402
from appliance.store import StateStore  # noqa: E402
from appliance.vpn import keys  # noqa: E402
from appliance.vpn.schema import Device  # noqa: E402
from cblab.netns import Netns  # noqa: E402
from cblab.sandbox import BoxSandbox  # noqa: E402

SUBNET4 = ipaddress.ip_network("10.128.0.0/16")
SUBNET6 = ipaddress.ip_network("fd00:128::/64")
TARGETS = {
    "add_p95_ms_at_1000": 15.0,
    "add_p95_ms_at_10000": 50.0,
    "reconcile_vs_raw": 2.0,
    "idle_rss_mb": 30.0,
}


def report(result: dict, json_out: Path) -> None:
    """Every benchmark ends the same way: its JSON printed and written to ``json_out``."""
    print(json.dumps(result, indent=2))
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(result, indent=2) + "\n")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def public_keys(n: int) -> list[str]:
    return [keys.public_key(keys.new_private_key()) for _ in range(n)]


def seed(root: Path, pubs: list[str]) -> None:
    """The box's desired state with these devices, written before the agent starts."""
    paths = Paths(root)
    store, secrets = StateStore(paths.state_db), SecretStore(paths.secrets_db)
    secrets.put("vpn/box", keys.new_private_key())
    base = Desired.new()
    devices = tuple(
        Device(
            i + 1,
            f"device {i + 1}",
            key,
            str(SUBNET4[i + 2]),
            str(SUBNET6[i + 2]),
            key_holder="device",
        )
        for i, key in enumerate(pubs)
    )
    vpn = replace(base.vpn, ipv4_subnet=SUBNET4, ipv6_subnet=SUBNET6, devices=devices)
    store.commit(base.replace(vpn=vpn), "bench", f"seed {len(pubs)} devices")
    store.close()
    secrets.close()


def uapi(sock_path: Path, request: str) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock_path))
        s.sendall(request.encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n\n"):
            reply += s.recv(65536)
    assert b"errno=0" in reply, reply


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peer_lines(pubs: list[str], offset: int = 0) -> str:
    return "".join(
        f"[Peer]\nPublicKey = {k}\nAllowedIPs = {SUBNET4[i + 2 + offset]}/32, "
        f"{SUBNET6[i + 2 + offset]}/128\n\n"
        for i, k in enumerate(pubs)
    )


class RawInterface:
    """wireguard-go driven only by the `wg` tool: the baseline."""

    def __init__(self, ns: Netns, name: str, workdir: Path):
        self.ns, self.name, self.workdir = ns, name, workdir
        ns.run(["wireguard-go", name])
        key = workdir / "raw.key"
        key.write_text(keys.new_private_key().reveal())
        ns.run(["wg", "set", name, "private-key", str(key), "listen-port", "51999"])
        ns.run(["ip", "link", "set", name, "up"])

    def addconf(self, pubs: list[str]) -> float:
        conf = self.workdir / "peers.conf"
        conf.write_text(peer_lines(pubs))
        started = time.perf_counter()
        self.ns.run(["wg", "addconf", self.name, str(conf)])
        return time.perf_counter() - started

    def clear(self) -> None:
        uapi(Path("/run/wireguard") / f"{self.name}.sock", "set=1\nreplace_peers=true\n")

    def set_one(self, key: str, index: int) -> float:
        started = time.perf_counter()
        self.ns.run(
            [
                "wg",
                "set",
                self.name,
                "peer",
                key,
                "allowed-ips",
                f"{SUBNET4[index]}/32,{SUBNET6[index]}/128",
            ]
        )
        return time.perf_counter() - started


def measure(size: int, adds: int, runs: int, tag: str) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"cb-bench-{size}-"))
    box_ns, raw_ns = Netns(f"cbb{tag}-box"), Netns(f"cbb{tag}-raw")
    box = None
    try:
        pubs = public_keys(size) + [""] * adds
        seed(work / "box", pubs[:size])
        box = BoxSandbox(box_ns, work / "box")
        box.start(timeout=300)
        api = box.client(timeout=600)
        time.sleep(1)
        idle_rss = rss_mb(box.process.pid)
        raw = RawInterface(raw_ns, f"cbbraw{tag}"[:15], work)

        # 2. full reconcile onto an empty interface, against `wg addconf`
        agent_runs, raw_runs = [], []
        for _ in range(runs):
            uapi(box.paths.root / "run/wireguard/wg0.sock", "set=1\nreplace_peers=true\n")
            started = time.perf_counter()
            outcome = api.call("reconcile")
            agent_runs.append(time.perf_counter() - started)
            vpn = next(o for o in outcome if o["capability"] == "vpn")
            assert vpn["converged"] and vpn["actions"], outcome
            raw.clear()
            raw_runs.append(raw.addconf(pubs[:size]))

        # 1. one more device, through the API and by `wg set`
        add_ms, raw_ms = [], []
        for i in range(adds):
            started = time.perf_counter()
            result = api.call("vpn.device.add", name=f"new {i}")  # the box makes its keys
            pubs[size + i] = result["device"]["public_key"]
            add_ms.append((time.perf_counter() - started) * 1000)
            assert result["applied"], result
            raw_ms.append(raw.set_one(pubs[size + i], size + 2 + i) * 1000)
        busy_rss = rss_mb(box.process.pid)
        api.close()
        return {
            "devices": size,
            "add_p50_ms": statistics.median(add_ms),
            "add_p95_ms": pct(add_ms, 95),
            "raw_wg_set_p50_ms": statistics.median(raw_ms),
            "raw_wg_set_p95_ms": pct(raw_ms, 95),
            "reconcile_s": statistics.median(agent_runs),
            "raw_addconf_s": statistics.median(raw_runs),
            "reconcile_vs_raw": statistics.median(agent_runs) / statistics.median(raw_runs),
            "idle_rss_mb": idle_rss,
            "rss_after_adds_mb": busy_rss,
        }
    finally:
        if box:
            box.stop()
        box_ns.delete()
        raw_ns.delete()
        subprocess.run(["rm", "-rf", str(work)])


def idle_rss(tag: str) -> tuple[float, float]:
    """The agent idle on a fresh box (which has just made its keys and certificate), and
    the same box's agent after a restart (what runs once the box has booted)."""
    work = Path(tempfile.mkdtemp(prefix="cb-bench-idle-"))
    ns = Netns(f"cbb{tag}-idle")
    box = BoxSandbox(ns, work)
    try:
        readings = []
        for _ in range(2):
            box.start()
            time.sleep(2)
            readings.append(rss_mb(box.process.pid))
            box.stop()
        return readings[0], readings[1]
    finally:
        box.stop()
        ns.delete()
        subprocess.run(["rm", "-rf", str(work)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--adds", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--json-out", type=Path, default=Path(__file__).parent / "results" / "vpn_scale.json"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/vpn_scale.py needs root (network namespaces)", file=sys.stderr)
        return 1
    tag = str(os.getpid() % 10000)
    rows = [
        measure(int(n), args.adds, args.runs, f"{tag}{i}")
        for i, n in enumerate(args.sizes.split(","))
    ]
    fresh, restarted = idle_rss(tag)

    print(
        f"{'devices':>8} | {'add p50':>8} {'add p95':>8} | {'wg set p50':>10} {'wg set p95':>10} | "
        f"{'reconcile':>9} {'wg addconf':>10} {'ratio':>6} | {'idle RSS':>8} {'after adds':>10}"
    )
    for r in rows:
        print(
            f"{r['devices']:>8} | {r['add_p50_ms']:>6.1f}ms {r['add_p95_ms']:>6.1f}ms | "
            f"{r['raw_wg_set_p50_ms']:>8.1f}ms {r['raw_wg_set_p95_ms']:>8.1f}ms | "
            f"{r['reconcile_s']:>8.2f}s {r['raw_addconf_s']:>9.2f}s {r['reconcile_vs_raw']:>5.2f}x | "
            f"{r['idle_rss_mb']:>6.1f}MB {r['rss_after_adds_mb']:>8.1f}MB"
        )
    print(
        f"agent idle RSS, no devices: {fresh:.1f} MB on first start (keys and certificate "
        f"made), {restarted:.1f} MB after a restart"
    )
    at = {r["devices"]: r for r in rows}
    verdict = {
        **{
            f"add_p95_ms_at_{n}": n in at and at[n]["add_p95_ms"] <= TARGETS[f"add_p95_ms_at_{n}"]
            for n in (1000, 10000)
        },
        "reconcile_vs_raw": all(r["reconcile_vs_raw"] <= TARGETS["reconcile_vs_raw"] for r in rows),
        "idle_rss_mb": restarted <= TARGETS["idle_rss_mb"],
    }
    result = {
        "benchmark": "vpn_scale",
        "backend": "userspace (wireguard-go)",
        "rows": rows,
        "idle_rss_first_start_mb": fresh,
        "idle_rss_restarted_mb": restarted,
        "targets": TARGETS,
        "met": verdict,
    }
    report(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

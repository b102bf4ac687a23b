"""Bytes the configuration store writes per change, at N devices.

Adds one device at a time to a store already holding N devices and counts what the
process hands to write() (the SQLite file and its WAL: /proc/self/io wchar) per
commit, beside the size of the whole document. Uses only the store's public
interface (commit), so the same script measures an older checkout too:

    .venv/bin/python bench/store_bytes.py [--devices 10000] [--changes 20]
    PYTHONPATH=/path/to/old/checkout .venv/bin/python bench/store_bytes.py
"""

import argparse
import base64
import ipaddress
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

if not any("commonsbox" in p or "appliance" in p for p in sys.path[:1]):
    sys.path.append(str(Path(__file__).resolve().parents[1]))

from appliance.schema import Desired  # noqa: E402
from appliance.store import StateStore  # noqa: E402
from appliance.vpn.schema import Device  # noqa: E402

V4, V6 = ipaddress.ip_network("10.128.0.0/16"), ipaddress.ip_network("fd00:128::/64")


def device(i: int) -> Device:
    key = base64.b64encode(i.to_bytes(32, "big")).decode()
    return Device(i, f"device {i}", key, str(V4[i + 1]), str(V6[i + 1]), key_holder="device")


def wchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no /proc/self/io")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    where = Path(tempfile.mkdtemp(prefix="cb-store-"))
    store = StateStore(where / "state.db")
    card = StateStore(where / "card.db")  # the card's copy (appliance/configstore.py)
    base = Desired.new()
    desired = base.replace(
        vpn=replace(
            base.vpn,
            ipv4_subnet=V4,
            ipv6_subnet=V6,
            devices=tuple(device(i) for i in range(1, args.devices + 1)),
        ),
    )
    store.commit(desired, "bench", "seed")
    written, seconds, card_written = [], [], []
    for i in range(args.devices + 1, args.devices + 1 + args.changes):
        desired = desired.replace(vpn=desired.vpn.with_devices(desired.vpn.devices + (device(i),)))
        before, started = wchar(), time.perf_counter()
        revision = store.commit(desired, "bench", "add one device")
        seconds.append(time.perf_counter() - started)
        written.append(wchar() - before)
        before = wchar()
        card.keep_only(revision, desired)  # what card_copy does after every commit
        card_written.append(wchar() - before)
    result = {
        "benchmark": "store_bytes",
        "store": str(Path(sys.modules["appliance.store"].__file__).resolve()),
        "devices": args.devices,
        "document_bytes": len(json.dumps(desired.to_json())),
        "written_per_change_median": statistics.median(written),
        "written_per_change_max": max(written),
        "commit_ms_median": statistics.median(seconds) * 1000,
        "card_copy_written_median": statistics.median(card_written),
    }
    print(
        f"{'devices':>8} | {'document':>10} | {'written/change':>14} {'max':>10} | "
        f"{'commit':>8} | {'card copy':>10}"
    )
    print(
        f"{args.devices:>8} | {result['document_bytes']:>10,} | "
        f"{result['written_per_change_median']:>14,.0f} {result['written_per_change_max']:>10,} | "
        f"{result['commit_ms_median']:>6.1f}ms | {result['card_copy_written_median']:>10,.0f}"
    )
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

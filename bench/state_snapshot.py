"""What the snapshot before a migration costs: its size and the time to take it and to
put it back, for a box with N devices (appliance/update/).

The box is built the way the agent builds it: each device added by the VPN service as
its own revision (the store keeps the newest 500), keys made by the box and a preshared
key for every other device (their secrets in the secret store), a session per device's
owner in the runtime store. Then a made-up next version of the state store is started
(a snapshot, then the migration) and the old version comes back (the fallback).

    .venv/bin/python bench/state_snapshot.py [--devices 1000]
"""

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

if not any("commonsbox" in p or "appliance" in p for p in sys.path[:1]):
    sys.path.append(str(Path(__file__).resolve().parents[1]))

import appliance.store as store_module  # noqa: E402
from appliance.accounts.sessions import RuntimeStore  # noqa: E402
from appliance.paths import Paths  # noqa: E402
from appliance.schema import Desired  # noqa: E402
from appliance.secrets import SecretStore  # noqa: E402
from appliance.store import StateStore  # noqa: E402
from appliance.update import state  # noqa: E402
from appliance.vpn.service import VpnService  # noqa: E402


def next_layout(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE revisions ADD COLUMN signed_by TEXT")


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    paths = Paths(Path(tempfile.mkdtemp(prefix="cb-snapshot-")))
    store, secrets = StateStore(paths.state_db), SecretStore(paths.secrets_db)
    runtime = RuntimeStore(paths.runtime_db)
    vpn = VpnService(store, secrets)
    vpn.ensure_box_key()
    desired = vpn.change_settings(
        Desired.new(), ipv4_subnet="10.128.0.0/16", endpoint={"host": "box.example", "port": 51820}
    )
    store.commit(desired, "bench", "setup")
    for i in range(args.devices):
        desired, _ = vpn.add_device(desired, f"device {i}", preshared_key=i % 2 == 0)
        store.commit(desired, "bench", f"add device {i}")
        runtime.open_session(f"member{i % 50}", "192.0.2.9")
    for s in (store, secrets, runtime):
        s.close()
    live = {
        "state": paths.state_db.stat().st_size,
        "secrets": paths.secrets_db.stat().st_size,
        "runtime": paths.runtime_db.stat().st_size,
    }

    today = store_module.MIGRATIONS
    store_module.MIGRATIONS = [*today, next_layout]
    started = time.perf_counter()
    state.at_start(paths)  # the snapshot, then the migration
    snapshot_and_migrate = time.perf_counter() - started
    [taken] = (paths.state_dir / "update/snapshots").iterdir()
    files = {p.name: p.stat().st_size for p in taken.iterdir()}
    snapshot_bytes = size(taken)
    store_module.MIGRATIONS = today
    started = time.perf_counter()
    report = state.at_start(paths)  # the old version: the fallback
    fallback = time.perf_counter() - started
    assert report is not None and report["lost_revisions"] == []
    result = {
        "benchmark": "state_snapshot",
        "devices": args.devices,
        "revisions_kept": min(args.devices + 1, store_module.KEEP_DEFAULT),
        "live_bytes": live,
        "snapshot_bytes": snapshot_bytes,
        "snapshot_files": files,
        "snapshot_and_migrate_s": round(snapshot_and_migrate, 3),
        "fallback_s": round(fallback, 3),
    }
    print(
        f"{'devices':>8} | {'live stores':>12} | {'snapshot':>10} | {'take+migrate':>12} | {'put back':>8}"
    )
    print(
        f"{args.devices:>8} | {sum(live.values()):>12,} | {snapshot_bytes:>10,} | "
        f"{snapshot_and_migrate:>11.2f}s | {fallback:>7.2f}s"
    )
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

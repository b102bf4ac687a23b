"""An A/B update under QEMU (TCG): the bundle beside the image, writing the other slot with
RAUC beside a raw `dd` of a root slot in the same guest, and how long the household waits.

Version N (the test image) and N+1 are built from the same recipe (cached), N+1 made
into a signed bundle; N boots, takes the bundle over HTTP from this machine, and:

    dd                the running root slot copied raw onto the other (the baseline)
    install           `commonsbox update install`: RAUC checks and writes the bundle
    install -> kept   from the install's start until the gate has kept the new slot
    downtime          from the restart until the agent answers again

    sudo .venv/bin/python bench/update.py [--board qemu-amd64]
"""

import argparse
import functools
import http.server
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "image"), str(HERE.parent / "qemu"), str(HERE)]

from vpn_scale import report  # noqa: E402

from cbimage.build import build, default_cache  # noqa: E402
from cbimage.bundle import bundle, keygen  # noqa: E402
from cbvm import VM  # noqa: E402

TARGETS = {"install_vs_dd": 3.0, "bundle_vs_root": 0.6}


def wait(vm, done, timeout: float = 1800) -> float:
    """When the box's update status (None while it does not answer) first satisfies DONE."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        vm.channel = None  # a restarted guest's end of the channel is new
        try:
            answer = vm.run(["commonsbox", "update", "status", "--json"], timeout=20)
            status = json.loads(answer.stdout) if answer.rc == 0 else None
        except Exception:
            status = None
        if done(status):
            return time.monotonic()
        time.sleep(2)
    raise TimeoutError("the box did not get there")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--board", default="qemu-amd64")
    args = parser.parse_args()
    keys = default_cache() / "test-update-key"
    key, cert = keys / "update.key", keys / "update.crt"
    if not cert.is_file():
        keys.mkdir(parents=True, exist_ok=True)
        keygen(key, cert, "Commonsbox TEST updates")
    work = Path(tempfile.mkdtemp(prefix="bench-update-"))
    n = build(args.board, work / "n", default_cache(), test=True, log=print, update_cert=cert)
    head, serial = n["version"].rsplit(".", 1)
    nxt = build(args.board, work / "n1", default_cache(), test=True, log=print,
                version=f"{head}.{int(serial) + 1}", update_cert=cert)  # fmt: skip
    t0 = time.monotonic()
    made = bundle(work / "n1", work / "next.raucb", key, cert)
    bundle_s = time.monotonic() - t0

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=work)
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    vm = VM(work / "n", work / "vm", card_mib=4096)
    vm.start()
    try:
        vm.wait_ready(900)
        path = "/var/lib/commonsbox/update/next.raucb"
        url = f"http://10.0.2.2:{server.server_address[1]}/next.raucb"
        fetch = f"import os, urllib.request as u; os.makedirs(os.path.dirname({path!r}), exist_ok=True); u.urlretrieve({url!r}, {path!r})"
        vm.run(["python3", "-c", fetch], timeout=600, check=True)
        parts = n["partitions"]
        t0 = time.monotonic()
        vm.run(["dd", f"if=/dev/disk/by-partuuid/{parts['rootA']}", f"of=/dev/disk/by-partuuid/{parts['rootB']}",
                "bs=4M", "conv=fsync", "status=none"], timeout=900, check=True)  # fmt: skip
        dd_s = time.monotonic() - t0
        t0 = time.monotonic()
        done = vm.run(["commonsbox", "update", "install", path, "--json"], timeout=900, check=True)
        install_s = time.monotonic() - t0
        assert json.loads(done.stdout)["slot"] == "B", done.stdout
        down = wait(vm, lambda st: st is None)  # the restart: the agent stops answering
        ready = wait(vm, lambda st: st is not None and st["version"] == nxt["version"])
        kept = wait(
            vm, lambda st: st is not None and st["version"] == nxt["version"] and not st["trial"]
        )
        downtime_s, kept_s = ready - down, kept - t0
    finally:
        vm.stop()
        server.shutdown()
    rows = {
        "bundle_bytes": made["size"],
        "root_bytes": made["root_bytes"],
        "image_bytes": n["size_bytes"],
        "bundle_s": round(bundle_s, 1),
        "dd_root_slot_s": round(dd_s, 1),
        "install_s": round(install_s, 1),
        "install_to_kept_s": round(kept_s, 1),
        "downtime_s": round(downtime_s, 1),
    }
    print("| what | value |\n|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {v} |")
    result = {
        "benchmark": "update",
        "board": args.board,
        **rows,
        "install_vs_dd": round(install_s / dd_s, 2),
        "bundle_vs_root": round(made["size"] / made["root_bytes"], 2),
        "targets": TARGETS,
    }
    result["met"] = {k: result[k] <= t for k, t in TARGETS.items()}
    report(result, HERE / "results" / "update.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

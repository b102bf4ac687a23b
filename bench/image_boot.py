"""The image: build time per board, size, and boot-to-ready under QEMU (TCG).

For each board: the image built (with --cold, in an empty cache: mmdebstrap included),
its raw and written size, then two first boots of the same image in the same run:
the baseline with the Commonsbox units masked on the kernel command line, and the box
as shipped. What the agent and the web UI add to the boot's critical path is the
difference of the two boots' userspace times (systemd's own timestamps).

    sudo .venv/bin/python bench/image_boot.py [--board qemu-amd64] [--cold]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [
    str(HERE.parent),
    str(HERE.parent / "image"),
    str(HERE.parent / "qemu"),
    str(HERE.parent / "lab"),
    str(HERE),
]

from vpn_scale import report  # noqa: E402

from cbimage.build import build, default_cache  # noqa: E402
from cbvm import VM  # noqa: E402

OURS = ("commonsbox-agent.service", "commonsbox-webui.service")
TARGETS = {"image_mib": 600, "added_to_boot_s": 2.0, "build_amd64_s": 480, "build_arm64_s": 720}


def native_agent_start() -> dict:
    """For scale: the same agent started on this machine (no emulation), in a namespace,
    until it answers: a box's first start (keys, TLS certificate) and a restart."""
    from cblab.netns import Netns
    from cblab.sandbox import BoxSandbox

    ns, root = Netns(f"cbbench{os.getpid()}"), Path(tempfile.mkdtemp(prefix="cbbench-"))
    times = {}
    try:
        box = BoxSandbox(ns, root)
        for run in ("first_start_s", "restart_s"):
            t0 = time.monotonic()
            box.start()
            times[run] = round(time.monotonic() - t0, 2)
            box.stop()
    finally:
        ns.delete()
        shutil.rmtree(root, ignore_errors=True)
    return times


def manager_times(vm) -> dict[str, int]:
    props = ("UserspaceTimestampMonotonic", "FinishTimestampMonotonic")
    shown = vm.run(["systemctl", "show", *(f"-p{p}" for p in props)], check=True).stdout
    return {k: int(v) for k, v in (line.split("=", 1) for line in shown.split())}


def boot(image_dir: Path, work: Path, masked: bool) -> dict:
    extra = " ".join(f"systemd.mask={u}" for u in OURS) if masked else ""
    vm = VM(image_dir, work, card_mib=4096, cmdline_extra=extra)
    vm.start()
    try:
        deadline = time.monotonic() + 900
        vm.run(["true"], timeout=900)  # the test channel is up
        while True:  # systemd sets FinishTimestamp once the boot's last job is done
            t = manager_times(vm)
            if t["FinishTimestampMonotonic"]:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the boot never finished")
            time.sleep(1)  # between questions only
        result = {
            "kernel_s": round(t["UserspaceTimestampMonotonic"] / 1e6, 2),
            "userspace_s": round(
                (t["FinishTimestampMonotonic"] - t["UserspaceTimestampMonotonic"]) / 1e6, 2
            ),
        }
        if not masked:
            vm.wait_ready(timeout=60)
            result["agent_ready_after_qemu_start_s"] = round(vm.ready_after, 1)
            for unit in OURS:
                show = vm.run(
                    [
                        "systemctl",
                        "show",
                        unit,
                        "-p",
                        "ExecMainStartTimestampMonotonic",
                        "-p",
                        "ActiveEnterTimestampMonotonic",
                    ],
                    check=True,
                ).stdout
                t = dict(line.split("=", 1) for line in show.split())
                result[f"{unit.split('.')[0]}_start_s"] = round(
                    (
                        int(t["ActiveEnterTimestampMonotonic"])
                        - int(t["ExecMainStartTimestampMonotonic"])
                    )
                    / 1e6,
                    2,
                )
        return result
    finally:
        vm.stop()
        vm.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", action="append", help="repeatable (default: qemu-amd64)")
    parser.add_argument("--cold", action="store_true", help="build in an empty cache")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "image_boot.json")
    args = parser.parse_args()
    results = {}
    for board in args.board or ["qemu-amd64"]:
        cache = Path(tempfile.mkdtemp(prefix="cbimage-cold-")) if args.cold else default_cache()
        out = Path(tempfile.mkdtemp(prefix=f"bench-{board}-"))
        try:
            t0 = time.monotonic()
            info = build(board, out, cache, test=True, log=lambda m: print(m, flush=True))
            r = {
                "build_s": round(time.monotonic() - t0, 1),
                "cold": args.cold,
                **info["this_run"],
                "image_mib": round(info["size_bytes"] / 2**20, 1),
                "written_mib": round(info["allocated_bytes"] / 2**20, 1),
            }
            with tempfile.TemporaryDirectory() as work:
                r["baseline"] = boot(out, Path(work) / "masked", masked=True)
                r["box"] = boot(out, Path(work) / "box", masked=False)
            r["added_to_boot_s"] = round(r["box"]["userspace_s"] - r["baseline"]["userspace_s"], 2)
            results[board] = r
        finally:
            shutil.rmtree(out, ignore_errors=True)
            if args.cold:
                shutil.rmtree(cache, ignore_errors=True)
    print(
        f"\n{'board':<12} {'build s':>8} {'raw MiB':>8} {'written':>8} {'ready s':>8} "
        f"{'userspace s (baseline)':>24} {'added s':>8}"
    )
    for board, r in results.items():
        print(
            f"{board:<12} {r['build_s']:>8} {r['image_mib']:>8} {r['written_mib']:>8} "
            f"{r['box']['agent_ready_after_qemu_start_s']:>8} "
            f"{r['box']['userspace_s']:>10} ({r['baseline']['userspace_s']:>6}) "
            f"{r['added_to_boot_s']:>15}"
        )
    native = native_agent_start()
    print(
        f"agent start on this machine, natively: first {native['first_start_s']} s, "
        f"restart {native['restart_s']} s"
    )
    report({"targets": TARGETS, "boards": results, "native_agent": native}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

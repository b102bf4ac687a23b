"""Encrypted storage: write throughput through dm-crypt against the raw device, for both
ciphers the box chooses from, inside the QEMU guest (whose kernel has dm-crypt).

In the same run and on the same device (a loop device on the guest's RAM, so the disk
is not what is measured): a file written to the raw device, then through LUKS2 with
AES-XTS and with Adiantum, each beside `cryptsetup benchmark`'s figure for that cipher.
Target: encrypted >= 0.9x the benchmark's figure. Under TCG every number is emulated
and far below a Raspberry Pi's; the ratios are what carry over.

    sudo .venv/bin/python bench/storage.py [--mib 256]
"""

import argparse
import re
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

CIPHERS = {"aes-xts": ("aes-xts-plain64", 512), "adiantum": ("xchacha12,aes-adiantum-plain64", 256)}
TARGET = 0.9
KEY = "bench-only key"


def dd_mib_s(vm, target: str, mib: int) -> float:
    done = vm.run(
        [
            "dd",
            "if=/dev/zero",
            f"of={target}",
            "bs=1M",
            f"count={mib}",
            "oflag=direct",
            "conv=fsync",
        ],
        timeout=1800,
        check=True,
    )
    found = re.search(r"(\d+) bytes .* copied, ([\d.]+) s", done.stderr)
    return round(int(found[1]) / float(found[2]) / 2**20, 1)


def benchmark_mib_s(vm, spec: str, bits: int) -> float | None:
    done = vm.run(
        ["cryptsetup", "benchmark", "--cipher", spec, "--key-size", str(bits)], timeout=1800
    )
    found = re.search(r"\s([\d.]+) MiB/s\s+([\d.]+) MiB/s", done.stdout)
    return float(found[1]) if found else None  # a write encrypts; None: not runnable here


def measure(vm, mib: int) -> dict:
    vm.run(["modprobe", "dm-crypt"], check=True)
    loop = vm.run(
        [
            "sh",
            "-c",
            f"truncate -s {mib + 64}M /dev/shm/disk && losetup --find --show /dev/shm/disk",
        ],
        check=True,
    ).stdout.strip()
    out = {"raw_mib_s": dd_mib_s(vm, loop, mib)}
    for name, (spec, bits) in CIPHERS.items():
        vm.run(
            [
                "sh",
                "-c",
                f"printf %s '{KEY}' | cryptsetup luksFormat --batch-mode --type luks2 "
                f"--cipher {spec} --key-size {bits} --pbkdf pbkdf2 --pbkdf-force-iterations 1000 "
                f"--key-file - {loop} && printf %s '{KEY}' | cryptsetup open --key-file - {loop} "
                "cbbench",
            ],
            check=True,
            timeout=600,
        )
        try:
            written = dd_mib_s(vm, "/dev/mapper/cbbench", mib)
        finally:
            vm.run(["cryptsetup", "close", "cbbench"], check=True)
        figure = benchmark_mib_s(vm, spec, bits)
        out[name] = {
            "written_mib_s": written,
            "benchmark_mib_s": figure,
            "vs_benchmark": round(written / figure, 2) if figure else None,
            "vs_raw": round(written / out["raw_mib_s"], 2),
        }
    vm.run(["sh", "-c", f"losetup -d {loop}; rm -f /dev/shm/disk"])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "storage.json")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    build("qemu-amd64", out, default_cache(), test=True, log=lambda m: print(m, flush=True))
    with tempfile.TemporaryDirectory() as work:
        vm = VM(out, Path(work), card_mib=4096)
        vm.start()
        try:
            vm.wait_ready()
            t0 = time.monotonic()
            results = measure(vm, args.mib)
            results["seconds"] = round(time.monotonic() - t0, 1)
            flags = vm.run(["grep", "-m1", "^flags", "/proc/cpuinfo"]).stdout.split()
            results["cpu_has_aes"] = "aes" in flags
        finally:
            vm.stop()
            vm.cleanup()
    print(f"\n{'':<10} {'written MiB/s':>14} {'benchmark MiB/s':>16} {'ratio':>6} {'vs raw':>7}")
    print(f"{'raw':<10} {results['raw_mib_s']:>14}")
    for name in CIPHERS:
        r = results[name]
        print(
            f"{name:<10} {r['written_mib_s']:>14} {r['benchmark_mib_s'] or 'n/a':>16} "
            f"{r['vs_benchmark'] or 'n/a':>6} {r['vs_raw']:>7}"
        )
    met = all((results[n]["vs_benchmark"] or 0) >= TARGET for n in CIPHERS)
    report({"storage": results, "target_vs_benchmark": TARGET, "met": met}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

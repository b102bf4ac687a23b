"""The arm64 boards: one emulated root file system (minutes under qemu-user on these
machines, so `make test-slow` runs them), the Raspberry Pi boot partitions checked for
what the Pi firmware reads, each image's size (at most 600 MB raw), and qemu-arm64
booted under TCG to agent ready."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cbimage import profile as profiles

pytestmark = [pytest.mark.vm, pytest.mark.slow]
BOOT_OFFSET = 1024 * 1024  # the boot partition starts at 1 MiB (cbimage.disk)
MAX_IMAGE_BYTES = 600 * 10**6


def _build(board: str, test: bool = False) -> Path:
    if (
        shutil.which("qemu-aarch64-static") is None
        and not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists()
    ):
        pytest.fail(
            "arm64 emulation (qemu-user-static + binfmt) is missing: tools/setup.sh installs it"
        )
    from cbimage.build import build, default_cache

    out = Path(f"/var/tmp/commonsbox/{'test-' if test else ''}{board}")
    build(board, out, default_cache(), test=test, log=lambda m: print(m, flush=True))
    return out


def boot_partition(image: Path, into: Path) -> dict[str, bytes]:
    """The boot partition's files, copied out of disk.img with mtools (no mounting)."""
    into.mkdir()
    subprocess.run(
        ["mcopy", "-s", "-n", "-i", f"{image}@@{BOOT_OFFSET}", "::/*", str(into)], check=True
    )
    return {f.name: f.read_bytes() for f in into.iterdir() if f.is_file()}


@pytest.mark.parametrize("board", ["rpi4", "rpi5"])
def test_a_raspberry_pi_image_holds_what_the_pi_firmware_reads(board, tmp_path):
    out = _build(board)
    image, info = out / "disk.img", json.loads((out / "image.json").read_text())
    boot = profiles.load(board).boot
    files = boot_partition(image, tmp_path / "boot")
    wanted = {
        "config.txt",
        "cmdline.txt",
        "vmlinuz",
        "initrd.img",
        *boot["firmware"],
        *(Path(d).name for d in boot["device_trees"]),
    }
    assert wanted <= files.keys(), wanted - files.keys()
    assert all(files[name] for name in wanted), [n for n in wanted if not files[n]]
    config = files["config.txt"].decode()
    assert "arm_64bit=1" in config and "kernel=vmlinuz" in config
    assert "initramfs initrd.img followkernel" in config
    kernel = files["vmlinuz"]
    assert kernel[56:60] == b"ARM\x64", "not an arm64 kernel Image"
    cmdline = files["cmdline.txt"].decode()
    table = json.loads(
        subprocess.run(
            ["sfdisk", "--json", image], check=True, capture_output=True, text=True
        ).stdout
    )["partitiontable"]
    root_a = next(p for p in table["partitions"] if p.get("name") == "rootA")
    assert f"root=PARTUUID={root_a['uuid'].lower()} " in cmdline and "\n" == cmdline[-1]
    assert info["partitions"]["rootA"] == root_a["uuid"].lower()
    assert info["size_bytes"] <= MAX_IMAGE_BYTES, info["size_bytes"]
    print(
        f"{board}: {info['size_bytes'] / 10**6:.0f} MB ({info['size_bytes'] / 2**20:.0f} MiB) "
        f"raw; boot: {sorted(files)}"
    )


def test_the_qemu_arm64_image_boots_to_agent_ready_with_kernel_wireguard(tmp_path):
    from cbvm import VM

    out = _build("qemu-arm64", test=True)
    size = json.loads((out / "image.json").read_text())["size_bytes"]
    assert size <= MAX_IMAGE_BYTES, size
    machine = VM(out, tmp_path / "vm", card_mib=4096)
    machine.start()
    try:
        status = machine.wait_ready(timeout=float(os.environ.get("CBVM_ARM64_TIMEOUT", 1500)))
        print(f"qemu-arm64: agent ready {machine.ready_after:.0f} s after QEMU started")
        assert status["backend"] == "kernel" and status["box"]["claimed"] is False
        arch = machine.run(["dpkg", "--print-architecture"], check=True).stdout.strip()
        assert arch == "arm64"
        # The build machine's dpkg helpers, used while the packages went in, left no trace.
        for tool in ("dpkg-deb", "dpkg-split", "tar", "rm"):  # ELF machine 183: AArch64
            machine_type = machine.run(
                ["od", "-An", "-tu2", "-j18", "-N2", f"/usr/bin/{tool}"], check=True
            ).stdout.split()
            assert machine_type == ["183"], (tool, machine_type)
        diversions = machine.run(["dpkg-divert", "--list"], check=True).stdout
        assert "local diversion" not in diversions, diversions
        assert machine.run(["test", "-e", "/cbimage-native"]).rc == 1
        failed = machine.run(["systemctl", "--failed", "--no-legend", "--plain", "--no-pager"])
        assert failed.stdout.strip() == "", failed.stdout
    finally:
        machine.stop()
        machine.cleanup()

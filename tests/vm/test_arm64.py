"""The arm64 boards: one emulated root file system (minutes under qemu-user on these
machines, so `make test-slow` runs them), the Raspberry Pi boot partitions checked for
what the Pi firmware reads, each image's size (at most 600 MB raw), and qemu-arm64
booted under TCG to agent ready through its own bootloader (AAVMF, then GRUB from the
EFI system partition, which names the root slot), as qemu-amd64 boots."""

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


def _build(board: str, test: bool = False, update_cert: Path | None = None) -> Path:
    if (
        shutil.which("qemu-aarch64-static") is None
        and not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists()
    ):
        pytest.fail(
            "arm64 emulation (qemu-user-static + binfmt) is missing: tools/setup.sh installs it"
        )
    from cbimage.build import build, default_cache

    out = Path(f"/var/tmp/commonsbox/{'test-' if test else ''}{board}")
    build(
        board,
        out,
        default_cache(),
        test=test,
        log=lambda m: print(m, flush=True),
        update_cert=update_cert,
    )
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


@pytest.fixture(scope="module")
def arm64_box(update_key, tmp_path_factory):
    """The qemu-arm64 test image (taking updates signed with the test key), booted once
    for this file under TCG from a fresh 4 GiB card."""
    from cbvm import VM

    out = _build("qemu-arm64", test=True, update_cert=update_key[1])
    machine = VM(out, tmp_path_factory.mktemp("vm-arm64"), card_mib=4096)
    machine.start()
    try:
        machine.status = machine.wait_ready(
            timeout=float(os.environ.get("CBVM_ARM64_TIMEOUT", 1500))
        )
        print(f"qemu-arm64: agent ready {machine.ready_after:.0f} s after QEMU started")
        yield machine
    finally:
        machine.stop()
        machine.cleanup()


def test_the_qemu_arm64_image_boots_to_agent_ready_with_kernel_wireguard(arm64_box):
    machine = arm64_box
    size = machine.info["size_bytes"]
    assert size <= MAX_IMAGE_BYTES, size
    status = machine.status
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


def test_the_qemu_arm64_box_boots_root_a_through_uefi_and_grub(arm64_box, tmp_path):
    machine = arm64_box
    # QEMU was given firmware, not a kernel: what booted is the disk's own bootloader.
    command = " ".join(machine.command())
    assert "-kernel" not in command and "if=pflash" in command, command
    # The EFI system partition holds GRUB for arm64 UEFI and its slot choice; the kernel
    # is root A's own (in its /boot), not on the boot partition.
    esp = tmp_path / "esp"
    esp.mkdir()
    subprocess.run(
        ["mcopy", "-s", "-n", "-i", f"{machine.image_dir / 'disk.img'}@@{BOOT_OFFSET}",
         "::/*", str(esp)],
        check=True,
    )  # fmt: skip
    on_esp = sorted(str(f.relative_to(esp)) for f in esp.rglob("*") if f.is_file())
    assert on_esp == ["EFI/BOOT/BOOTAA64.EFI", "EFI/BOOT/grub.cfg", "EFI/BOOT/grubenv"], on_esp
    assert (esp / "EFI/BOOT/BOOTAA64.EFI").read_bytes()[:2] == b"MZ"  # a PE/COFF program
    # The guest came up under UEFI, and GRUB named the slot and its root on the command line.
    assert machine.run(["test", "-d", "/sys/firmware/efi"]).rc == 0
    cmdline = machine.run(["cat", "/proc/cmdline"], check=True).stdout.split()
    root_a = machine.info["partitions"]["rootA"]
    assert "rauc.slot=A" in cmdline and f"root=PARTUUID={root_a}" in cmdline, cmdline
    mounted = machine.run(["findmnt", "-n", "-o", "SOURCE", "/"], check=True).stdout.strip()
    by_uuid = machine.run(["readlink", "-f", f"/dev/disk/by-partuuid/{root_a}"], check=True)
    assert mounted == by_uuid.stdout.strip(), (mounted, by_uuid.stdout)
    # The box says it takes updates, which slot runs and which every reset boots.
    answer = machine.run(["commonsbox", "update", "status", "--json"], timeout=120)
    assert answer.rc == 0, answer.stderr
    status = json.loads(answer.stdout)
    assert status["takes_updates"] is True, status
    assert (status["booted"], status["primary"], status["in_trial"]) == ("A", "A", False), status
    assert "boot_error" not in status, status
    # Root B, made at first boot, is there for an update to write.
    root_b = machine.info["partitions"]["rootB"]
    assert machine.run(["test", "-b", f"/dev/disk/by-partuuid/{root_b}"]).rc == 0

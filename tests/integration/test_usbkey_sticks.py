"""USB key sticks made by an attacker: real FAT and ext4 file systems in files, on loop
devices, read and written by the agent's own code. Nothing outside the stick is read or
written; the household is told what is wrong with the stick."""

import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from appliance.errors import Invalid, SystemFailure
from appliance.storage import usbkey
from appliance.storage.disks import Disk
from appliance.system import System

UUID = "0f6f3c2e-8a41-4c7e-9d3a-5b2f1e0c7a99"
KEY_AT = f"commonsbox/{UUID}.key"
SECRET = "the box's root file: an attacker wants it read or overwritten"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (loop devices)")


@contextmanager
def stick(tmp_path: Path, kind: str, prepare):
    """A stick of file system KIND that PREPARE(root) filled, plugged in (a loop device)."""
    if kind not in Path("/proc/filesystems").read_text().split():
        pytest.skip(f"this kernel cannot mount {kind} (no modules here; the VM tier can)")
    image = tmp_path / f"stick.{kind}"
    with open(image, "wb") as f:
        f.truncate(64 << 20)
    mkfs = ["mkfs.vfat", "-n", "STICK"] if kind == "vfat" else ["mkfs.ext4", "-q", "-F"]
    subprocess.run([*mkfs, str(image)], check=True, capture_output=True)
    where = tmp_path / "prepare"
    where.mkdir(exist_ok=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(where)], check=True)
    try:
        prepare(where)
    finally:
        subprocess.run(["umount", str(where)], check=True)
    device = subprocess.run(
        ["losetup", "--find", "--show", str(image)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        yield Disk(
            name=os.path.basename(device),
            path=device,
            model="Attacker's stick",
            serial="1",
            size=64 << 20,
            usb=True,
            system=False,
            contents="filesystem",
            detail=kind,
            partitions=(),
        )
    finally:
        subprocess.run(["losetup", "-d", device], check=False)


@pytest.fixture
def canary(tmp_path):
    """A root file outside the stick, which the stick's links point at."""
    path = tmp_path / "outside" / "shadow"
    path.parent.mkdir()
    path.write_text(SECRET)
    os.chmod(path, 0o600)
    return path


def folder(root: Path) -> Path:
    (root / "commonsbox").mkdir()
    return root / "commonsbox"


def link_to(target):
    return lambda root: (folder(root) / f"{UUID}.key").symlink_to(target)


def fifo(root):
    os.mkfifo(folder(root) / f"{UUID}.key")


def a_directory(root):
    (folder(root) / f"{UUID}.key").mkdir()


def huge(root):
    with open(folder(root) / f"{UUID}.key", "wb") as f:
        f.truncate(8 << 20)


def hard_link(root):
    (root / "other").write_text("another file on the stick")
    os.link(root / "other", folder(root) / f"{UUID}.key")


def folder_link_to(target):
    return lambda root: (root / "commonsbox").symlink_to(target)


def device_node(root):
    os.mknod(folder(root) / f"{UUID}.key", 0o600 | 0o020000, os.makedev(1, 3))  # /dev/null


ATTACKS = {  # name: (file system, how the stick was prepared, what the household is told)
    "a link to a root file": ("ext4", lambda c: link_to(c), "is a link"),
    "a relative link out": ("ext4", lambda c: link_to("../" * 30 + str(c)[1:]), "is a link"),
    "the folder a link": ("ext4", lambda c: folder_link_to(c.parent), "is not a folder"),
    "a FIFO": ("ext4", lambda c: fifo, "is not a plain file"),
    "a device node": ("ext4", lambda c: device_node, "is not a plain file"),
    "a directory (ext4)": ("ext4", lambda c: a_directory, "is not a plain file"),
    "a directory (FAT)": ("vfat", lambda c: a_directory, "is not a plain file"),
    "a huge file (ext4)": ("ext4", lambda c: huge, "far larger than a key"),
    "a huge file (FAT)": ("vfat", lambda c: huge, "far larger than a key"),
    "a hard link": ("ext4", lambda c: hard_link, "other names"),
}


def untouched(canary: Path, before: os.stat_result) -> bool:
    after = canary.stat()
    return (
        canary.read_text() == SECRET
        and after.st_mtime_ns == before.st_mtime_ns
        and sorted(os.listdir(canary.parent)) == ["shadow"]
    )


@pytest.mark.parametrize("attack", ATTACKS, ids=list(ATTACKS))
def test_writing_a_key_onto_an_attackers_stick_refuses_and_touches_nothing(
    tmp_path, canary, attack
):
    kind, prepared, told = ATTACKS[attack]
    before = canary.stat()
    with stick(tmp_path, kind, prepared(canary)) as disk:
        with pytest.raises(Invalid) as err:
            usbkey.write_key(System(), disk, UUID, usbkey.new_key())
    assert told in str(err.value) and "Remove it from the stick" in str(err.value)
    assert err.value.field == "usb_contents"
    assert untouched(canary, before)


@pytest.mark.parametrize("attack", ATTACKS, ids=list(ATTACKS))
def test_reading_keys_from_an_attackers_stick_finds_none_and_reads_nothing_outside(
    tmp_path, canary, attack
):
    kind, prepared, _ = ATTACKS[attack]
    before = canary.stat()
    with stick(tmp_path, kind, prepared(canary)) as disk:
        started = time.monotonic()
        keys = usbkey.find_keys(System(), [disk], UUID)
    assert keys == [] and SECRET not in keys
    assert time.monotonic() - started < 10  # a FIFO is not waited on
    assert untouched(canary, before)


@pytest.mark.parametrize("kind", ["vfat", "ext4"])
def test_a_plain_stick_takes_a_key_and_gives_it_back(tmp_path, kind):
    key = usbkey.new_key()
    with stick(tmp_path, kind, lambda root: (root / "holiday.jpg").write_text("x")) as disk:
        usbkey.write_key(System(), disk, UUID, key)
        usbkey.write_key(System(), disk, UUID, key)  # again: the old file is replaced
        assert usbkey.find_keys(System(), [disk], UUID) == [key]
        where = tmp_path / "look"
        where.mkdir()
        subprocess.run(["mount", "-o", "ro", disk.path, str(where)], check=True)
        try:
            names = sorted(os.listdir(where / "commonsbox"))
            mode = (where / KEY_AT).stat().st_mode & 0o777
            other = (where / "holiday.jpg").read_text()
        finally:
            subprocess.run(["umount", str(where)], check=True)
    assert names == [f"{UUID}.key"] and other == "x"  # no temporary file left behind
    assert mode == 0o600 or kind == "vfat"  # FAT has no modes: mounted umask 077 instead


def test_a_stick_that_stops_answering_is_given_up_on():
    started = time.monotonic()
    with pytest.raises(SystemFailure, match="did not answer within"):
        usbkey.within(0.2, "reading the key", lambda: time.sleep(5))
    assert time.monotonic() - started < 1


def test_sticks_are_mounted_without_following_links_devices_or_programs(tmp_path):
    with stick(tmp_path, "ext4", lambda root: None) as disk:
        with usbkey._mounted(System(), disk.path, "ext4", writable=False) as root:
            mine = [
                line.split()
                for line in Path("/proc/self/mountinfo").read_text().splitlines()
                if line.split()[4] == str(root)
            ]
    options = set(mine[0][5].split(","))
    assert {"ro", "nodev", "nosuid", "noexec", "nosymfollow"} <= options

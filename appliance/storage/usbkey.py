"""The USB key: a file on a USB stick that opens the encrypted storage (LUKS key slot 2)
when the box starts, or when the stick is plugged in, so a box can come back after a
power cut without anyone typing the passphrase.

The stick keeps its file system and its other files: the key is one more file on it,
`commonsbox/<volume UUID>.key` (one stick can carry the keys of several boxes). Whoever
holds the stick holds the storage: it is meant to live in a drawer, not in the box.

A stick is a stranger's file system until proven otherwise: only FAT, exFAT and ext*
are mounted, read-only unless a key is being written, never with devices, set-uid
programs or executables, and only long enough to read or write one small file.
"""

import os
import secrets
import tempfile
from contextlib import contextmanager

from ..errors import Invalid, SystemFailure
from ..system import System
from .disks import Disk, probe

FILESYSTEMS = ("vfat", "exfat", "ext4", "ext3", "ext2")
OPTIONS = "nodev,nosuid,noexec"
OWNER_ONLY = {"vfat": ",uid=0,gid=0,umask=077", "exfat": ",uid=0,gid=0,umask=077"}
MOUNTS = "/run/commonsbox/usbkey"
MAX_KEY = 1024  # a key file any larger is not ours


def key_path(uuid: str) -> str:
    return f"commonsbox/{uuid}.key"


def new_key() -> str:
    return secrets.token_urlsafe(48)  # 384 random bits, as text a person could copy


def file_systems(disk: Disk, system: System) -> list[tuple[str, str]]:
    """(device, type) of the file systems a stick DISK holds that a key may live on."""
    if not disk.usb or disk.system:
        return []
    if disk.contents == "filesystem":
        found = [(disk.path, disk.detail)]
    elif disk.contents == "partitions":
        found = [(path, probe(system, path)[1]) for path in (f"/dev/{p}" for p in disk.partitions)]
    else:
        return []
    return [(path, kind) for path, kind in found if kind in FILESYSTEMS]


@contextmanager
def _mounted(system: System, device: str, kind: str, writable: bool):
    system.path(MOUNTS).mkdir(mode=0o700, parents=True, exist_ok=True)
    where = tempfile.mkdtemp(dir=system.path(MOUNTS))
    inside = f"{MOUNTS}/{os.path.basename(where)}"
    options = ("rw," if writable else "ro,") + OPTIONS + OWNER_ONLY.get(kind, "")
    try:
        system.run(["mount", "-t", kind, "-o", options, device, inside])
        try:
            yield system.path(inside)
        finally:
            system.run(["umount", inside], check=False)
    finally:
        os.rmdir(where)


def write_key(system: System, disk: Disk, uuid: str, key: str) -> None:
    """KEY onto DISK's first usable file system, owner-only, flushed before unmounting."""
    places = file_systems(disk, system)
    if not places:
        raise Invalid(
            f"{disk.confirm_name} has no file system the box can write a key to: "
            f"use a USB stick formatted as FAT, exFAT or ext4",
            "disk",
        )
    device, kind = places[0]
    with _mounted(system, device, kind, writable=True) as root:
        target = root / key_path(uuid)
        target.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
            f.flush()
            os.fsync(f.fileno())


def find_keys(system: System, disks: list[Disk], uuid: str) -> list[str]:
    """The keys for volume UUID on the USB sticks plugged in."""
    keys = []
    for disk in disks:
        for device, kind in file_systems(disk, system):
            try:
                with _mounted(system, device, kind, writable=False) as root:
                    target = root / key_path(uuid)
                    if target.is_file() and target.stat().st_size <= MAX_KEY:
                        keys.append(target.read_text(errors="replace").strip())
            except (SystemFailure, OSError):  # a stick that cannot be read holds no key
                continue
    return keys

"""The USB key: a file on a USB stick that opens the encrypted storage (LUKS key slot 2)
when the box starts, or when the stick is plugged in, so a box can come back after a
power cut without anyone typing the passphrase.

The stick keeps its file system and its other files: the key is one more file on it,
`commonsbox/<volume UUID>.key` (one stick can carry the keys of several boxes). Whoever
holds the stick holds the storage: it is meant to live in a drawer, not in the box.

A stick is a stranger's file system until proven otherwise: only FAT, exFAT and ext*
are mounted, read-only unless a key is being written, never with devices, set-uid
programs, executables or symbolic links that are followed (`nosymfollow`), and only long
enough to read or write one small file. Every name on it is opened relative to the
directory before it with O_NOFOLLOW; only a plain file with one name, at most MAX_KEY
bytes, is read; a key is written to a new file and renamed into place (a rename replaces
a name, it never writes through it). A stick that stops answering is given up on after
a timeout, never waited for.
"""

import logging
import os
import secrets
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from ..errors import Invalid, SystemFailure
from ..system import System
from .disks import Disk, probe

log = logging.getLogger(__name__)
T = TypeVar("T")

FILESYSTEMS = ("vfat", "exfat", "ext4", "ext3", "ext2")
OPTIONS = "nodev,nosuid,noexec,nosymfollow"
OWNER_ONLY = {"vfat": ",uid=0,gid=0,umask=077", "exfat": ",uid=0,gid=0,umask=077"}
MOUNTS = "/run/commonsbox/usbkey"
FOLDER = "commonsbox"
MAX_KEY = 1024  # a key file any larger is not ours
MOUNT_TIMEOUT = 30.0  # seconds a slow stick may take to mount (or unmount)
IO_TIMEOUT = 15.0  # ...and to read or write the key
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeStick(Invalid):
    """What is on the stick where the key goes is not a plain file of ours."""

    def __init__(self, what: str):
        super().__init__(
            f"the USB stick's {what}: the box neither follows links nor opens anything "
            f"but a small plain file there. Remove it from the stick, or use another stick",
            "usb_contents",
        )


def key_path(uuid: str) -> str:
    return f"{FOLDER}/{key_name(uuid)}"


def key_name(uuid: str) -> str:
    name = f"{uuid}.key"
    if "/" in name or name.startswith(".") or "\0" in name:  # the schema's UUIDs never are
        raise Invalid("not a volume UUID", "uuid")
    return name


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


def within(seconds: float, what: str, work: Callable[[], T]) -> T:
    """WORK's result, or SystemFailure once SECONDS have passed without one. A read from
    a hung device blocks in the kernel and cannot be interrupted: its thread is left
    behind (a daemon) rather than waited for."""
    done: dict = {}

    def run():
        try:
            done["value"] = work()
        except BaseException as err:  # handed to the caller
            done["error"] = err

    thread = threading.Thread(target=run, name=f"usbkey {what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise SystemFailure(f"the USB stick did not answer within {seconds:.0f} s ({what})")
    if "error" in done:
        raise done["error"]
    return done["value"]


def _run(system: System, cmd: list[str], what: str, check: bool = True) -> bool:
    try:
        return system.run(cmd, check=check, timeout=MOUNT_TIMEOUT).returncode == 0
    except subprocess.TimeoutExpired:
        if check:
            raise SystemFailure(
                f"the USB stick did not answer within {MOUNT_TIMEOUT:.0f} s ({what})"
            ) from None
        return False


@contextmanager
def _mounted(system: System, device: str, kind: str, writable: bool):
    system.path(MOUNTS).mkdir(mode=0o700, parents=True, exist_ok=True)
    where = tempfile.mkdtemp(dir=system.path(MOUNTS))
    inside = f"{MOUNTS}/{os.path.basename(where)}"
    options = ("rw," if writable else "ro,") + OPTIONS + OWNER_ONLY.get(kind, "")
    try:
        _run(system, ["mount", "-t", kind, "-o", options, device, inside], "mount")
        try:
            yield system.path(inside)
        finally:
            if not _run(system, ["umount", inside], "unmount", check=False):
                # Busy or hung: detach it now, the kernel lets go when it can.
                _run(system, ["umount", "--lazy", inside], "unmount", check=False)
    finally:
        try:
            os.rmdir(where)
        except OSError:
            log.warning("could not remove the mount point %s", where)


def _open_folder(root: Path, create: bool) -> int | None:
    """A descriptor of the stick's commonsbox/ folder (None if there is none), reached
    from the mount's root without following a link."""
    top = os.open(root, _DIR)
    try:
        if create:
            try:
                os.mkdir(FOLDER, 0o700, dir_fd=top)
            except FileExistsError:
                pass
        try:
            return os.open(FOLDER, _DIR, dir_fd=top)
        except FileNotFoundError:
            return None
        except OSError:  # ELOOP: a link; ENOTDIR: a file
            raise UnsafeStick(f"{FOLDER} is not a folder (a link or a file)") from None
    finally:
        os.close(top)


def _check_plain(info: os.stat_result, name: str) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeStick(f"{FOLDER}/{name} is a link")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeStick(f"{FOLDER}/{name} is not a plain file")
    if info.st_nlink != 1:
        raise UnsafeStick(f"{FOLDER}/{name} has other names (a hard link)")
    if info.st_size > MAX_KEY:
        raise UnsafeStick(f"{FOLDER}/{name} is far larger than a key")


def _write(root: Path, name: str, key: str) -> None:
    folder = _open_folder(root, create=True)
    assert folder is not None
    try:
        try:
            _check_plain(os.stat(name, dir_fd=folder, follow_symlinks=False), name)
        except FileNotFoundError:
            pass
        temporary = f".{name}.{secrets.token_hex(4)}"
        fd = os.open(
            temporary,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=folder,
        )
        try:
            os.write(fd, key.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.rename(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
        except OSError:
            os.unlink(temporary, dir_fd=folder)
            raise UnsafeStick(f"{FOLDER}/{name} is not a plain file") from None
        try:
            os.fsync(folder)  # the rename, on the stick before it is unmounted
        except OSError:  # not every file system syncs a directory; umount flushes it
            pass
    finally:
        os.close(folder)


def _read(root: Path, name: str) -> str | None:
    folder = _open_folder(root, create=False)
    if folder is None:
        return None
    try:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        fd = os.open(name, flags, dir_fd=folder)
    except FileNotFoundError:
        return None
    except OSError:  # ELOOP: a link; EACCES: a device node on a nodev mount
        raise UnsafeStick(f"{FOLDER}/{name} is a link or a device") from None
    finally:
        os.close(folder)
    try:
        _check_plain(os.fstat(fd), name)
        data = os.read(fd, MAX_KEY + 1)
        if len(data) > MAX_KEY:
            raise UnsafeStick(f"{FOLDER}/{name} is far larger than a key")
        return data.decode(errors="replace").strip()
    finally:
        os.close(fd)


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
    name = key_name(uuid)
    with _mounted(system, device, kind, writable=True) as root:
        within(IO_TIMEOUT, "writing the key", lambda: _write(root, name, key))


def find_keys(system: System, disks: list[Disk], uuid: str) -> list[str]:
    """The keys for volume UUID on the USB sticks plugged in."""
    keys, name = [], key_name(uuid)
    for disk in disks:
        for device, kind in file_systems(disk, system):
            try:
                with _mounted(system, device, kind, writable=False) as root:
                    key = within(IO_TIMEOUT, "reading the key", lambda: _read(root, name))
            except (SystemFailure, Invalid, OSError) as err:  # such a stick holds no key
                log.warning("no key read from %s: %s", device, err)
                continue
            if key:
                keys.append(key)
    return keys

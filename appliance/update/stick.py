"""An update on a USB stick: the feed directory `cbimage publish` writes, copied into
`commonsbox/update/` on the stick (feed.json, feed.json.sig and the bundles).

A stick is a stranger's file system (storage/usbkey.py says how the box treats one): the
caller mounts it as usbkey does, read-only with nodev, nosuid, noexec and nosymfollow.
Here every name is opened relative to the folder before it with O_NOFOLLOW, and only
plain files with one name are read, the feed and its signature no larger than a feed
can be. The bundle is checked while it is copied off the stick (feed.copy_checked); the
box installs the copy, as a stick can give other bytes on a second read.

What is on a stick was handed over on purpose, so it is checked as an offered bundle
(feed.offered: signed, this board's, newer), not against the feed's expiry.
"""

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from ..errors import Invalid
from ..storage import usbkey
from ..storage.disks import Disk
from ..system import System
from . import feed

FOLDER = f"{usbkey.FOLDER}/update"
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class UnsafeUpdateStick(usbkey.UnsafeStick):
    """What is on the stick where an update goes is not a plain file or folder."""

    def __init__(self, what: str):
        Invalid.__init__(
            self,
            f"the USB stick's {what}: the box does not follow links, and reads only plain "
            f"files in {FOLDER}. Remove it from the stick, or use another stick",
            "update_stick",
        )


def from_sticks(
    system: System,
    disks: Iterable[Disk],
    keys: Iterable[str],
    running: str,
    board: str,
    dest: Path,
) -> feed.Bundle | None:
    """The first newer update on the USB sticks among DISKS, copied to DEST (offered);
    each stick mounted read-only only while it is read, as usbkey mounts one."""
    keys = list(keys)
    for disk in disks:
        for device, kind in usbkey.file_systems(disk, system):
            with usbkey._mounted(system, device, kind, writable=False) as root:
                bundle = offered(root, keys, running, board, dest)
            if bundle is not None:
                return bundle
    return None


def offered(
    root: Path, keys: Iterable[str], running: str, board: str, dest: Path
) -> feed.Bundle | None:
    """The update on the stick mounted at ROOT for a BOARD box running RUNNING, copied
    to DEST if it is a newer one; None if the stick has none or the box runs it already."""
    folder = usbkey.within(usbkey.IO_TIMEOUT, "opening the update", lambda: _open_folder(root))
    if folder is None:
        return None
    try:
        data, signature = usbkey.within(
            usbkey.IO_TIMEOUT,
            "reading the update feed",
            lambda: (
                _read(folder, feed.FEED, feed.MAX_FEED),
                _read(folder, feed.SIGNATURE, feed.MAX_SIGNATURE),
            ),
        )
        bundle = feed.offered(data, signature, keys, running, board)
        if bundle is not None:
            with _open_plain(folder, bundle.file) as source:
                feed.copy_checked(source, bundle, dest)
        return bundle
    finally:
        os.close(folder)


def _open_folder(root: Path) -> int | None:
    """A descriptor of ROOT's commonsbox/update (None if there is none), each name
    opened from the one before without following a link."""
    fd = os.open(root, _DIR)
    reached = []
    for name in FOLDER.split("/"):
        reached.append(name)
        try:
            inner = os.open(name, _DIR, dir_fd=fd)
        except FileNotFoundError:
            return None
        except OSError:  # ELOOP: a link; ENOTDIR: a file
            raise UnsafeUpdateStick(
                f"{'/'.join(reached)} is not a folder (a link or a file)"
            ) from None
        finally:
            os.close(fd)
        fd = inner
    return fd


def _open_plain(folder: int, name: str) -> BinaryIO:
    try:
        fd = os.open(name, _FILE, dir_fd=folder)
    except FileNotFoundError:
        raise Invalid(
            f"the USB stick's {FOLDER} has no {name}: copy the whole feed folder onto it",
            "update_stick",
        ) from None
    except OSError as err:  # EACCES: a device node on a nodev mount
        what = "is a link" if err.errno == errno.ELOOP else "cannot be read"
        raise UnsafeUpdateStick(f"{FOLDER}/{name} {what}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeUpdateStick(f"{FOLDER}/{name} is not a plain file")
        if info.st_nlink != 1:
            raise UnsafeUpdateStick(f"{FOLDER}/{name} has other names (a hard link)")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read(folder: int, name: str, limit: int) -> bytes:
    with _open_plain(folder, name) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise UnsafeUpdateStick(f"{FOLDER}/{name} is larger than {limit} bytes")
    return data

"""The members' folders in the share: who gets a fresh one, whose is put away.

A folder belongs to the account that owns it by number, not by name. A member who has
left keeps no folder in the share: it is archived (moved out of the share, root-only)
or deleted, as the household chose. A folder whose owner is not the member of that
name (a departed member's uid, an account made again) is never handed over: it is
archived and a fresh one made. And a departed member's uid is never given to the next
member: accounts are numbered upwards from FIRST_UID past a high-water mark kept on the
box (next_uid), so even files of theirs left in shared/ belong to nobody who is here.
"""

import os
import shutil
import stat
import time
from dataclasses import dataclass

ARCHIVE_MODE = 0o700
FIRST_UID, LAST_UID = 20000, 29999  # members' files accounts, apart from the system's


@dataclass(frozen=True)
class Step:
    action: str  # "archive", "delete" or "make"
    name: str
    why: str


def plan(accounts: dict[str, int], folders: dict[str, int | None], departed: str) -> list[Step]:
    """ACCOUNTS: member -> uid of their files account; FOLDERS: the names in the share's
    root (shared/ aside) -> the uid owning that directory (None: not a directory);
    DEPARTED: the household's choice, "archive" or "delete"."""
    steps = []
    for name, owner in sorted(folders.items()):
        if name not in accounts:
            steps.append(Step(departed, name, "its member has left the household"))
        elif owner != accounts[name]:
            # Someone's files, but not this member's: kept (for root), never deleted.
            steps.append(Step("archive", name, f"owned by uid {owner}, not {accounts[name]}"))
    for name in sorted(accounts):
        if folders.get(name, -1) != accounts[name]:
            steps.append(Step("make", name, "a member without a folder"))
    return steps


def next_uid(used: set[int], high_water: int) -> int:
    """The uid for a new member: above any used now or ever (HIGH_WATER)."""
    above = max({high_water, FIRST_UID - 1} | {u for u in used if FIRST_UID <= u <= LAST_UID})
    candidate = above + 1
    while candidate in used:
        candidate += 1
    if candidate > LAST_UID:
        raise OverflowError("no uid left for the share's accounts")
    return candidate


def survey(root: str, shared: str) -> dict[str, int | None]:
    """The share's folders as plan() takes them (nothing there yet: none)."""
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return {}
    found: dict[str, int | None] = {}
    for name in names:
        if name == shared:
            continue
        info = os.lstat(os.path.join(root, name))
        found[name] = info.st_uid if stat.S_ISDIR(info.st_mode) else None
    return found


def archive(root: str, name: str, archive_dir: str, clock=time.time) -> str:
    """Move ROOT/NAME into ARCHIVE_DIR as NAME-YYYY-MM-DD (root-only): its path."""
    os.makedirs(archive_dir, mode=ARCHIVE_MODE, exist_ok=True)
    os.chown(archive_dir, 0, 0)
    os.chmod(archive_dir, ARCHIVE_MODE)
    stem = f"{name}-{time.strftime('%Y-%m-%d', time.gmtime(clock()))}"
    target, n = os.path.join(archive_dir, stem), 1
    while os.path.lexists(target):
        n += 1
        target = os.path.join(archive_dir, f"{stem}-{n}")
    os.rename(os.path.join(root, name), target)  # the same file system: the storage
    os.lchown(target, 0, 0)
    if not os.path.islink(target):
        os.chmod(target, ARCHIVE_MODE)
    return target


def delete(root: str, name: str) -> None:
    path = os.path.join(root, name)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)  # never follows a link inside
    else:
        os.unlink(path)

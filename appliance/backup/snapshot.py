"""What a backup keeps, copied into one folder (the snapshot) that borg then archives,
and where each part goes back on a restore.

Kept:
  stores/card/     the card's state store (its one revision) and secrets (VPN keys,
                   passphrase hashes, TOTP secrets, the installer's SSH host key)
  stores/volume/   every revision with its history, and the secrets kept with the data
                   (DKIM and TLS keys, app passwords' hashes...): on a box with
                   encrypted storage; without one, the card's stores hold it all
  data/mail, data/chat, data/files, data/files-archive   the household's data
  tls/             the web UI's certificate and key (the fingerprint members trust)

Not kept: the runtime store (sessions, one-time links, invitations, failed logins: a
restored box starts with everyone logged out), the daemons' rendered files
(PRIVATE/keys: written again from the secrets by the first reconcile), caches.

Consistency. The SQLite stores are copied with SQLite's backup API under the agent's
lock: each copy is one transaction's view, and no change (which writes the state store,
then the secrets) runs between them.

The data trees are read while the services run, and no file is kept torn:
- every file is hard-linked into the snapshot (on the same file system: no room, no
  time per byte). A file replaced by a rename (Maildir's delivery and flags, Prosody's
  stores, an app's safe save) keeps, in the link, the content it had. Maildir never
  rewrites a message in place; one renamed during the walk is missing under its old
  name and found by the second walk under its new one.
- a file written in place (Prosody appends to an archive, a member saves over a shared
  file) changes the linked copy too; borg says which files changed while it read them
  (status C). Those are replaced in the snapshot by copies checked untorn (copy_file:
  compared with what the file was before, inode, size, modification and change times
  to the nanosecond, and copied again if it changed), and the archive is made again
  (service.back_up); the files cache makes that second pass read only those files.
  A file that keeps changing at every try fails the backup rather than keep it torn.
"""

import logging
import os
import shutil
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import DiskFull, SystemFailure
from ..files.capability import ARCHIVE, FILES
from ..paths import Paths
from ..storage.place import PRIVATE
from ..system import System

log = logging.getLogger(__name__)

TREES = {  # in the snapshot -> on the box (System paths)
    "data/mail": f"{PRIVATE}/mail",
    "data/chat": f"{PRIVATE}/chat",
    "data/files": FILES,
    "data/files-archive": ARCHIVE,
}
SKIP = ("dovecot.index", "dovecot.index.cache", "dovecot.index.log", "dovecot.index.log.2")
TRIES = 5  # copies of one file that keeps changing before the backup gives up


def stores(paths: Paths) -> dict[str, Path]:
    """In the snapshot -> the agent's stores."""
    return {
        "stores/card/state.db": paths.state_db,
        "stores/card/secrets.db": paths.secrets_db,
        "stores/volume/state.db": paths.volume_state_db,
        "stores/volume/secrets.db": paths.volume_secrets_db,
        "tls/webui.crt": paths.tls_cert,
        "tls/webui.key": paths.tls_key,
    }


def copy_store(source: Path, target: Path) -> None:
    """A SQLite file as one transaction saw it (the backup API), into TARGET (0600)."""
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def take_stores(paths: Paths, into: Path) -> list[str]:
    """The agent's stores (call under the agent's lock) and its web certificate."""
    kept = []
    for name, source in stores(paths).items():
        if not source.exists():
            continue
        if source.suffix == ".db":
            copy_store(source, into / name)
        else:
            (into / name).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
        kept.append(name)
    return kept


def _fingerprint(st: os.stat_result) -> tuple:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def copy_file(source: Path, target: Path) -> bool:
    """SOURCE as it was between two looks that agree (see above); False if it went away
    meanwhile. SystemFailure if it changed at every try; DiskFull if there is no room."""
    for _ in range(TRIES):
        try:
            before = source.lstat()
            if stat.S_ISLNK(before.st_mode):
                target.unlink(missing_ok=True)
                os.symlink(os.readlink(source), target)
            else:
                shutil.copyfile(source, target, follow_symlinks=False)
                os.chmod(target, stat.S_IMODE(before.st_mode))
            os.lchown(target, before.st_uid, before.st_gid)
            os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns), follow_symlinks=False)
            if _fingerprint(source.lstat()) == _fingerprint(before):
                return True
        except FileNotFoundError:
            target.unlink(missing_ok=True)
            return False
        except OSError as err:
            if err.errno == 28:
                raise DiskFull("no room on the box's storage for the backup's snapshot") from None
            raise
    raise SystemFailure(f"{source} changed at every copy: not backed up torn")


def _walk(top: Path) -> Iterator[tuple[Path, list[str]]]:
    for here, dirs, files in os.walk(top):
        dirs.sort()
        yield Path(here), sorted(files)


def link_file(source: Path, target: Path) -> bool:
    """SOURCE hard-linked at TARGET; copied if it cannot be (another file system).
    False if it went away."""
    try:
        os.link(source, target, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False
    except OSError:
        return copy_file(source, target)


def copy_tree(source: Path, target: Path, linked: Callable[[Path], bool] | None = None) -> int:
    """Every file under SOURCE into TARGET, each untorn; two walks (see above). LINKED:
    which files are never written in place (hard-linked instead). Returns how many files
    were kept."""
    copied: set[Path] = set()
    for _ in range(2):
        for here, files in _walk(source):
            rel = here.relative_to(source)
            dest = target / rel
            if not dest.exists():
                st = here.stat()
                dest.mkdir(mode=0o700, parents=True)
                os.chmod(dest, stat.S_IMODE(st.st_mode))
                os.chown(dest, st.st_uid, st.st_gid)
            for name in files:
                if name in SKIP or rel / name in copied:
                    continue
                keep = link_file if linked and linked(here / name) else copy_file
                if keep(here / name, dest / name):
                    copied.add(rel / name)
    return len(copied)


def take_data(system: System, into: Path) -> dict[str, int]:
    """The household's data trees, linked (see above): files kept, by tree."""
    counts = {}
    for name, where in TREES.items():
        source = system.path(where)
        if source.is_dir():
            counts[name] = copy_tree(source, into / name, lambda path: True)
    return counts


def live(system: System, kept: str) -> Path | None:
    """Where a file of the snapshot (its path in the archive) is on the box."""
    for name, where in TREES.items():
        if kept.startswith(name + "/"):
            return system.path(where) / kept.removeprefix(name + "/")
    return None


def recopy(system: System, into: Path, changed: list[str]) -> None:
    """The files borg read while they changed, copied untorn over their links."""
    for kept in changed:
        source, target = live(system, kept), into / kept
        if source is None or ".." in Path(kept).parts:
            raise SystemFailure(f"borg named a file the snapshot does not hold: {kept!r}")
        target.unlink(missing_ok=True)
        copy_file(source, target)


def place(extracted: Path, paths: Paths, system: System) -> list[str]:
    """A restore: each part of an extracted snapshot where it belongs (what was there
    goes). The agent must not run. Returns what was placed."""
    placed = []
    for name, target in stores(paths).items():
        found = extracted / name
        if found.exists():
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            for stale in (target, target.with_name(target.name + "-wal"),
                          target.with_name(target.name + "-shm")):  # fmt: skip
                stale.unlink(missing_ok=True)
            shutil.move(found, target)  # onto the card, from the storage
            placed.append(name)
    for name, where in TREES.items():
        found = extracted / name
        if found.is_dir():
            target = system.path(where)
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            if target.exists():
                shutil.rmtree(target)
            os.replace(found, target)
            placed.append(name)
    return placed

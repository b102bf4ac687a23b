"""A consistent copy of every store of a place, taken before an agent migrates them.

    update/snapshots/state1-secrets1-runtime1-to-state2-secrets1-runtime1/
        state.db  secrets.db  runtime.db     each 0600, in a 0700 folder
        manifest.json                        the versions from and to, when, the head

Each store is copied with SQLite's backup API in one step: a read transaction over the
whole copy, so the copy is one moment of the store even while another connection
writes (a copy of the files could tear a page or miss the write-ahead log). Each copy is
one file (journal_mode DELETE). The folder is written under a hidden temporary name,
fsynced, then renamed: a snapshot is whole or absent.

Only the latest snapshot is kept. A box has two root slots, so the only older version
that can come back is the one in the other slot, and the latest snapshot is the one
taken when this slot's version first migrated the stores written by it (an update that
migrates nothing takes none, and the stores stay readable by both). An older snapshot
could only take the household further back than any slot needs, and it holds secrets
the household may have deleted since: it is overwritten and removed.
"""

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from .files import private_dir, read_json, shred, sync_dir, sync_file, write_json
from .stores import FINGERPRINT_FORMAT, Place, Versions, read_only

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Snapshot:
    path: Path
    taken_at: float
    agent: str  # the version of the agent that took it (the one about to migrate)
    found: Versions  # the stores' versions in it ("from")
    to: dict[str, int]  # what that agent migrated them to
    head: int | None  # the newest revision in its state store
    after: dict | None  # each store's fingerprint once migrated (stores.fingerprint)


def name(found: Versions, to: dict[str, int]) -> str:
    def part(versions: dict) -> str:
        return "-".join(f"{kind}{versions[kind] or 0}" for kind in to)

    return f"{part(found)}-to-{part(to)}"


def copy_store(source: Path, target: Path) -> None:
    """A consistent copy of the store at SOURCE as the single file TARGET (0600)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    src, dst = read_only(source), sqlite3.connect(target)
    try:
        src.backup(dst)  # pages=-1: all in one step, under one read transaction
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()
    sync_file(target)


def _newest_revision(path: Path) -> int | None:
    db = read_only(path)
    try:
        return db.execute("SELECT max(n) FROM revisions").fetchone()[0]
    except sqlite3.Error:
        return None
    finally:
        db.close()


def take(place: Place, found: Versions, to: dict[str, int]) -> Path:
    """Copy every store of PLACE that exists; the snapshot's folder."""
    root = private_dir(place.snapshots)
    final = root / name(found, to)
    tmp = root / f".{final.name}.tmp"
    if tmp.exists():
        shred(tmp)  # a snapshot the power cut short
    private_dir(tmp)
    for kind, path in place.stores.items():
        if found.get(kind) is not None:
            copy_store(path, tmp / f"{kind}.db")
    head = _newest_revision(tmp / "state.db") if (tmp / "state.db").exists() else None
    write_json(
        tmp / MANIFEST,
        {
            "format": 1,
            "place": place.name,
            "taken_at": time.time(),
            "agent": __version__,
            "from": found,
            "to": to,
            "head": head,
            "fingerprint_format": FINGERPRINT_FORMAT,
            "after": None,
        },
    )
    sync_dir(tmp)
    if final.exists():  # the same update tried again: the newer copy wins
        old = root / f".{final.name}.old"
        os.replace(final, old)
        shred(old)
    os.replace(tmp, final)
    sync_dir(root)
    for other in root.iterdir():
        if other != final:
            shred(other)
    return final


def migrated(path: Path, fingerprints: dict[str, dict[str, str]]) -> None:
    """Record what the stores hold once migrated: at a fallback, what differs from this
    is what the trial changed."""
    manifest = read_json(path / MANIFEST) or {}
    write_json(path / MANIFEST, {**manifest, "after": fingerprints})


def load(path: Path) -> Snapshot | None:
    m = read_json(path / MANIFEST)
    if m is None or m.get("format") != 1:
        return None
    after = m.get("after") if m.get("fingerprint_format") == FINGERPRINT_FORMAT else None
    return Snapshot(path, m["taken_at"], m["agent"], m["from"], m["to"], m["head"], after)


def latest(place: Place) -> Snapshot | None:
    if not place.snapshots.is_dir():
        return None
    found = [
        s
        for p in place.snapshots.iterdir()
        if not p.name.startswith(".") and (s := load(p)) is not None
    ]
    return max(found, key=lambda s: s.taken_at, default=None)


def remove(path: Path) -> None:
    shred(path)

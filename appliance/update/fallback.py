"""Putting a snapshot back, and naming what that undoes.

An older agent that finds its stores newer than it knows (the box came back from a
newer version's failed trial, or was rolled back) puts back the snapshot that version
took before it migrated, and writes a report of what the household loses with it:

    {"format": 1, "at": 1765432100.0, "place": "card", "reason": "newer_stores",
     "found": {"state": 2, ...}, "restored": {"state": 1, ...},
     "snapshot": {"name": "...", "taken_at": ..., "agent": "0.2.0"},
     "lost_revisions": [{"revision": 14, "at": ..., "who": "ana", "why": "..."}],
     "changed": {"runtime": ["languages", "sessions"], "secrets": ["secrets"]},
     "kept": "update/trial"}

``lost_revisions`` are the configuration changes made after the snapshot, as the
revision store recorded them (None: the newer file could not be read); ``changed``
names the other stores, and their tables, that differ from what the newer agent had
just after migrating (None: unknown). Plain data: the web UI words it. The trial's
own files are not deleted but set aside in ``kept``.

The order makes it atomic across several files. The snapshot's stores are copied into
a staging folder with the report, fsynced, and renamed into ``restoring/``: from then
on the fallback is decided. Each store's files then move into the trial folder, its
write-ahead log first (a log left beside the restored file would be replayed into it),
and the staged copy is renamed into its place; then the report is written, the trial
folder renamed into place, and ``restoring/`` removed last. After a power cut anywhere,
finish() at the next start completes it: every step may run again.
"""

import os
import sqlite3
import time

from .files import private_dir, read_json, shred, sync_dir, write_json
from .snapshot import Snapshot, copy_store
from .stores import Place, Versions, fingerprint, read_only

PLAN = "plan.json"
SUFFIXES = ("-wal", "-shm", "")  # a store's files, its log first


def lost_revisions(place: Place, after: int | None) -> list[dict] | None:
    """The revisions the newer file holds past AFTER (n, at, who, why: columns every
    version keeps, appliance/store.py), oldest first."""
    path = place.stores.get("state")
    if path is None or not path.exists():
        return []
    db = read_only(path)
    try:
        rows = db.execute(
            "SELECT n, at, who, why FROM revisions WHERE n > ? ORDER BY n", (after or 0,)
        ).fetchall()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    return [{"revision": n, "at": float(at), "who": who, "why": why} for n, at, who, why in rows]


def changed(place: Place, snap: Snapshot) -> dict[str, list[str]] | None:
    """The stores other than the state (whose changes are its revisions) that differ
    from what they held just after the migration, and in which tables."""
    if snap.after is None:
        return None
    out = {}
    for kind, path in place.stores.items():
        if kind == "state":
            continue
        now = fingerprint(path) if path.exists() else {}
        then = snap.after.get(kind, {})
        tables = sorted(t for t in now.keys() | then.keys() if now.get(t) != then.get(t))
        if tables:
            out[kind] = tables
    return out


def describe(place: Place, snap: Snapshot, found: Versions, reason: str) -> dict:
    return {
        "format": 1,
        "at": time.time(),
        "place": place.name,
        "reason": reason,
        "found": found,
        "restored": snap.found,
        "snapshot": {"name": snap.path.name, "taken_at": snap.taken_at, "agent": snap.agent},
        "lost_revisions": lost_revisions(place, snap.head),
        "changed": changed(place, snap),
        "kept": str(place.trial.relative_to(place.base)),
    }


def restore(place: Place, snap: Snapshot, found: Versions, reason: str) -> dict:
    """Put SNAP back in PLACE (whose stores are closed); the report."""
    report = describe(place, snap, found, reason)
    private_dir(place.dir)
    staging = place.dir / ".restoring.tmp"
    if staging.exists():
        shred(staging)  # staged before a power cut, never decided: start again
    private_dir(staging)
    present = [kind for kind in place.stores if (snap.path / f"{kind}.db").exists()]
    for kind in present:
        copy_store(snap.path / f"{kind}.db", staging / f"{kind}.db")
    write_json(staging / PLAN, {"present": present, "report": report})
    sync_dir(staging)
    os.replace(staging, place.restoring)  # decided
    sync_dir(place.dir)
    return finish(place) or report


def finish(place: Place) -> dict | None:
    """Complete a decided fallback (after a power cut, at the next start); its report,
    or None if there was none to complete."""
    staged = place.restoring
    if not staged.is_dir():
        return None
    plan = read_json(staged / PLAN)
    if plan is None:  # the power went while it was being removed: it was done
        shred(staged)
        return None
    aside = place.dir / "trial.new"
    for kind, path in place.stores.items():
        copy = staged / f"{kind}.db"
        if kind in plan["present"] and not copy.exists():
            continue  # put back already
        for suffix in SUFFIXES:
            live = path.with_name(path.name + suffix)
            if live.exists():
                os.replace(live, private_dir(aside) / f"{kind}.db{suffix}")
        if copy.exists():
            os.replace(copy, path)
        sync_dir(path.parent)
    if aside.is_dir():
        sync_dir(aside)
    write_json(place.report, plan["report"])
    if aside.is_dir():
        if any(aside.iterdir()):
            if place.trial.exists():
                shred(place.trial)  # an older trial's: only the latest is kept
            os.replace(aside, place.trial)
        else:
            aside.rmdir()
    shred(staged)
    sync_dir(place.dir)
    report: dict = plan["report"]
    return report

"""The household's state across versions: both root slots share the data partition.

A newer agent that would migrate any store first snapshots every store of that place
(snapshot.py), then migrates them and records what they hold once migrated. An older
agent that finds a store newer than it knows refuses it (storeversion.NewerStore) and
puts that snapshot back, naming what the household loses (fallback.py); with no
snapshot that fits, it refuses to start and says which versions it found and knows.

    at_start(paths)                  the agent's start, before it opens the card's stores
    at_unlock(paths)                 before the encrypted volume's stores are opened
    fall_back(paths, TRIAL_FAILED)   the update found the trial failed (stores closed)
    reports(paths)                   the latest fallback report of each place readable now
    forget(paths)                    a factory reset: snapshots, trial and report go

A store at version 0 (written before stores had versions, or empty) that only needs the
first layout takes no snapshot: the agents before versions read that layout as theirs.
"""

import logging

from ..paths import Paths
from ..storeversion import NewerStore
from . import fallback, snapshot
from .files import read_json, shred
from .stores import Place, Versions, card, fingerprint, known, open_store, versions, volume

log = logging.getLogger(__name__)

NEWER_STORES = "newer_stores"  # a report's reason: found at the agent's start or unlock
TRIAL_FAILED = "trial_failed"  # the update said so


def at_start(paths: Paths) -> dict | None:
    """Before the agent opens the card's stores: the fallback's report if it put a
    snapshot back. NewerStore if it must and cannot."""
    return _prepare(card(paths))


def at_unlock(paths: Paths) -> dict | None:
    """The same for the encrypted volume's stores, as it is unlocked."""
    return _prepare(volume(paths))


def fall_back(paths: Paths, reason: str = TRIAL_FAILED) -> dict | None:
    """The card's stores back as they were before a newer version migrated them, if it
    did; None if they are still this agent's own (nothing is undone then)."""
    place = card(paths)
    fallback.finish(place)
    found, to = versions(place), known(place)
    return _fall_back(place, found, to, reason) if _newer(found, to) else None


def reports(paths: Paths) -> list[dict]:
    """The latest fallback's report of each place whose update folder is readable now
    (the volume's only while it is unlocked)."""
    found = (read_json(place.report) for place in (card(paths), volume(paths)))
    return [r for r in found if r is not None]


def forget(paths: Paths) -> None:
    """A factory reset: the snapshots and the trial hold the household's secrets."""
    for place in (card(paths), volume(paths)):
        for path in (place.snapshots, place.trial, place.restoring, place.report):
            if path.exists():
                shred(path)


def _newer(found: Versions, to: dict[str, int]) -> list[str]:
    return [kind for kind, v in found.items() if v is not None and v > to[kind]]


def _migrates(found: Versions, to: dict[str, int]) -> bool:
    return any(v is not None and v < to[kind] and to[kind] > 1 for kind, v in found.items())


def _fits(snap: snapshot.Snapshot, found: Versions, to: dict[str, int]) -> bool:
    """SNAP can stand for stores at FOUND: this agent reads every store in it, and no
    store now is newer than what the agent that took it migrated to."""
    readable = all(v is None or v <= to.get(kind, 0) for kind, v in snap.found.items())
    made_by_it = all(v is None or v <= snap.to.get(kind, 0) for kind, v in found.items())
    return readable and made_by_it


def _prepare(place: Place) -> dict | None:
    report = fallback.finish(place)  # one a power cut stopped
    found, to = versions(place), known(place)
    if _newer(found, to):
        report = _fall_back(place, found, to, NEWER_STORES)
        found = versions(place)
    if _migrates(found, to):
        taken = snapshot.take(place, found, to)
        log.info("the %s's stores are snapshotted in %s before migrating", place.name, taken)
        for kind, path in place.stores.items():
            if found[kind] is not None:
                open_store(kind, path).close()
        snapshot.migrated(
            taken,
            {kind: fingerprint(p) for kind, p in place.stores.items() if found[kind] is not None},
        )
    return report


def _fall_back(place: Place, found: Versions, to: dict[str, int], reason: str) -> dict:
    kind = _newer(found, to)[0]
    version = found[kind]
    assert version is not None
    log.warning("%s", NewerStore(kind, version, to[kind]).message)
    snap = snapshot.latest(place)
    if snap is None or not _fits(snap, found, to):
        raise NewerStore(
            kind,
            version,
            to[kind],
            "; there is no snapshot from before it migrated that this version can put back",
        )
    log.warning("put back the snapshot %s (the %s's stores)", snap.path.name, place.name)
    report = fallback.restore(place, snap, found, reason)
    lost = report["lost_revisions"]
    log.warning(
        "undone with it: %s; other stores changed: %s",
        "unknown revisions"
        if lost is None
        else ", ".join(f"revision {r['revision']} by {r['who']} ({r['why']})" for r in lost)
        or "no revision",
        report["changed"],
    )
    return report

"""The desired state in SQLite: numbered revisions, and what was ever handed out.

Every change is a new revision (who, when, why, the document). Restoring an old
revision is itself a new revision. A revision is stored as a manifest of
content-addressed blobs (appliance/revisionstore.py), so a change writes what it
changed, not the whole document. The household keeps the newest ``keep`` revisions
and any it pinned; older ones are deleted, and every one kept can be loaded again.

Device ids are never handed out twice. A VPN address is not handed out again while
any kept revision holds it, so restoring a kept revision never clashes; once the last
revision that held it is deleted, the address is free again. Both are recorded in the
same transaction as the revision.
"""

import json
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from . import validate as v
from .errors import NotFound
from .revisionstore import (
    DEVICES,
    canonical,
    chunks,
    digest,
    ends_chunk,
    join_document,
    split_document,
)
from .schema import SCHEMA_VERSION, Desired, upgraded
from .sqlite import compact, open_private
from .storeversion import Migration, NewerStore, migrate, statements

KEEP_DEFAULT = 500
KEEP_MIN, KEEP_MAX = 10, 100_000
SWEEP_EVERY = 32  # deleted revisions between sweeps of their blobs and addresses

_SCHEMA = """
CREATE TABLE IF NOT EXISTS revisions (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    who TEXT NOT NULL,
    why TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS handed_out (
    address TEXT PRIMARY KEY,
    device_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS blobs (
    hash TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    lo INTEGER,
    hi INTEGER
);
"""
# The first layout stored the whole document in ``doc``; a revision stored since has
# doc = '' and its ``manifest``. Opening an old file converts it (_convert).
_COLUMNS = (
    ("manifest", "ALTER TABLE revisions ADD COLUMN manifest TEXT"),
    ("pinned", "ALTER TABLE revisions ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0"),
)
DOCUMENT_FORMAT = "document_format"  # a counter: the newest documents' format it may hold


def _layout_1(db) -> None:
    """Today's tables; a file from before versions (or from the first layout) brought to
    them."""
    for statement in statements(_SCHEMA):
        db.execute(statement)
    columns = {row[1] for row in db.execute("PRAGMA table_info(revisions)")}
    for name, ddl in _COLUMNS:
        if name not in columns:
            db.execute(ddl)
    _convert(db)
    db.execute(f"INSERT OR IGNORE INTO counters VALUES ('{DOCUMENT_FORMAT}', 1)")


def documents(fmt: int) -> Migration:
    """The migration for the day the documents change format (schema.SCHEMA_VERSION and
    schema.DOCUMENT_UPGRADES): from it on the store may hold documents of format FMT, so
    an agent that reads only older ones refuses the whole file before reading any."""

    def may_hold(db) -> None:
        db.execute(
            "INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)", (DOCUMENT_FORMAT, fmt)
        )

    return may_hold


# MIGRATIONS[k - 1] makes layout k (appliance/storeversion.py). Whatever comes, the
# revisions table keeps n, at, who and why as they are: an older agent that comes back
# after a failed update reads them from the newer file to name what the trial changed
# (appliance/update/fallback.py).
MIGRATIONS: list[Migration] = [_layout_1]


@dataclass(frozen=True)
class Revision:
    n: int
    at: float
    who: str
    why: str
    pinned: bool = False

    def to_json(self) -> dict:
        return {
            "revision": self.n,
            "at": self.at,
            "who": self.who,
            "why": self.why,
            "pinned": self.pinned,
        }


def keep_count(value, fld: str = "keep") -> int:
    return v.integer(value, fld, KEEP_MIN, KEEP_MAX)


class _Layout:
    """Turns a Desired into a manifest and the blobs it needs, reusing the hashes of
    the slices and device chunks it saw last time (the same frozen objects, found by
    identity): only what changed is serialised and hashed."""

    def __init__(self):
        self._seen: dict[tuple, tuple[tuple, str]] = {}
        self._runs: list[tuple[tuple, str]] = []  # last time's chunks, in order

    def split(self, desired: Desired, stored: set[str]) -> tuple[dict, dict[str, tuple[str, list]]]:
        """(manifest, {hash: (body, devices in it)}) for the blobs it refers to that
        may not be ``stored`` yet."""
        seen, self._seen = self._seen, {}
        blobs: dict[str, tuple[str, list]] = {}

        def put(key: tuple, hold: tuple, make, devices=()) -> str:
            found = seen.get(key)
            # Same ids of live objects held by the cache: the same objects (== is
            # identity first, and equal content would hash the same anyway).
            if found is not None and found[1] in stored and found[0] == hold:
                h = found[1]
            else:
                body = canonical(make())
                h = digest(body)
                blobs[h] = (body, list(devices))
            self._seen[key] = (hold, h)
            return h

        slices = {}
        for name, part in desired.parts().items():
            if name == "vpn":
                part = replace(part, devices=())
                make = lambda p=part: {k: x for k, x in p.to_json().items() if k != DEVICES}  # noqa: E731
                key: tuple = ("vpn", canonical(make()))
                slices[name] = put(key, (), make)
            else:
                slices[name] = put((name, id(part)), (part,), part.to_json)
        devices = desired.vpn.devices
        hashes, runs, start = [], [], 0
        # Last time's chunks, as long as the devices still start with them (compared
        # by identity, in C): adding a device re-reads one chunk, not ten thousand.
        for run, h in self._runs:
            end = start + len(run)
            if h not in stored or not ends_chunk(run[-1].id) or devices[start:end] != run:
                break
            self._seen[(DEVICES, *map(id, run))] = (run, h)
            hashes.append(h)
            runs.append((run, h))
            start = end
        for run in chunks(devices[start:]):
            run_t = tuple(run)
            hashes.append(
                put(
                    (DEVICES, *map(id, run_t)),
                    run_t,
                    lambda r=run_t: [d.to_json() for d in r],
                    run_t,
                )
            )
            runs.append((run_t, hashes[-1]))
        self._runs = runs
        return {"schema": SCHEMA_VERSION, "slices": slices, DEVICES: hashes}, blobs


def _convert(db) -> None:
    """Revisions stored whole (the first layout) become manifests, in the migration's
    transaction."""
    for n, doc in db.execute("SELECT n, doc FROM revisions WHERE manifest IS NULL").fetchall():
        manifest, blobs = split_document(json.loads(doc))
        _insert_blobs(db, {h: (body, None) for h, body in blobs.items()})
        db.execute(
            "UPDATE revisions SET doc = '', manifest = ? WHERE n = ?", (canonical(manifest), n)
        )


def _insert_blobs(db, blobs: dict) -> None:
    rows = []
    for h, (body, devices) in blobs.items():
        lo = hi = None
        if devices:
            lo, hi = devices[0].id, devices[-1].id
        elif devices is None and body.startswith("["):  # a chunk, from a whole document
            parsed = json.loads(body)
            lo, hi = (parsed[0]["id"], parsed[-1]["id"]) if parsed else (None, None)
        rows.append((h, body, lo, hi))  # a chunk's ids: what the sweep looks for
    db.executemany("INSERT OR IGNORE INTO blobs (hash, body, lo, hi) VALUES (?, ?, ?, ?)", rows)


class StateStore:
    """Single writer (the agent); callers hold the agent's lock around changes."""

    def __init__(self, path: Path):
        self._db = open_private(path)
        self._lock = threading.RLock()
        try:
            if migrate(self._db, "state", MIGRATIONS) < len(MIGRATIONS):
                compact(self._db)  # what a conversion replaced goes from the log too
            self._check_document_format()
        except BaseException:
            self._db.close()
            raise
        self._handed_out = {row[0] for row in self._db.execute("SELECT address FROM handed_out")}
        self._blobs = {row[0] for row in self._db.execute("SELECT hash FROM blobs")}
        self._last_device_id = self._counter("device_id", 0)
        self._releases = 0
        self._layout = _Layout()
        self._head: tuple[Revision, Desired] | None = None

    def _counter(self, name: str, default: int) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return row[0] if row else default

    def _check_document_format(self) -> None:
        held = self._counter(DOCUMENT_FORMAT, 1)
        if held > SCHEMA_VERSION:  # a layout that says so would have been refused first
            raise NewerStore("state", held, SCHEMA_VERSION, " (its documents' format)")
        if held < SCHEMA_VERSION:  # the code's mistake, not the household's: say which
            raise RuntimeError(
                f"this agent writes documents of format {SCHEMA_VERSION}, but the state "
                f"store's migrations let it hold format {held} at most: add "
                f"store.documents({SCHEMA_VERSION}) to store.MIGRATIONS"
            )

    def _insert_blobs(self, blobs: dict) -> None:
        _insert_blobs(self._db, blobs)

    # -- reading -------------------------------------------------------------------

    def head(self) -> tuple[Revision, Desired] | None:
        """The newest revision, validated; None on a box that has never been set up."""
        with self._lock:
            if self._head is None:
                row = self._db.execute(
                    "SELECT n, at, who, why, pinned FROM revisions ORDER BY n DESC LIMIT 1"
                ).fetchone()
                if row is None:
                    return None
                self._head = (
                    Revision(*row[:4], bool(row[4])),
                    Desired.from_json(self.document(row[0])),
                )
            return self._head

    def history(self, limit: int = 50, before: int | None = None) -> list[Revision]:
        with self._lock:
            rows = self._db.execute(
                "SELECT n, at, who, why, pinned FROM revisions WHERE n < ? ORDER BY n DESC LIMIT ?",
                (before if before is not None else 2**62, limit),
            ).fetchall()
        return [Revision(*row[:4], bool(row[4])) for row in rows]

    def document(self, n: int) -> dict:
        with self._lock:
            row = self._db.execute("SELECT manifest FROM revisions WHERE n = ?", (n,)).fetchone()
            if row is None:
                raise NotFound(f"there is no revision {n}", "revision")
            # In this agent's format: a revision stored before an update is upgraded.
            return upgraded(join_document(json.loads(row[0]), self._body))

    def _body(self, h: str) -> str:
        row = self._db.execute("SELECT body FROM blobs WHERE hash = ?", (h,)).fetchone()
        if row is None:  # an invariant broken: say which, rather than a KeyError
            raise NotFound(f"a stored revision lost its part {h}", "revision")
        return row[0]

    def revision(self, n: int) -> Revision:
        with self._lock:
            row = self._db.execute(
                "SELECT n, at, who, why, pinned FROM revisions WHERE n = ?", (n,)
            ).fetchone()
        if row is None:
            raise NotFound(f"there is no revision {n}", "revision")
        return Revision(*row[:4], bool(row[4]))

    # -- retention -----------------------------------------------------------------

    @property
    def keep(self) -> int:
        """How many of the newest revisions are kept (besides the pinned ones)."""
        with self._lock:
            return self._counter("keep_revisions", KEEP_DEFAULT)

    def set_keep(self, keep) -> int:
        keep = keep_count(keep)
        with self._lock:

            def write():
                self._db.execute(
                    "INSERT OR REPLACE INTO counters (name, value) VALUES ('keep_revisions', ?)",
                    (keep,),
                )
                self._prune()

            self._transaction(write)
            self._after_prune()
        return keep

    def pin(self, n: int, pinned: bool = True) -> Revision:
        """A pinned revision is kept however old it gets; unpinned, it is old like any."""
        with self._lock:
            revision = replace(self.revision(n), pinned=pinned)  # NotFound first

            def write():
                self._db.execute("UPDATE revisions SET pinned = ? WHERE n = ?", (int(pinned), n))
                self._prune()

            self._transaction(write)
            self._after_prune()
            if self._head is not None and self._head[0].n == n:
                self._head = (revision, self._head[1])
            return revision

    def _prune(self) -> None:
        """Inside a transaction: delete the revisions past the newest ``keep`` that are
        not pinned; their blobs and addresses go at the next sweep."""
        cur = self._db.execute(
            "DELETE FROM revisions WHERE pinned = 0 AND n <= "
            "(SELECT n FROM revisions ORDER BY n DESC LIMIT 1 OFFSET ?)",
            (self._counter("keep_revisions", KEEP_DEFAULT),),
        )
        if cur.rowcount > 0:
            self._db.execute(
                "INSERT OR REPLACE INTO counters (name, value) VALUES ('unswept', ?)",
                (self._counter("unswept", 0) + cur.rowcount,),
            )

    def _after_prune(self) -> None:
        if self._counter("unswept", 0) >= SWEEP_EVERY:
            self.sweep()

    def forget_before(self, n: int) -> None:
        """A factory reset: the revisions before N and their blobs go, overwritten. The
        addresses they held stay used (a reset never hands one out twice)."""
        with self._lock:
            self._transaction(lambda: self._db.execute("DELETE FROM revisions WHERE n < ?", (n,)))
            self.sweep(release=False)
            compact(self._db)

    def sweep(self, release: bool = True) -> set[int]:
        """Delete the blobs no kept revision refers to, and free the addresses of the
        devices that no kept revision holds any more. Returns those devices' ids."""
        with self._lock:
            live: set[str] = set()
            for (manifest,) in self._db.execute("SELECT manifest FROM revisions"):
                m = json.loads(manifest)
                live.update(m["slices"].values(), m[DEVICES])
            dead = self._blobs - live
            ranges = [
                (lo, hi, h)
                for h, lo, hi in self._db.execute(
                    "SELECT hash, lo, hi FROM blobs WHERE lo IS NOT NULL"
                )
                if h in live
            ]
            gone: dict[int, tuple[str, str]] = {}
            kept_ids: set[int] = set()
            for h in dead:
                body = self._body(h)
                if not body.startswith("["):
                    continue
                devices = json.loads(body)
                if not devices:
                    continue
                gone.update({d["id"]: (d["ipv4"], d["ipv6"]) for d in devices})
                lo, hi = devices[0]["id"], devices[-1]["id"]
                for a, b, live_h in ranges:  # live chunks over the same ids
                    if a <= hi and b >= lo:
                        kept_ids.update(d["id"] for d in json.loads(self._body(live_h)))
            freed = {i: p for i, p in gone.items() if i not in kept_ids} if release else {}
            addresses = [(a,) for pair in freed.values() for a in pair]

            def write():
                self._db.executemany("DELETE FROM blobs WHERE hash = ?", [(h,) for h in dead])
                self._db.executemany("DELETE FROM handed_out WHERE address = ?", addresses)
                self._db.execute(
                    "INSERT OR REPLACE INTO counters (name, value) VALUES ('unswept', 0)"
                )

            self._transaction(write)
            self._blobs -= dead
            if addresses:
                self._handed_out.difference_update(a for (a,) in addresses)
                self._releases += 1
            return set(freed)

    # -- allocation ----------------------------------------------------------------

    def was_handed_out(self, address: str) -> bool:
        return address in self._handed_out

    @property
    def releases(self) -> int:
        """How many times addresses were freed since the store was opened: an allocator
        that resumes its search must start over when this changes."""
        return self._releases

    @property
    def last_device_id(self) -> int:
        return self._last_device_id

    # -- writing -------------------------------------------------------------------

    def commit(self, desired: Desired, who: str, why: str) -> Revision:
        """Store ``desired`` as the new head, recording its ids and addresses as used.
        A document that would not load again is refused (Unloadable) and not stored."""
        head = self.head()
        desired.check_reloads(head[1] if head else None)
        return self._write(None, time.time(), who, why, desired)

    def keep_only(self, revision: Revision, desired: Desired) -> None:
        """Make REVISION, holding DESIRED, the one revision kept (the older ones and
        their blobs are overwritten, not only unlinked): the card's copy of what the
        box needs while its encrypted storage is locked (appliance/configstore.py)."""
        self._write(revision.n, revision.at, revision.who, revision.why, desired, only=True)
        with self._lock:
            compact(self._db)

    def copy_to(self, path: Path) -> None:
        """Every revision and everything handed out, into a new file at PATH."""
        with self._lock:
            copy = open_private(path)
            try:
                self._db.backup(copy)
            finally:
                copy.close()

    def _transaction(self, work) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            work()
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _write(
        self, n: int | None, at: float, who: str, why: str, desired: Desired, only: bool = False
    ) -> Revision:
        with self._lock:
            manifest, blobs = self._layout.split(desired, self._blobs)
            new = {h: b for h, b in blobs.items() if h not in self._blobs}
            # Devices in a chunk already stored had their addresses recorded with it.
            new_addresses = [
                (a, d.id)
                for _, devices in new.values()
                for d in devices
                for a in (d.ipv4, d.ipv6)
                if a not in self._handed_out
            ]
            last_id = max(
                [self._last_device_id] + [d.id for _, devices in new.values() for d in devices]
            )
            refs = set(manifest["slices"].values()) | set(manifest[DEVICES])
            dead = self._blobs - refs if only else set()
            out: dict = {}

            def write():
                if only:
                    self._db.execute("DELETE FROM revisions")
                    self._db.executemany("DELETE FROM blobs WHERE hash = ?", [(h,) for h in dead])
                self._insert_blobs(new)
                out["cur"] = self._db.execute(
                    "INSERT INTO revisions (n, at, who, why, doc, manifest) "
                    "VALUES (?, ?, ?, ?, '', ?)",
                    (n, at, who, why, canonical(manifest)),
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO handed_out (address, device_id) VALUES (?, ?)",
                    new_addresses,
                )
                if last_id != self._last_device_id:
                    self._db.execute(
                        "INSERT OR REPLACE INTO counters (name, value) VALUES ('device_id', ?)",
                        (last_id,),
                    )
                if not only:
                    self._prune()

            self._transaction(write)
            self._blobs = (self._blobs - dead) | new.keys()
            self._handed_out.update(a for a, _ in new_addresses)
            self._last_device_id = last_id
            revision = Revision(out["cur"].lastrowid, at, who, why)
            self._head = (revision, desired)
            self._after_prune()
            return revision

    def close(self) -> None:
        self._db.close()

"""The desired state in SQLite: numbered revisions, and what was ever handed out.

Every change is a new revision (who, when, why, the whole document). Restoring an
old revision is itself a new revision. Device ids and VPN addresses are recorded
outside the revisions, in the same transaction, so none is ever handed out twice:
not after a removal, not after a rollback.
"""

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import NotFound
from .schema import Desired
from .sqlite import compact, open_private

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
"""


@dataclass(frozen=True)
class Revision:
    n: int
    at: float
    who: str
    why: str

    def to_json(self) -> dict:
        return {"revision": self.n, "at": self.at, "who": self.who, "why": self.why}


class StateStore:
    """Single writer (the agent); callers hold the agent's lock around changes."""

    def __init__(self, path: Path):
        self._db = open_private(path)
        self._lock = threading.RLock()
        self._db.executescript(_SCHEMA)
        self._handed_out = {row[0] for row in self._db.execute("SELECT address FROM handed_out")}
        row = self._db.execute("SELECT value FROM counters WHERE name = 'device_id'").fetchone()
        self._last_device_id = row[0] if row else 0
        self._head: tuple[Revision, Desired] | None = None

    # -- reading -------------------------------------------------------------------

    def head(self) -> tuple[Revision, Desired] | None:
        """The newest revision, validated; None on a box that has never been set up."""
        with self._lock:
            if self._head is None:
                row = self._db.execute(
                    "SELECT n, at, who, why, doc FROM revisions ORDER BY n DESC LIMIT 1"
                ).fetchone()
                if row is None:
                    return None
                self._head = (Revision(*row[:4]), Desired.from_json(json.loads(row[4])))
            return self._head

    def history(self, limit: int = 50, before: int | None = None) -> list[Revision]:
        with self._lock:
            rows = self._db.execute(
                "SELECT n, at, who, why FROM revisions WHERE n < ? ORDER BY n DESC LIMIT ?",
                (before if before is not None else 2**62, limit),
            ).fetchall()
        return [Revision(*row) for row in rows]

    def document(self, n: int) -> dict:
        with self._lock:
            row = self._db.execute("SELECT doc FROM revisions WHERE n = ?", (n,)).fetchone()
        if row is None:
            raise NotFound(f"there is no revision {n}", "revision")
        return json.loads(row[0])

    def revision(self, n: int) -> Revision:
        with self._lock:
            row = self._db.execute(
                "SELECT n, at, who, why FROM revisions WHERE n = ?", (n,)
            ).fetchone()
        if row is None:
            raise NotFound(f"there is no revision {n}", "revision")
        return Revision(*row)

    # -- allocation ----------------------------------------------------------------

    def was_handed_out(self, address: str) -> bool:
        return address in self._handed_out

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
        """Make REVISION, holding DESIRED, the one revision kept (the older ones are
        overwritten, not only unlinked): the card's copy of what the box needs while its
        encrypted storage is locked (appliance/configstore.py)."""
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

    def _write(
        self, n: int | None, at: float, who: str, why: str, desired: Desired, only: bool = False
    ) -> Revision:
        doc = json.dumps(desired.to_json(), ensure_ascii=False, sort_keys=True)
        with self._lock:
            new_addresses = [
                (a, d.id)
                for d in desired.vpn.devices
                for a in (d.ipv4, d.ipv6)
                if a not in self._handed_out
            ]
            last_id = max([self._last_device_id] + [d.id for d in desired.vpn.devices])
            try:
                self._db.execute("BEGIN IMMEDIATE")
                if only:
                    self._db.execute("DELETE FROM revisions")
                cur = self._db.execute(
                    "INSERT INTO revisions (n, at, who, why, doc) VALUES (?, ?, ?, ?, ?)",
                    (n, at, who, why, doc),
                )
                self._db.executemany(
                    "INSERT INTO handed_out (address, device_id) VALUES (?, ?)", new_addresses
                )
                self._db.execute(
                    "INSERT OR REPLACE INTO counters (name, value) VALUES ('device_id', ?)",
                    (last_id,),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._handed_out.update(a for a, _ in new_addresses)
            self._last_device_id = last_id
            revision = Revision(cur.lastrowid, at, who, why)
            self._head = (revision, desired)
            return revision

    def close(self) -> None:
        self._db.close()

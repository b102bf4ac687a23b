"""Every store says which layout it holds, and migrates forward.

A store's module keeps an ordered list of small functions, ``MIGRATIONS``: the k-th
turns layout k - 1 into layout k, so a store's version is how many it has had. The
first makes today's tables on an empty file (and brings a file written before stores
had versions to them). Opening a store runs the ones it lacks, all in one transaction
that also sets the new version: a crash in the middle leaves the file as it was, and
each runs once.

A store newer than the agent knows is refused (NewerStore), never written: it means a
newer version of the box ran here, and an older one that came back (an A/B update
rolled back) must put back the snapshot taken before that version migrated
(appliance/update/state.py).

The version is SQLite's ``user_version``, not a table of our own: it lives in the
file's header, so it is read before anything of the layout is known (a table's own
shape could change); it is written inside the migration's transaction; and SQLite's
backup API copies it with the pages.
"""

import logging
import sqlite3
from collections.abc import Callable, Sequence

from .errors import Conflict

log = logging.getLogger(__name__)

Migration = Callable[[sqlite3.Connection], None]


class NewerStore(Conflict):
    """A store written by a newer version of the agent than this one."""

    def __init__(self, store: str, found: int, known: int, more: str = ""):
        super().__init__(
            f"the {store} store is at version {found}, newer than this agent knows "
            f"(up to {known}): a newer version of Commonsbox ran on this box{more}",
            store,
        )
        self.store, self.found, self.known = store, found, known


def version(db: sqlite3.Connection) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def migrate(db: sqlite3.Connection, store: str, migrations: Sequence[Migration]) -> int:
    """Bring DB (an autocommit connection: appliance/sqlite.py) to the newest layout
    MIGRATIONS describe; its version before. NewerStore if it is newer than that."""
    known = len(migrations)
    found = version(db)
    if found > known:
        raise NewerStore(store, found, known)
    if found == known:
        return found
    db.execute("BEGIN IMMEDIATE")
    try:
        found = version(db)  # another process may have migrated it meanwhile
        if found > known:
            raise NewerStore(store, found, known)
        for k in range(found, known):
            migrations[k](db)
            if not db.in_transaction:
                raise RuntimeError(
                    f"the {store} store's migration {k + 1} ended the migrations' transaction "
                    "(it may not commit: executescript commits, execute does not)"
                )
        db.execute(f"PRAGMA user_version = {int(known)}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    if found:
        log.info("the %s store migrated from version %d to %d", store, found, known)
    return found


def statements(script: str) -> list[str]:
    """A script of CREATE statements, one by one: executescript would commit first."""
    return [s.strip() for s in script.split(";") if s.strip()]

"""The stores an update carries across versions, by place.

The card's (the data partition, shared by both root slots): the desired state, the
secrets and the runtime store. The encrypted volume's, once it is unlocked: its own
desired state (every revision) and secrets. Each place keeps its snapshots, the set-aside
trial and the fallback report in an ``update`` folder beside its stores, so nothing of
the volume is ever copied onto the card in the clear.
"""

import hashlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol

from .. import secrets as secrets_module
from .. import store as store_module
from ..accounts import sessions as sessions_module
from ..paths import Paths

# Each kind of store: the module whose MIGRATIONS say its newest version, and its class.
KINDS: dict[str, tuple[ModuleType, Callable[[Path], "_Closable"]]] = {
    "state": (store_module, store_module.StateStore),
    "secrets": (secrets_module, secrets_module.SecretStore),
    "runtime": (sessions_module, sessions_module.RuntimeStore),
}
FINGERPRINT_FORMAT = 1  # how fingerprint() reads a store: every version must read it alike

Versions = dict[str, int | None]  # kind -> its version, None where there is no store


class _Closable(Protocol):
    def close(self) -> None: ...


@dataclass(frozen=True)
class Place:
    name: str  # "card" or "volume"
    stores: dict[str, Path]  # kind -> its file
    dir: Path  # its update folder
    base: Path  # the data partition's state directory: reports name paths from it

    @property
    def snapshots(self) -> Path:
        return self.dir / "snapshots"

    @property
    def trial(self) -> Path:
        """The stores a failed trial left, set aside by the fallback."""
        return self.dir / "trial"

    @property
    def restoring(self) -> Path:
        """While a fallback puts a snapshot back: the copies and the report."""
        return self.dir / "restoring"

    @property
    def report(self) -> Path:
        return self.dir / "fallback.json"


def card(paths: Paths) -> Place:
    return Place(
        "card",
        {"state": paths.state_db, "secrets": paths.secrets_db, "runtime": paths.runtime_db},
        paths.state_dir / "update",
        paths.state_dir,
    )


def volume(paths: Paths) -> Place:
    return Place(
        "volume",
        {"state": paths.volume_state_db, "secrets": paths.volume_secrets_db},
        paths.volume_state_db.parent / "update",
        paths.state_dir,
    )


def known(place: Place) -> dict[str, int]:
    """The versions this agent writes (read at call time: a test may add a migration)."""
    return {kind: len(KINDS[kind][0].MIGRATIONS) for kind in place.stores}


def read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write, nor make the file if it is missing."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)


def version_of(path: Path) -> int | None:
    """A store file's version; None if there is no store there (no file, no tables)."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    db = read_only(path)
    try:
        if not db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            return None
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def versions(place: Place) -> Versions:
    return {kind: version_of(path) for kind, path in place.stores.items()}


def open_store(kind: str, path: Path) -> _Closable:
    """Open (and so migrate) a store as the agent does."""
    return KINDS[kind][1](path)


def fingerprint(path: Path) -> dict[str, str]:
    """Each table's content as a digest, read the same way by every version (whatever
    the layout): what tells which stores a trial changed."""
    db = read_only(path)
    try:
        tables = [
            row[0]
            for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        out = {}
        for table in sorted(tables):
            rows = sorted(
                json.dumps(list(row), default=lambda b: b.hex())
                for row in db.execute(f'SELECT * FROM "{table}"')
            )
            out[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
        return out
    finally:
        db.close()

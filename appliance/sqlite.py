"""One way to open the agent's SQLite files: private to root, WAL, autocommit, and
what is deleted overwritten (secure_delete): a card must not keep what was removed."""

import os
import sqlite3
from pathlib import Path


def open_private(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """The file (and its WAL) 0600; FULL syncs every commit, which a box that loses
    power mid-change needs; NORMAL may lose the last commits (never corrupts)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old_umask = os.umask(0o077)
    try:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("PRAGMA secure_delete=ON")
    return db


def compact(db: sqlite3.Connection) -> None:
    """Empty the write-ahead log into the file: the old pages it held go too."""
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

"""Secrets: a type that cannot leak by accident, and a 0600 store kept apart.

``Secret`` hides its value from repr/str/format and is not JSON-serialisable, so a
secret cannot slip into a log line, an API answer or a revision's diff unless code
calls ``reveal()`` on purpose.
"""

import hmac
import os
import threading
from pathlib import Path

from .sqlite import compact, open_private
from .storeversion import Migration, migrate


def _layout_1(db) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)")


MIGRATIONS: list[Migration] = [_layout_1]  # appliance/storeversion.py


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str):
        if not isinstance(value, str):
            raise TypeError("Secret holds a str")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(
            self._value.encode(), other._value.encode()
        )

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self):
        raise TypeError("secrets are not picklable")


class SecretStore:
    """Named secrets in their own SQLite file: directory 0700, file 0600."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        self._db = open_private(path)
        self._lock = threading.Lock()
        try:
            migrate(self._db, "secrets", MIGRATIONS)
        except BaseException:
            self._db.close()
            raise

    def get(self, name: str) -> Secret | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
        return Secret(row[0]) if row else None

    def get_many(self, prefix: str) -> dict[str, Secret]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, value FROM secrets WHERE substr(name, 1, ?) = ?",
                (len(prefix), prefix),
            ).fetchall()
        return {name: Secret(value) for name, value in rows}

    def put(self, name: str, secret: Secret) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO secrets (name, value) VALUES (?, ?)",
                (name, secret.reveal()),
            )

    def swap(self, name: str, old: Secret, new: Secret) -> bool:
        """NAME becomes NEW only if it still is OLD, in one statement (so also against
        another process): of two changes made from the same value, one wins."""
        with self._lock:
            done = self._db.execute(
                "UPDATE secrets SET value = ? WHERE name = ? AND value = ?",
                (new.reveal(), name, old.reveal()),
            )
            return done.rowcount == 1

    def delete(self, name: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM secrets WHERE name = ?", (name,))

    def compact(self) -> None:
        """After deletions: nothing of what was deleted stays in the write-ahead log."""
        with self._lock:
            compact(self._db)

    def close(self) -> None:
        self._db.close()

"""The backup record: when backups were set up, the last good backup and the last
failure, the last check; for the health check and `backup status`. One small JSON file
on the data partition (state_dir/backup), written whole (a power cut leaves the old or
the new)."""

import time
from pathlib import Path

from ..paths import Paths
from ..update.files import private_dir, read_json, write_json

OVERDUE = 3 * 86400  # no good backup for this long: a failing health check


def path(paths: Paths) -> Path:
    return paths.state_dir / "backup" / "record.json"


def read(paths: Paths) -> dict:
    return read_json(path(paths)) or {}


def note(paths: Paths, **entries) -> dict:
    """The record with ENTRIES set (each a dict stamped with the time now)."""
    data = read(paths)
    for key, value in entries.items():
        data[key] = None if value is None else {"at": time.time(), **value}
    write_json(private_dir(path(paths).parent) / "record.json", data)
    return data


def overdue(data: dict, now: float) -> str | None:
    """Why the health check fails (None: it does not). Counted from the last good
    backup, or from the setup if there was none yet."""
    since = (data.get("last_good") or data.get("setup") or {}).get("at")
    if since is None or now - since <= OVERDUE:
        return None
    days = int((now - since) // 86400)
    if data.get("last_good") is None:
        return f"no backup has worked since backups were set up {days} days ago"
    return f"the last good backup is {days} days old"

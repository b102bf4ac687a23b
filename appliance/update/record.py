"""The update record: what the box was told to try, and what came of it, for the dashboard.

One small JSON file on the data partition, which both slots share: the slot that is
armed for a trial (its version and what worked before it), the outcome of each update
(kept, rolled back, fell back, with what did not work), the last check of the feed.
Written whole (a new file, fsync, rename), so a power cut leaves the old or the new.
"""

import json
import os
import time
from pathlib import Path

DIR = Path("/var/lib/commonsbox/update")
RELEASE = Path("/usr/lib/commonsbox/release.json")
KEEP = 20  # outcomes remembered


def path() -> Path:
    return DIR / "record.json"


def read() -> dict:
    try:
        found = json.loads(path().read_text())
    except FileNotFoundError:
        return {}
    return found if isinstance(found, dict) else {}


def write(data: dict) -> None:
    DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path().with_suffix(".new")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path())
    fd = os.open(DIR, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def running_version() -> str:
    try:
        return str(json.loads(RELEASE.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "unknown"


def armed(
    slot: str, version: str, before: dict, deadline: float | None = None, now: float | None = None
) -> None:
    data = read()
    data["trial"] = {
        "slot": slot,
        "version": version,
        "from": running_version(),
        "before": before,
        "deadline": deadline,  # seconds the gate waits (None: its own)
        "at": now or time.time(),
    }
    write(data)


def finished(trial: dict, outcome: str, lost: list[str], now: float | None = None) -> None:
    data = read()
    data.pop("trial", None)
    entry = {
        "version": trial.get("version"),
        "from": trial.get("from"),
        "outcome": outcome,
        "lost": lost,
        "at": now or time.time(),
    }
    data["history"] = ([entry] + data.get("history", []))[:KEEP]
    write(data)


def checked(result: dict, now: float | None = None) -> None:
    data = read()
    data["last_check"] = {**result, "at": now or time.time()}
    write(data)

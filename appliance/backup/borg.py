"""BorgBackup, as the agent runs it: the arguments of each command, the key handed over
a pipe, and what its errors mean.

The backup key (the repository's passphrase, repokey-blake2) reaches borg through
BORG_PASSPHRASE_FD: a pipe the agent writes it to, inherited by borg alone. It is never
in argv (every user sees that in /proc), in the environment (a child's is readable by
root only, but it is inherited by whatever borg runs), on a disk or in a log line.
Every argument is checked before (schema.repository, archive names this module makes),
and none goes through a shell.

Borg runs in the agent's own view of the files (not System.run: in the lab the box's
root is a directory of the agent's machine, and so is everything borg reads and writes).
"""

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import Conflict, DiskFull, NotFound, SystemFailure, WrongKey
from ..secrets import Secret

BORG = "borg"
ENCRYPTION = "repokey-blake2"
PREFIX = "box-"  # every archive the box makes; prune looks at these only
RETENTION = {"daily": 7, "weekly": 4, "monthly": 12}
TIMEOUT = 6 * 3600  # a first backup of a full disk over USB 2 takes hours

# borg's --log-json message ids, and what the household is told.
_MISSING = {
    "Repository.DoesNotExist",
    "Repository.InvalidRepository",
    "Repository.ParentPathDoesNotExist",
}
_WRONG_KEY = {
    "PassphraseWrong",
    "NotABorgKeyFile",
    "RepoKeyNotFoundError",
    "UnsupportedPayloadError",
}
_FULL = {"Repository.InsufficientFreeSpaceError", "Repository.StorageQuotaExceeded"}


def archive_name(now: datetime) -> str:
    """The archive of a backup made at NOW (the box's local time, to the second)."""
    return f"{PREFIX}{now:%Y-%m-%dT%H:%M:%S}"


def is_archive_name(name: str) -> bool:
    try:
        datetime.strptime(name.removeprefix(PREFIX), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return False
    return name.startswith(PREFIX)


def prune_args() -> list[str]:
    return [
        "--glob-archives",
        f"{PREFIX}*",
        *(f"--keep-{period}={n}" for period, n in RETENTION.items()),
    ]


def changed_while_read(stderr: str) -> list[str]:
    """The files `borg create --list --filter=C --log-json` says changed while read."""
    found = []
    for line in stderr.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("type") == "file_status":
            if entry.get("status") == "C" and isinstance(entry.get("path"), str):
                found.append(entry["path"].removeprefix("./"))
    return found


@dataclass(frozen=True)
class Failure:
    """What borg said when it failed: its message ids and messages (--log-json)."""

    msgids: frozenset[str]
    messages: tuple[str, ...]


def parse_log(stderr: str) -> Failure:
    ids, messages = set(), []
    for line in stderr.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            messages.append(line)
            continue
        if isinstance(entry, dict) and entry.get("levelname") in ("ERROR", "CRITICAL"):
            if entry.get("msgid"):
                ids.add(entry["msgid"])
            messages.append(str(entry.get("message", "")))
    return Failure(frozenset(ids), tuple(messages))


def error_of(failure: Failure, repository: str):
    """The typed error a failed borg command means."""
    said = " ".join(failure.messages)
    if failure.msgids & _MISSING:
        return NotFound(f"there is no backup repository at {repository}", "repository")
    if failure.msgids & _WRONG_KEY:
        return WrongKey("this backup key does not open the repository", "key")
    if "Archive.AlreadyExists" in failure.msgids:
        return Conflict("a backup was made this very second: try again in a moment")
    if "Archive.DoesNotExist" in failure.msgids:
        return NotFound("there is no such backup in the repository", "archive")
    if failure.msgids & _FULL or "No space left on device" in said or "[Errno 28]" in said:
        return DiskFull(f"the disk of the backup repository at {repository} is full", "repository")
    first = next((m for m in failure.messages if m.strip()), "no message")
    return SystemFailure(f"borg failed: {first.strip().splitlines()[0][:300]}")


class Borg:
    """The borg commands on one repository, with its key. BASE: borg's own files (its
    cache and what it knows of repositories), on the data partition."""

    def __init__(self, repository: str, key: Secret, base: Path):
        self.repository = repository
        self._key = key
        self.base = base

    def run(
        self, args: Sequence[str], cwd: Path | None = None, timeout: float = TIMEOUT
    ) -> subprocess.CompletedProcess:
        self.base.mkdir(mode=0o700, parents=True, exist_ok=True)
        read, write = os.pipe()
        try:
            # The key fits in the pipe's buffer: written whole before borg starts.
            os.write(write, self._key.reveal().encode())
            os.close(write)
            write = -1
            env = {
                "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                "LANG": "C.UTF-8",
                "BORG_BASE_DIR": str(self.base),
                "BORG_PASSPHRASE_FD": str(read),
                "BORG_DISPLAY_PASSPHRASE": "no",
                # A repository the box has not seen (a restore on a new box) is taken: it
                # is encrypted, and its key is the household's.
                "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
                "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "no",
            }
            done = subprocess.run(
                [BORG, *args, "--log-json"],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                pass_fds=(read,),
            )
        finally:
            os.close(read)
            if write != -1:
                os.close(write)
        if done.returncode >= 2:  # 1 is a warning (a file gone while read): still a backup
            raise error_of(parse_log(done.stderr), self.repository)
        return done

    def init(self) -> None:
        """A new repository in a folder whose parent exists: never the folders above it
        (a disk that is not mounted must not become a repository on the card)."""
        self.run(["init", "--encryption", ENCRYPTION, self.repository])

    def create(self, name: str, snapshot: Path) -> tuple[dict, list[str]]:
        """An archive of SNAPSHOT's contents (paths relative to it): borg's --json, and
        the files that changed while borg read them (snapshot.py). The files cache
        knows a file by its path, size and modification time: the snapshot's links and
        copies are new inodes, with new change times, at every backup."""
        done = self.run(
            ["create", "--json", "--compression", "zstd,3", "--files-cache=mtime,size",
             "--list", "--filter=C", f"{self.repository}::{name}", "."],
            cwd=snapshot,
        )  # fmt: skip
        return json.loads(done.stdout), changed_while_read(done.stderr)

    def delete(self, name: str) -> None:
        self.run(["delete", f"{self.repository}::{name}"])

    def prune(self) -> None:
        self.run(["prune", *prune_args(), self.repository])
        self.run(["compact", self.repository])  # borg 1.2 frees the space only then

    def archives(self) -> list[dict]:
        done = self.run(["list", "--json", self.repository])
        return [a for a in json.loads(done.stdout)["archives"] if is_archive_name(a["name"])]

    def check(self) -> None:
        self.run(["check", self.repository])

    def extract(self, name: str, into: Path, only: Sequence[str] = ()) -> None:
        if not is_archive_name(name):
            raise NotFound(f"there is no backup named {name!r}", "archive")
        into.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.run(["extract", "--numeric-ids", f"{self.repository}::{name}", *only], cwd=into)

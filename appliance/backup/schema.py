"""The backups' slice of the desired state: where the repository is.

A repository is a directory the box writes to (a USB disk's mount point, for now any
local directory). Its path becomes an argument of borg (never through a shell) and
borg reads ``::`` as the start of an archive's name, so only plain absolute paths are
taken. A buddy's address (ssh://) comes with the buddies."""

import re
from dataclasses import dataclass

from .. import validate as v
from ..errors import Invalid
from ..slice import Slice

MAX_PATH = 256
_PATH = re.compile(r"/[A-Za-z0-9._/-]*", re.ASCII)


def repository(value, fld: str = "repository") -> str | None:
    if value is None or value == "":
        return None
    path = v.text(value, fld, MAX_PATH)
    parts = path.split("/")
    if not _PATH.fullmatch(path) or ".." in parts or "//" in path or path == "/":
        raise Invalid(
            "a repository is a directory's full path, like /media/backup/commonsbox "
            "(letters, digits, . _ - and /)",
            fld,
        )
    return path.rstrip("/")


@dataclass(frozen=True)
class BackupSettings(Slice):
    repository: str | None = None  # none: backups are not set up

    @classmethod
    def from_json(cls, value, fld: str = "backup") -> "BackupSettings":
        v.only_keys(value, fld, set(), {"repository"})
        return cls(repository=repository(value.get("repository"), f"{fld}.repository"))

    def to_json(self) -> dict:
        return {"repository": self.repository}

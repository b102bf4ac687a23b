"""Backups as a capability: nothing to converge (a backup is made when asked, or by the
schedule), but declared like every other: BorgBackup in the image, its slice (where the
repository is), its API methods and commands, and a health check: three days without a
good backup fail, once backups are set up."""

import shutil
import time
from typing import Any, Self

from ..capability import Capability, Check, Parts
from ..paths import Paths
from ..schema import Desired
from . import record
from .schema import BackupSettings


class BackupCapability(Capability):
    name = "backup"
    settings = ("backup", BackupSettings)
    packages = ("borgbackup",)
    # Runs no service on the storage: its slice (where backups go) stays on the card too,
    # so a locked box still says when it last backed up. Its key is with the data (not a
    # card secret), and a backup needs the storage unlocked (Box.data_settings).
    uses_storage = False

    def __init__(self, paths: Paths | None):
        self.paths = paths  # the record is under the agent's state directory

    @classmethod
    def made(cls, parts: Parts) -> Self:
        return cls(parts.paths)

    def depends_on(self, desired: Desired) -> Any:
        return None

    def read_facts(self, desired: Desired) -> Any:
        return record.read(self.paths) if self.paths is not None else {}

    def plan(self, facts: Any, desired: Desired) -> list:
        return []

    def apply(self, actions: list) -> None:
        for action in actions:
            raise self.unknown(action)

    def forget(self) -> None:
        """A factory reset: the record and borg's own files (what it knows of the
        repository). The key goes with every secret; the repository itself, on the
        household's disk, stays theirs."""
        if self.paths is not None:
            shutil.rmtree(self.paths.state_dir / "backup", ignore_errors=True)

    def health(self, facts: Any, desired: Desired) -> list[Check]:
        if desired.backup.repository is None:
            return []
        why = record.overdue(facts, time.time())
        return [Check(self.name, "last good backup", why is None, why or "")]

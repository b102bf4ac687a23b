"""The storage capability: keeps the unlocked volume mounted where the household's data
lives, and tells the dashboard whether it is there, locked or unlocked. Unlocking needs
a person (the passphrase is never stored), so the reconcile never unlocks."""

from dataclasses import dataclass

from ..reconcile import Check
from ..schema import Desired
from ..system import System
from .place import MAPPED, mounted_at


@dataclass(frozen=True)
class Facts:
    unlocked: bool
    mounted: str | None  # what is mounted where the data lives


@dataclass(frozen=True)
class Mount:
    def __str__(self):
        return "mount the unlocked storage"


class StorageCapability:
    name = "storage"

    def __init__(self, system: System, service):
        self.system, self.service = system, service

    def depends_on(self, desired: Desired):
        return desired.storage

    def read_facts(self) -> Facts:
        return Facts(unlocked=self.system.path(MAPPED).exists(), mounted=mounted_at(self.system))

    def plan(self, facts: Facts, desired: Desired) -> list:
        if desired.storage.volume and facts.unlocked and facts.mounted != MAPPED:
            return [Mount()]
        return []

    def apply(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, Mount):
                self.service.mount()

    def health(self, facts: Facts, desired: Desired) -> list[Check]:
        volume = desired.storage.volume
        if volume is None:
            return []
        if facts.unlocked and facts.mounted == MAPPED:
            return [Check(self.name, "encryption", True, f"unlocked ({volume.cipher})")]
        return [Check(self.name, "encryption", False,
                      "locked: unlock it with the household's passphrase")]

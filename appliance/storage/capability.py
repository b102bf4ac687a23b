"""The storage capability: keeps the unlocked volume mounted where the household's data
lives, and tells the dashboard whether it is there, locked or unlocked. Unlocking needs
a person (the passphrase is never stored), so the reconcile never unlocks."""

from dataclasses import dataclass

from ..capability import Capability, Check, Parts
from ..schema import Desired
from ..system import System
from . import luks
from .place import MAPPED, MAPPER, mounted_at

LOW_SPACE = 0.1  # below a tenth free, the box asks for attention (and the dashboard says so)


@dataclass(frozen=True)
class Facts:
    luks: frozenset[str]  # the UUIDs of the LUKS volumes on the disks plugged in
    unlocked: bool
    mounted: str | None  # what is mounted where the data lives
    space: dict | None = None  # {"total", "free"} bytes of the volume while it is mounted


@dataclass(frozen=True)
class Mount:
    def __str__(self):
        return "mount the unlocked storage"


@dataclass(frozen=True)
class Close:
    def __str__(self):
        return "close what is left of the pulled storage disk"


class StorageCapability(Capability):
    name = "storage"
    packages = ("cryptsetup-bin",)  # LUKS2

    @classmethod
    def made(cls, parts: Parts) -> "StorageCapability":
        return cls(parts.system, parts.storage)

    def __init__(self, system: System, service):
        self.system, self.service = system, service

    def depends_on(self, desired: Desired):
        return desired.storage

    def read_facts(self, desired: Desired) -> Facts:
        mounted = mounted_at(self.system)
        return Facts(
            luks=self.service.luks_volumes(),
            unlocked=self.system.path(MAPPED).exists(),
            mounted=mounted,
            space=self.service.space() if mounted == MAPPED else None,
        )

    def plan(self, facts: Facts, desired: Desired) -> list:
        # Never the remains of a pulled disk: its mapping lingers until nothing holds it.
        volume = desired.storage.volume
        if not facts.unlocked or facts.mounted == MAPPED:
            return []
        if volume and volume.uuid in facts.luks:
            return [Mount()]
        return [Close()]

    def apply(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, Mount):
                self.service.mount()
            elif isinstance(action, Close):
                luks.close_volume(self.system, MAPPER)
            else:
                raise self.unknown(action)

    @staticmethod
    def _space(space: dict | None) -> list[Check]:
        if not space:
            return []
        free, total = space["free"], space["total"]
        low = free < LOW_SPACE * total
        return [
            Check(
                "storage",
                "space",
                not low,
                f"{free // 2**20} MiB free of "
                f"{total // 2**20} MiB" + (": make room, or mail will be refused" if low else ""),
            )
        ]

    def health(self, facts: Facts, desired: Desired) -> list[Check]:
        volume = desired.storage.volume
        if volume is None:
            return []
        if volume.uuid not in facts.luks:
            return [Check(self.name, "encryption", False, f"the disk ({volume.disk}) is missing")]
        if facts.unlocked and facts.mounted == MAPPED:
            return [
                Check(self.name, "encryption", True, f"unlocked ({volume.cipher})"),
                *self._space(facts.space),
            ]
        return [
            Check(
                self.name, "encryption", False, "locked: unlock it with the household's passphrase"
            )
        ]

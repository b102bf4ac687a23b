"""Storage's slice of the desired state: which encrypted volume holds the household's
data, and whether the household chose to run without one."""

import re
from dataclasses import dataclass

from .. import validate as v
from ..errors import Invalid
from ..slice import Slice
from .cipher import CIPHERS

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Volume:
    uuid: str  # the LUKS header's: how the box finds its disk wherever it is plugged
    cipher: str  # a name in cipher.CIPHERS
    disk: str  # what the household calls it: the disk's model when it was formatted

    @classmethod
    def from_json(cls, value, fld: str) -> "Volume":
        v.only_keys(value, fld, {"uuid", "cipher", "disk"})
        if not isinstance(value["uuid"], str) or not _UUID.fullmatch(value["uuid"]):
            raise Invalid(f"{fld}.uuid must be a LUKS UUID", f"{fld}.uuid")
        return cls(
            uuid=value["uuid"],
            cipher=v.choice(value["cipher"], f"{fld}.cipher", tuple(CIPHERS)),
            disk=v.text(value["disk"], f"{fld}.disk", 128),
        )

    def to_json(self) -> dict:
        return {"uuid": self.uuid, "cipher": self.cipher, "disk": self.disk}


@dataclass(frozen=True)
class StorageSettings(Slice):
    volume: Volume | None = None
    # Mail and chat keep their data on the encrypted volume; without one they do not
    # start, unless the household chose to keep its data unencrypted.
    allow_unencrypted: bool = False

    @classmethod
    def from_json(cls, value, fld: str = "storage") -> "StorageSettings":
        v.only_keys(value, fld, set(), {"volume", "allow_unencrypted"})
        volume = value.get("volume")
        return cls(
            volume=Volume.from_json(volume, f"{fld}.volume") if volume is not None else None,
            allow_unencrypted=v.boolean(
                value.get("allow_unencrypted", False), f"{fld}.allow_unencrypted"
            ),
        )

    def to_json(self) -> dict:
        return {
            "volume": self.volume.to_json() if self.volume else None,
            "allow_unencrypted": self.allow_unencrypted,
        }

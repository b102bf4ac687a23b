"""The file share's slice of the desired state."""

from dataclasses import dataclass

from .. import validate as v
from ..slice import Slice

# What becomes of a member's folder when they leave the household: kept for root only,
# outside the share ("archive"), or deleted.
DEPARTED = ("archive", "delete")


@dataclass(frozen=True)
class FilesSettings(Slice):
    enabled: bool = False
    departed: str = "archive"

    @classmethod
    def from_json(cls, value, fld: str = "files") -> "FilesSettings":
        v.only_keys(value, fld, {"enabled"}, {"departed"})
        return cls(
            enabled=v.boolean(value["enabled"], f"{fld}.enabled"),
            departed=v.choice(value.get("departed", "archive"), f"{fld}.departed", DEPARTED),
        )

    def to_json(self) -> dict:
        return {"enabled": self.enabled, "departed": self.departed}

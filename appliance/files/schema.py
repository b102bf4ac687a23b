"""The file share's slice of the desired state."""

from dataclasses import dataclass

from .. import validate as v


@dataclass(frozen=True)
class FilesSettings:
    enabled: bool = False

    @classmethod
    def from_json(cls, value, fld: str = "files") -> "FilesSettings":
        v.only_keys(value, fld, {"enabled"})
        return cls(enabled=v.boolean(value["enabled"], f"{fld}.enabled"))

    def to_json(self) -> dict:
        return {"enabled": self.enabled}

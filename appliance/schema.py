"""The household's desired state: one document, each capability owning a slice."""

from dataclasses import dataclass, replace

from . import validate as v
from .errors import Invalid
from .vpn.schema import VpnSettings

SCHEMA_VERSION = 1
DOC_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class BoxSettings:
    name: str = "Commonsbox"

    @classmethod
    def from_json(cls, value, fld: str = "box") -> "BoxSettings":
        v.only_keys(value, fld, {"name"})
        return cls(name=v.text(value["name"], f"{fld}.name", 64))

    def to_json(self) -> dict:
        return {"name": self.name}


@dataclass(frozen=True)
class Desired:
    box: BoxSettings
    vpn: VpnSettings

    @classmethod
    def new(cls) -> "Desired":
        return cls(box=BoxSettings(), vpn=VpnSettings.new())

    @classmethod
    def from_json(cls, doc) -> "Desired":
        v.only_keys(doc, "", {"schema", "box", "vpn"})
        if doc["schema"] != SCHEMA_VERSION:
            raise Invalid(f"schema version {doc['schema']!r} is not {SCHEMA_VERSION}", "schema")
        return cls(box=BoxSettings.from_json(doc["box"]), vpn=VpnSettings.from_json(doc["vpn"]))

    def to_json(self) -> dict:
        return {"schema": SCHEMA_VERSION, "box": self.box.to_json(), "vpn": self.vpn.to_json()}

    def with_vpn(self, vpn: VpnSettings) -> "Desired":
        return replace(self, vpn=vpn)

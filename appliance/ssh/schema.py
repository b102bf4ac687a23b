"""The installer's SSH: its slice of the desired state, the public keys that may log in
as root. No key, no SSH."""

from dataclasses import dataclass

from .. import validate as v
from ..errors import Conflict, Invalid
from ..slice import Slice
from .openssh import public_key

MAX_KEYS = 8
PORT = 2222  # 22 on the VPN's addresses is the file share's (files/capability.py)


def key_comment(line) -> str:
    """The comment a public key line ends with (alice@laptop), as a key's name."""
    parts = line.split(None, 2) if isinstance(line, str) else []
    if len(parts) < 3:
        raise Invalid("name the key (its line has no comment to name it by)", "name")
    return v.text(parts[2].strip()[:64].rstrip(), "name", 64)  # a long one, cut


@dataclass(frozen=True)
class SshKey:
    key: str  # canonical: KIND BASE64 (openssh.public_key)
    name: str  # what the household sees: "Ana's laptop"
    owner: str | None = None  # who added it (None: root on the box); goes with them

    @classmethod
    def from_json(cls, value, fld: str) -> "SshKey":
        v.only_keys(value, fld, {"key", "name"}, {"owner"})
        owner = value.get("owner")
        return cls(
            key=public_key(value["key"], v.join(fld, "key")),
            name=v.text(value["name"], v.join(fld, "name"), 64),
            owner=None if owner is None else v.text(owner, v.join(fld, "owner"), 64),
        )

    def to_json(self) -> dict:
        return {"key": self.key, "name": self.name, "owner": self.owner}


@dataclass(frozen=True)
class SshSettings(Slice):
    keys: tuple[SshKey, ...] = ()

    @classmethod
    def from_json(cls, value, fld: str = "ssh") -> "SshSettings":
        v.only_keys(value, fld, {"keys"})
        keys = v.listed(value["keys"], f"{fld}.keys", SshKey.from_json, MAX_KEYS)
        seen = set()
        for i, k in enumerate(keys):
            if k.key in seen:
                raise Invalid(f"{fld}.keys[{i}] is already there", f"{fld}.keys[{i}].key")
            seen.add(k.key)
        return cls(keys)

    def to_json(self) -> dict:
        return {"keys": [k.to_json() for k in self.keys]}

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def with_key(self, key: SshKey) -> "SshSettings":
        if any(k.key == key.key for k in self.keys):
            raise Conflict("that key is already there", "key")
        if len(self.keys) >= MAX_KEYS:
            raise Conflict(f"there are {MAX_KEYS} keys already: remove one first", "key")
        return SshSettings(self.keys + (key,))

    def owners(self) -> frozenset[str]:
        return frozenset(k.owner for k in self.keys if k.owner is not None)

    def without_owner(self, name: str) -> "SshSettings":
        return SshSettings(tuple(k for k in self.keys if k.owner != name))

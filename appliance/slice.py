"""A capability's part of the desired state: its settings slice.

Each is a frozen dataclass in the capability's folder (its schema.py) that derives from
Slice, and the capability declares it (``settings = ("mail", MailSettings)``); the
document (appliance/schema.py) is the box's own settings and accounts, then every declared
slice under its key. A slice reads and writes its JSON, and says what it holds for whom,
so that one path can drop what a person who leaves held (Desired.without_member) and
the secrets behind it, and a restore brings back nothing half-alive (appliance/departure.py).
"""

from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    from .schema import Desired


class Slice:
    # A document without it is refused (rather than a new box's made up): the VPN's.
    required: ClassVar[bool] = False
    # Where a person's own secrets are kept ({name}: theirs): they go when the person goes.
    personal_secrets: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def new(cls) -> Self:
        """A new box's."""
        return cls()

    @classmethod
    def from_json(cls, value: Any, fld: str) -> Self:
        raise NotImplementedError

    def to_json(self) -> dict:
        raise NotImplementedError

    def owners(self) -> frozenset[str]:
        """Everyone it holds something for (a device, an app password, a key...)."""
        return frozenset()

    def without_owner(self, name: str) -> Self:
        """Without anything NAME held."""
        return self

    def secrets(self) -> frozenset[str]:
        """The names of the secrets behind what it holds (a device's key, an app
        password's hash): they go when what they are behind goes."""
        return frozenset()

    def restored(self, current: Self, present: frozenset[str]) -> Self:
        """As this, an older revision's, may come back beside CURRENT, of the secrets it
        names only those in PRESENT still there: without anything whose secret is gone
        (it could only come back half-alive)."""
        return self

    def check(self, desired: "Desired") -> None:
        """What it cannot check alone, against the rest of the document (Invalid)."""

    def reloads_since(self, previous: Self) -> bool:
        """Whether it, stored, loads again as itself (PREVIOUS: the slice the head held,
        which was checked when it was stored)."""
        return type(self).from_json(self.to_json(), "") == self

"""The household's desired state: one document, the box's own settings and accounts,
then a slice for each capability that declares one (appliance/slice.py)."""

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from . import validate as v
from .accounts.schema import LANGUAGES, Accounts
from .errors import ApplianceError, Invalid, Unloadable
from .slice import Slice

SCHEMA_VERSION = 1  # the documents' format; each document says its own ("schema")
# DOCUMENT_UPGRADES[k - 1] turns a document of format k into format k + 1, so a revision
# stored before an update loads (and can be restored) after it. Revisions are not
# rewritten; the state store says which formats it may hold (store.documents).
DOCUMENT_UPGRADES: list[Callable[[dict], dict]] = []
NO_ONE = Accounts()
DOC_MAX_BYTES = 64 * 1024 * 1024


_TIMEZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,2}")


def timezone(value, fld: str) -> str:
    """An IANA time zone name the system knows, like Europe/Lisbon."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(value, str) or not _TIMEZONE.fullmatch(value) or len(value) > 64:
        raise Invalid(f"{fld} must be a time zone like Europe/Lisbon", fld)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"{fld}: unknown time zone {value!r}", fld) from None
    return value


@dataclass(frozen=True)
class BoxSettings:
    name: str = "Commonsbox"
    language: str = "en"
    timezone: str = "UTC"
    claimed: bool = False
    # The web UI's login and management pages from the Internet too, not only at home
    # and over the VPN (webui/reach.py): the household's choice, off by default.
    manage_from_anywhere: bool = False
    # What the box contacts by itself, each the household's to turn off (README: "What
    # the box contacts by itself"): NTS time servers (appliance/clock), and its update
    # feed once a day (the update capability reads update_check).
    time_sync: bool = True
    update_check: bool = True

    @classmethod
    def from_json(cls, value, fld: str = "box") -> "BoxSettings":
        v.only_keys(
            value,
            fld,
            {"name"},
            {
                "language",
                "timezone",
                "claimed",
                "manage_from_anywhere",
                "time_sync",
                "update_check",
            },
        )
        return cls(
            name=v.text(value["name"], f"{fld}.name", 64),
            language=v.choice(value.get("language", "en"), f"{fld}.language", LANGUAGES),
            timezone=timezone(value.get("timezone", "UTC"), f"{fld}.timezone"),
            claimed=v.boolean(value.get("claimed", False), f"{fld}.claimed"),
            manage_from_anywhere=v.boolean(
                value.get("manage_from_anywhere", False), f"{fld}.manage_from_anywhere"
            ),
            time_sync=v.boolean(value.get("time_sync", True), f"{fld}.time_sync"),
            update_check=v.boolean(value.get("update_check", True), f"{fld}.update_check"),
        )

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "language": self.language,
            "timezone": self.timezone,
            "claimed": self.claimed,
        } | (
            ({"manage_from_anywhere": True} if self.manage_from_anywhere else {})
            # Written only when off: a document from before they existed reads the same.
            | ({} if self.time_sync else {"time_sync": False})
            | ({} if self.update_check else {"update_check": False})
        )


def upgraded(doc: Any) -> Any:
    """DOC in the current format (DOCUMENT_UPGRADES); one newer than this agent reads is
    refused, naming both formats. Anything else malformed is left to from_json."""
    if not isinstance(doc, dict) or type(doc.get("schema")) is not int or doc["schema"] < 1:
        return doc
    if doc["schema"] > SCHEMA_VERSION:
        raise Invalid(
            f"a document of format {doc['schema']}, newer than this agent reads "
            f"({SCHEMA_VERSION}): a newer version of Commonsbox wrote it",
            "schema",
        )
    for fmt in range(doc["schema"], SCHEMA_VERSION):
        doc = {**DOCUMENT_UPGRADES[fmt - 1](doc), "schema": fmt + 1}
    return doc


def declared_slices() -> dict[str, type[Slice]]:
    """Each capability's slice, by its key (appliance/capabilities.py declares them)."""
    from .capabilities import CAPABILITIES  # they import this module

    return {cap.settings[0]: cap.settings[1] for cap in CAPABILITIES if cap.settings}


class Desired:
    """The box's own settings and its accounts, then every capability's slice, read as an
    attribute by its key (``desired.vpn``, ``desired.mail``). Immutable: ``replace``
    makes the next one."""

    __slots__ = ("box", "accounts", "_slices")
    box: BoxSettings
    accounts: Accounts

    def __init__(self, box: BoxSettings, accounts: Accounts = NO_ONE, **given: Slice):
        declared = declared_slices()
        unknown = given.keys() - declared.keys()
        if unknown:
            raise TypeError(f"no capability has the settings {sorted(unknown)}")
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "accounts", accounts)
        parts = {key: given[key] if key in given else kind.new() for key, kind in declared.items()}
        object.__setattr__(self, "_slices", parts)

    def __getattr__(self, key: str) -> Any:
        try:
            return self._slices[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("the desired state is immutable: use replace()")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Desired) and (self.box, self.accounts, self._slices) == (
            other.box,
            other.accounts,
            other._slices,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={v!r}" for k, v in self._slices.items())
        return f"Desired(box={self.box!r}, accounts={self.accounts!r}, {parts})"

    def slices(self) -> dict[str, Slice]:
        """The capabilities' slices, by key."""
        return dict(self._slices)

    def parts(self) -> dict[str, Any]:
        """Every part by its key, the box's own first: what the document holds."""
        return {"box": self.box, "accounts": self.accounts, **self._slices}

    def replace(self, **changes: Any) -> "Desired":
        parts = {**self.parts(), **changes}
        return Desired(parts.pop("box"), parts.pop("accounts"), **parts)

    @classmethod
    def new(cls) -> "Desired":
        return cls(box=BoxSettings())

    @classmethod
    def from_json(cls, doc) -> "Desired":
        doc = upgraded(doc)
        declared = declared_slices()
        required = {key for key, kind in declared.items() if kind.required}
        v.only_keys(doc, "", {"schema", "box", *required}, {"accounts", *declared})
        if doc["schema"] != SCHEMA_VERSION:
            raise Invalid(f"schema version {doc['schema']!r} is not {SCHEMA_VERSION}", "schema")
        desired = cls(
            BoxSettings.from_json(doc["box"]),
            Accounts.from_json(doc.get("accounts", {"users": []})),
            **{
                key: kind.from_json(doc[key], key) if key in doc else kind.new()
                for key, kind in declared.items()
            },
        )
        desired.check_across()
        return desired

    def check_across(self) -> None:
        """What no one slice can check alone: everything held is held for a user; and
        each slice's own checks against the rest (chat needs mail's domain)."""
        users = {u.name for u in self.accounts.users}
        for key, part in self._slices.items():
            strangers = part.owners() - users
            if strangers:
                raise Invalid(f"{key}: {min(strangers)!r} is not a user (an owner)", key)
            part.check(self)

    def check_reloads(self, previous: "Desired | None" = None) -> None:
        """Raise Unloadable unless this document, stored, loads again as itself:
        ``Desired.from_json(self.to_json()) == self``. A part that is the very object
        PREVIOUS holds was checked when PREVIOUS was stored, and is not checked again: a
        change costs what it changed (revisions share what did not)."""
        try:
            if previous is None:
                same = Desired.from_json(self.to_json()) == self
            else:
                same = self._reloads_since(previous)
            self.check_across()
        except ApplianceError as err:
            raise Unloadable(
                f"this change would store a configuration that would not load: {err.message}",
                err.field,
            ) from None
        if not same:
            raise Unloadable("this change would store a configuration that would not load as it is")

    def _reloads_since(self, previous: "Desired") -> bool:
        before = previous.parts()
        for key, mine in self.parts().items():
            old = before[key]
            if mine is old:
                continue
            if isinstance(mine, Slice):
                if not mine.reloads_since(old):
                    return False
            elif type(mine).from_json(mine.to_json(), key) != mine:
                return False
        return True

    def owners(self) -> frozenset[str]:
        """Everyone who holds something in this document (a device, an app password,
        an SSH key...): each slice says whom it holds things for."""
        return frozenset().union(*(part.owners() for part in self._slices.values()))

    def without_member(self, name: str) -> "Desired":
        """NAME's account gone, and everything they held: each slice drops it
        (without_owner). The one path for a removal, the handover and a restore."""
        gone = {key: part.without_owner(name) for key, part in self._slices.items()}
        return self.replace(accounts=self.accounts.without(name), **gone)

    def to_json(self) -> dict:
        return {"schema": SCHEMA_VERSION} | {
            key: part.to_json() for key, part in self.parts().items()
        }

    def with_box(self, box: BoxSettings) -> "Desired":
        return self.replace(box=replace(box, claimed=self.box.claimed))

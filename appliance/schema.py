"""The household's desired state: one document, each capability owning a slice."""

import re
from dataclasses import dataclass, fields, replace

from . import validate as v
from .accounts.schema import LANGUAGES, Accounts
from .chat.schema import ChatSettings
from .errors import ApplianceError, Invalid, Unloadable
from .files.schema import FilesSettings
from .mail.schema import MailSettings
from .ssh.schema import SshSettings
from .storage.schema import StorageSettings
from .vpn.schema import Device, VpnSettings

SCHEMA_VERSION = 1
DOC_MAX_BYTES = 64 * 1024 * 1024
# The slices that hold things a person owns: each has owners() and without_owner(name).
OWNED = ("vpn", "mail", "ssh")


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

    @classmethod
    def from_json(cls, value, fld: str = "box") -> "BoxSettings":
        v.only_keys(
            value, fld, {"name"}, {"language", "timezone", "claimed", "manage_from_anywhere"}
        )
        return cls(
            name=v.text(value["name"], f"{fld}.name", 64),
            language=v.choice(value.get("language", "en"), f"{fld}.language", LANGUAGES),
            timezone=timezone(value.get("timezone", "UTC"), f"{fld}.timezone"),
            claimed=v.boolean(value.get("claimed", False), f"{fld}.claimed"),
            manage_from_anywhere=v.boolean(
                value.get("manage_from_anywhere", False), f"{fld}.manage_from_anywhere"
            ),
        )

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "language": self.language,
            "timezone": self.timezone,
            "claimed": self.claimed,
        } | ({"manage_from_anywhere": True} if self.manage_from_anywhere else {})


@dataclass(frozen=True)
class Desired:
    box: BoxSettings
    vpn: VpnSettings
    accounts: Accounts = Accounts()
    mail: MailSettings = MailSettings()
    chat: ChatSettings = ChatSettings()
    storage: StorageSettings = StorageSettings()
    files: FilesSettings = FilesSettings()
    ssh: SshSettings = SshSettings()

    @classmethod
    def new(cls) -> "Desired":
        return cls(box=BoxSettings(), vpn=VpnSettings.new())

    @classmethod
    def from_json(cls, doc) -> "Desired":
        v.only_keys(
            doc,
            "",
            {"schema", "box", "vpn"},
            {"accounts", "mail", "chat", "storage", "files", "ssh"},
        )
        if doc["schema"] != SCHEMA_VERSION:
            raise Invalid(f"schema version {doc['schema']!r} is not {SCHEMA_VERSION}", "schema")
        desired = cls(
            box=BoxSettings.from_json(doc["box"]),
            vpn=VpnSettings.from_json(doc["vpn"]),
            accounts=Accounts.from_json(doc.get("accounts", {"users": []})),
            mail=MailSettings.from_json(doc.get("mail", {"enabled": False})),
            chat=ChatSettings.from_json(doc.get("chat", {"enabled": False})),
            storage=StorageSettings.from_json(doc.get("storage", {})),
            files=FilesSettings.from_json(doc.get("files", {"enabled": False})),
            ssh=SshSettings.from_json(doc.get("ssh", {"keys": []})),
        )
        desired.check_across()
        return desired

    def check_across(self) -> None:
        """What no one slice can check alone: everything owned has an owner who is a
        user; chat has mail's domain."""
        users = {u.name for u in self.accounts.users}
        for i, d in enumerate(self.vpn.devices):
            if d.owner is not None and d.owner not in users:
                raise Invalid(f"vpn.devices[{i}].owner is not a user", f"vpn.devices[{i}].owner")
        for i, p in enumerate(self.mail.app_passwords):
            if p.owner not in users:
                raise Invalid(
                    f"mail.app_passwords[{i}].owner is not a user", f"mail.app_passwords[{i}].owner"
                )
        for i, k in enumerate(self.ssh.keys):
            if k.owner is not None and k.owner not in users:
                raise Invalid(f"ssh.keys[{i}].owner is not a user", f"ssh.keys[{i}].owner")
        if self.chat.enabled and not self.mail.domain:
            raise Invalid("chat needs the box's domain: set up mail first", "chat.enabled")

    def check_reloads(self, previous: "Desired | None" = None) -> None:
        """Raise Unloadable unless this document, stored, loads again as itself:
        ``Desired.from_json(self.to_json()) == self``. A slice (or a device) that is
        the very object PREVIOUS holds was checked when PREVIOUS was stored, and is not
        checked again: a change costs what it changed (revisions share what did not)."""
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
        for name in (f.name for f in fields(self)):
            mine = getattr(self, name)
            if mine is getattr(previous, name):
                continue
            if name == "vpn":  # thousands of devices: only the new or changed ones
                if not self._vpn_reloads(previous.vpn):
                    return False
            elif type(mine).from_json(mine.to_json()) != mine:
                return False
        return True

    def _vpn_reloads(self, previous: VpnSettings) -> bool:
        vpn = self.vpn
        settings = vpn.to_json_without_devices()
        if settings != previous.to_json_without_devices():
            if VpnSettings.from_json({**settings, "devices": []}) != replace(vpn, devices=()):
                return False
            new = None  # other subnets: every device again
        else:
            known = set(map(id, previous.devices))
            new = [d for d in vpn.devices if id(d) not in known]
        for d in vpn.devices if new is None else new:
            if Device.from_json(d.to_json(), "vpn.devices") != d:
                return False
        vpn.check_devices(new)
        return True

    def owners(self) -> frozenset[str]:
        """Everyone who holds something in this document (a device, an app password,
        an SSH key...): each slice in OWNED says whom it holds things for."""
        return frozenset().union(*(getattr(self, name).owners() for name in OWNED))

    def without_member(self, name: str) -> "Desired":
        """NAME's account gone, and everything they held: each slice in OWNED drops it
        (without_owner). The one path for a removal, the handover and a restore."""
        gone = {slice_name: getattr(self, slice_name).without_owner(name) for slice_name in OWNED}
        return replace(self, accounts=self.accounts.without(name), **gone)

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA_VERSION,
            "box": self.box.to_json(),
            "vpn": self.vpn.to_json(),
            "accounts": self.accounts.to_json(),
            "mail": self.mail.to_json(),
            "chat": self.chat.to_json(),
            "storage": self.storage.to_json(),
            "files": self.files.to_json(),
            "ssh": self.ssh.to_json(),
        }

    def with_vpn(self, vpn: VpnSettings) -> "Desired":
        return replace(self, vpn=vpn)

    def with_mail(self, mail: MailSettings) -> "Desired":
        return replace(self, mail=mail)

    def with_chat(self, chat: ChatSettings) -> "Desired":
        return replace(self, chat=chat)

    def with_files(self, files: FilesSettings) -> "Desired":
        return replace(self, files=files)

    def with_ssh(self, ssh: SshSettings) -> "Desired":
        return replace(self, ssh=ssh)

    def with_storage(self, storage: StorageSettings) -> "Desired":
        return replace(self, storage=storage)

    def with_box(self, box: BoxSettings) -> "Desired":
        return replace(self, box=replace(box, claimed=self.box.claimed))

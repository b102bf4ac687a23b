"""The household's desired state: one document, each capability owning a slice."""

import re
from dataclasses import dataclass, replace

from . import validate as v
from .accounts.schema import LANGUAGES, Accounts
from .chat.schema import ChatSettings
from .errors import Invalid
from .files.schema import FilesSettings
from .mail.schema import MailSettings
from .ssh.schema import SshSettings
from .storage.schema import StorageSettings
from .vpn.schema import VpnSettings

SCHEMA_VERSION = 1
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
        accounts = Accounts.from_json(doc.get("accounts", {"users": []}))
        vpn = VpnSettings.from_json(doc["vpn"])
        for i, d in enumerate(vpn.devices):
            if d.owner is not None and accounts.user(d.owner) is None:
                raise Invalid(f"vpn.devices[{i}].owner is not a user", f"vpn.devices[{i}].owner")
        mail = MailSettings.from_json(doc.get("mail", {"enabled": False}))
        for i, p in enumerate(mail.app_passwords):
            if accounts.user(p.owner) is None:
                raise Invalid(
                    f"mail.app_passwords[{i}].owner is not a user", f"mail.app_passwords[{i}].owner"
                )
        ssh = SshSettings.from_json(doc.get("ssh", {"keys": []}))
        for i, k in enumerate(ssh.keys):
            if k.owner is not None and accounts.user(k.owner) is None:
                raise Invalid(f"ssh.keys[{i}].owner is not a user", f"ssh.keys[{i}].owner")
        chat = ChatSettings.from_json(doc.get("chat", {"enabled": False}))
        if chat.enabled and not mail.domain:
            raise Invalid("chat needs the box's domain: set up mail first", "chat.enabled")
        return cls(
            box=BoxSettings.from_json(doc["box"]),
            vpn=vpn,
            accounts=accounts,
            mail=mail,
            chat=chat,
            storage=StorageSettings.from_json(doc.get("storage", {})),
            files=FilesSettings.from_json(doc.get("files", {"enabled": False})),
            ssh=ssh,
        )

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

"""Mail's slice of the desired state, checked at the edge.

Every household user has a mailbox, ``name@domain``, while mail is on. They log in from
each mail or chat app with an app password of its own (the secret store keeps only its
hash), so losing a phone means revoking one password, not changing everyone's.
"""

import re
from dataclasses import dataclass, replace

from .. import validate as v
from ..accounts.schema import user_name
from ..errors import Invalid
from ..slice import Slice

APP_PASSWORDS_MAX = 8  # per user: Dovecot checks one file per slot (render.py)
LABEL_MAX = 64
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def domain(value, fld: str) -> str:
    """A mail domain: two or more DNS labels, lower case (box-a.test, example.org)."""
    if isinstance(value, str):
        value = value.strip().lower().removesuffix(".")
    if (
        not isinstance(value, str)
        or len(value) > 253
        or value.count(".") < 1
        or not all(_DOMAIN_LABEL.fullmatch(label) for label in value.split("."))
    ):
        raise Invalid(f"{fld} must be a domain name like example.org", fld)
    return value


def password_secret(owner: str, slot: int) -> str:
    """The secret holding an app password's hash."""
    return f"mail/app/{owner}/{slot}"


@dataclass(frozen=True)
class AppPassword:
    id: int
    owner: str
    label: str  # which app or device: "Alice's phone, Delta Chat"
    slot: int  # 1..APP_PASSWORDS_MAX, unique per owner
    made_by: str | None = None  # who made it for the owner (None: the owner, or root)

    @classmethod
    def from_json(cls, value, fld: str) -> "AppPassword":
        v.only_keys(value, fld, {"id", "owner", "label", "slot"}, {"made_by"})
        made_by = value.get("made_by")
        return cls(
            id=v.integer(value["id"], f"{fld}.id", 1, 2**31),
            owner=user_name(value["owner"], f"{fld}.owner"),
            label=v.text(value["label"], f"{fld}.label", LABEL_MAX),
            slot=v.integer(value["slot"], f"{fld}.slot", 1, APP_PASSWORDS_MAX),
            made_by=None if made_by is None else user_name(made_by, f"{fld}.made_by"),
        )

    def to_json(self) -> dict:
        out = {"id": self.id, "owner": self.owner, "label": self.label, "slot": self.slot}
        if self.made_by is not None:
            out["made_by"] = self.made_by
        return out


@dataclass(frozen=True)
class Smarthost:
    """Where outgoing mail goes when the home cannot send on port 25 itself."""

    host: str
    port: int = 587
    username: str = ""  # the password is a secret (secret store), not state

    @classmethod
    def from_json(cls, value, fld: str) -> "Smarthost":
        v.only_keys(value, fld, {"host"}, {"port", "username"})
        username = (
            v.text(value.get("username", ""), f"{fld}.username", 128)
            if value.get("username")
            else ""
        )
        if any(c in username for c in ":\n\r\t "):
            raise Invalid(
                f"{fld}.username must not contain spaces, tabs, ':' or line breaks",
                f"{fld}.username",
            )
        return cls(
            host=v.hostname_or_ip(value["host"], f"{fld}.host"),
            port=v.integer(value.get("port", 587), f"{fld}.port", 1, 65535),
            username=username,
        )

    def to_json(self) -> dict:
        return {"host": self.host, "port": self.port, "username": self.username}


@dataclass(frozen=True)
class MailSettings(Slice):
    personal_secrets = ("mail/app/{name}/",)
    enabled: bool = False
    domain: str = ""
    max_message_mib: int = 25
    quota_mib: int = 2048  # per mailbox
    # Delete a message from the box this many days after an app has fetched it (0: keep).
    delete_fetched_after_days: int = 0
    # Refuse unencrypted mail from the household's apps to household members.
    encrypted_only: bool = False
    smarthost: Smarthost | None = None
    app_passwords: tuple[AppPassword, ...] = ()

    @classmethod
    def from_json(cls, value, fld: str = "mail") -> "MailSettings":
        v.only_keys(
            value,
            fld,
            {"enabled"},
            {
                "domain",
                "max_message_mib",
                "quota_mib",
                "delete_fetched_after_days",
                "encrypted_only",
                "smarthost",
                "app_passwords",
            },
        )
        enabled = v.boolean(value["enabled"], f"{fld}.enabled")
        dom = value.get("domain", "")
        out = cls(
            enabled=enabled,
            domain=domain(dom, f"{fld}.domain") if (dom or enabled) else "",
            max_message_mib=v.integer(
                value.get("max_message_mib", 25), f"{fld}.max_message_mib", 1, 100
            ),
            quota_mib=v.integer(value.get("quota_mib", 2048), f"{fld}.quota_mib", 10, 10**6),
            delete_fetched_after_days=v.integer(
                value.get("delete_fetched_after_days", 0),
                f"{fld}.delete_fetched_after_days",
                0,
                3650,
            ),
            encrypted_only=v.boolean(value.get("encrypted_only", False), f"{fld}.encrypted_only"),
            smarthost=(
                Smarthost.from_json(value["smarthost"], f"{fld}.smarthost")
                if value.get("smarthost") is not None
                else None
            ),
            app_passwords=v.listed(
                value.get("app_passwords", []),
                f"{fld}.app_passwords",
                AppPassword.from_json,
                10_000,
            ),
        )
        slots = [(p.owner, p.slot) for p in out.app_passwords]
        if len(set(slots)) != len(slots) or len({p.id for p in out.app_passwords}) != len(slots):
            raise Invalid("two app passwords share an id or a slot", f"{fld}.app_passwords")
        return out

    def to_json(self) -> dict:
        out = {
            "enabled": self.enabled,
            "domain": self.domain,
            "max_message_mib": self.max_message_mib,
            "quota_mib": self.quota_mib,
            "delete_fetched_after_days": self.delete_fetched_after_days,
            "encrypted_only": self.encrypted_only,
            "app_passwords": [p.to_json() for p in self.app_passwords],
        }
        if self.smarthost is not None:
            out["smarthost"] = self.smarthost.to_json()
        return out

    def address(self, user: str) -> str:
        return f"{user}@{self.domain}"

    def with_password(self, password: AppPassword) -> "MailSettings":
        return replace(self, app_passwords=self.app_passwords + (password,))

    def owners(self) -> frozenset[str]:
        """Who holds an app password: its owner, and whoever made it for them."""
        return frozenset(p.owner for p in self.app_passwords) | frozenset(
            p.made_by for p in self.app_passwords if p.made_by is not None
        )

    def without_owner(self, name: str) -> "MailSettings":
        """Without NAME's app passwords, nor those NAME made for others (they saw them)."""
        return replace(
            self,
            app_passwords=tuple(p for p in self.app_passwords if name not in (p.owner, p.made_by)),
        )

    def secrets(self) -> frozenset[str]:
        return frozenset(password_secret(p.owner, p.slot) for p in self.app_passwords)

    def restored(self, current: "MailSettings", present: frozenset[str]) -> "MailSettings":
        """An app password whose hash is gone would be listed but never work: it stays gone."""
        return replace(
            self,
            app_passwords=tuple(
                p for p in self.app_passwords if password_secret(p.owner, p.slot) in present
            ),
        )

    def without_password(self, id: int) -> "MailSettings":
        return replace(self, app_passwords=tuple(p for p in self.app_passwords if p.id != id))

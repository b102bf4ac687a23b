"""Chat's slice of the desired state. Its domain is mail's: alice@example.org is both
Alice's address and her chat address."""

from dataclasses import dataclass

from .. import validate as v
from ..errors import Invalid
from ..slice import Slice


@dataclass(frozen=True)
class ChatSettings(Slice):
    enabled: bool = False
    archive_days: int = 7  # the server's message archive (for a member's other devices)
    upload_mib: int = 20  # largest file shared through the box (images, voice messages)
    upload_days: int = 7  # how long shared files stay on the box

    @classmethod
    def from_json(cls, value, fld: str = "chat") -> "ChatSettings":
        v.only_keys(value, fld, {"enabled"}, {"archive_days", "upload_mib", "upload_days"})
        return cls(
            enabled=v.boolean(value["enabled"], f"{fld}.enabled"),
            archive_days=v.integer(value.get("archive_days", 7), f"{fld}.archive_days", 1, 3650),
            upload_mib=v.integer(value.get("upload_mib", 20), f"{fld}.upload_mib", 1, 500),
            upload_days=v.integer(value.get("upload_days", 7), f"{fld}.upload_days", 1, 365),
        )

    def check(self, desired) -> None:
        if self.enabled and not desired.mail.domain:
            raise Invalid("chat needs the box's domain: set up mail first", "chat.enabled")

    def to_json(self) -> dict:
        return {
            "enabled": self.enabled,
            "archive_days": self.archive_days,
            "upload_mib": self.upload_mib,
            "upload_days": self.upload_days,
        }

"""The accounts' slice of the desired state."""

import re
from dataclasses import dataclass, replace

from .. import validate as v
from ..errors import Conflict, Invalid

ROLES = ("admin", "installer", "member")
LANGUAGES = ("en", "es", "fr", "pt", "ar", "hi", "sw")
# Login names end up in mail addresses and XMPP JIDs later: keep them to what both allow.
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,30}[a-z0-9])?")


def user_name(value, fld: str = "name") -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise Invalid(
            f"{fld} must be 1-32 lower-case letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit",
            fld,
        )
    return value


@dataclass(frozen=True)
class User:
    name: str
    role: str
    # Only from revisions stored before a member's language was a preference: the agent
    # moves it to the runtime store at start (AccountService.adopt_languages); never stored.
    language: str | None = None
    totp: bool = False
    # Who made the account (or the invitation it came from); None: root, or the claim.
    # Kept after they leave: the household confirms the accounts an installer made.
    created_by: str | None = None
    # When (Unix seconds) the account was made: a restore tells a new member from one who
    # left under the same name (None: made before this was recorded).
    created: int | None = None

    @classmethod
    def from_json(cls, value, fld: str) -> "User":
        v.only_keys(value, fld, {"name", "role"}, {"language", "totp", "created_by", "created"})
        language, created_by = value.get("language"), value.get("created_by")
        created = value.get("created")
        return cls(
            name=user_name(value["name"], f"{fld}.name"),
            role=v.choice(value["role"], f"{fld}.role", ROLES),
            language=None if language is None else v.choice(language, f"{fld}.language", LANGUAGES),
            totp=v.boolean(value.get("totp", False), f"{fld}.totp"),
            created_by=None if created_by is None else user_name(created_by, f"{fld}.created_by"),
            created=None if created is None else v.integer(created, f"{fld}.created", 0, 2**40),
        )

    def to_json(self) -> dict:
        out = {"name": self.name, "role": self.role, "totp": self.totp}
        if self.created_by is not None:
            out["created_by"] = self.created_by
        if self.created is not None:
            out["created"] = self.created
        return out


@dataclass(frozen=True)
class Accounts:
    users: tuple[User, ...] = ()

    @classmethod
    def from_json(cls, value, fld: str = "accounts") -> "Accounts":
        v.only_keys(value, fld, {"users"})
        users = v.listed(value["users"], f"{fld}.users", User.from_json, 1000)
        names = [u.name for u in users]
        if len(set(names)) != len(names):
            raise Conflict("two users have the same name", f"{fld}.users")
        return cls(users)

    def to_json(self) -> dict:
        return {"users": [u.to_json() for u in self.users]}

    def user(self, name: str) -> User | None:
        return next((u for u in self.users if u.name == name), None)

    def with_user(self, user: User) -> "Accounts":
        others = tuple(u for u in self.users if u.name != user.name)
        return replace(self, users=tuple(sorted(others + (user,), key=lambda u: u.name)))

    def without(self, name: str) -> "Accounts":
        return replace(self, users=tuple(u for u in self.users if u.name != name))

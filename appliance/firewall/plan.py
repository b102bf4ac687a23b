"""The firewall planner: pure, facts + wanted -> actions."""

from dataclasses import dataclass

from .ruleset import Wanted


@dataclass(frozen=True)
class Facts:
    comment: str | None  # None: the table is missing
    members: dict[str, frozenset[str]]
    forwarding: dict[str, bool]  # sysctl path -> on


@dataclass(frozen=True)
class ReplaceTable:
    text: str

    def __repr__(self) -> str:
        return "ReplaceTable(...)"


@dataclass(frozen=True)
class AddMembers:
    set: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class RemoveMembers:
    set: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class EnableForwarding:
    sysctl: str


def plan(facts: Facts, wanted: Wanted) -> list:
    actions: list = [
        EnableForwarding(path)
        for path, on in sorted(facts.forwarding.items())
        if wanted.forwarding and not on
    ]
    if facts.comment != wanted.comment:
        return actions + [ReplaceTable(wanted.text())]
    for name, members in wanted.members.items():
        have = facts.members.get(name, frozenset())
        if members - have:
            actions.append(AddMembers(name, tuple(sorted(members - have))))
        if have - members:
            actions.append(RemoveMembers(name, tuple(sorted(have - members))))
    return actions

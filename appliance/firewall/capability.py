"""The firewall capability: read facts from nft and /proc, apply with `nft -f`."""

import re
import subprocess
from pathlib import Path

from ..capability import Capability, Check, Parts
from ..errors import SystemFailure
from ..schema import Desired
from . import ruleset
from .plan import AddMembers, EnableForwarding, Facts, RemoveMembers, ReplaceTable, plan

FORWARDING = ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding")


def _nft(args: list[str], stdin: str | None = None) -> str:
    done = subprocess.run(["nft", *args], input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemFailure(f"nft {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


# nft's JSON output (1.0.6) leaves out the table's comment, so read the text form of
# our own table: its comment line and each set's "elements = { ... }".
_SET = re.compile(r"^\tset (\S+) \{\n(.*?)^\t\}", re.M | re.S)
_ELEMENTS = re.compile(r"elements = \{([^}]*)\}")


def parse_comment(listing: str) -> str | None:
    found = re.search(r'^\tcomment "([^"]*)"$', listing, re.M)
    return found.group(1) if found else None


def parse_members(listing: str) -> dict[str, frozenset[str]]:
    members = {}
    for name, body in _SET.findall(listing):
        found = _ELEMENTS.search(body)
        members[name] = (
            frozenset(e.strip() for e in found.group(1).split(",")) if found else frozenset()
        )
    return members


class FirewallCapability(Capability):
    name = "firewall"
    packages = ("nftables",)

    @classmethod
    def made(cls, parts: Parts) -> "FirewallCapability":
        return cls()

    def depends_on(self, desired: Desired):
        wanted = ruleset.wanted(desired)
        return wanted.digest, wanted.members

    def read_facts(self, desired: Desired) -> Facts:
        forwarding = {path: Path(path).read_text().strip() == "1" for path in FORWARDING}
        done = subprocess.run(
            ["nft", "list", "table", "inet", ruleset.TABLE], capture_output=True, text=True
        )
        if done.returncode != 0:
            return Facts(comment=None, members={}, forwarding=forwarding)
        return Facts(
            comment=parse_comment(done.stdout),
            members=parse_members(done.stdout),
            forwarding=forwarding,
        )

    def plan(self, facts: Facts, desired: Desired) -> list:
        return plan(facts, ruleset.wanted(desired))

    def apply(self, actions: list) -> None:
        script = []
        for action in actions:
            if isinstance(action, EnableForwarding):
                Path(action.sysctl).write_text("1\n")
            elif isinstance(action, ReplaceTable):
                script.append(action.text)
            elif isinstance(action, (AddMembers, RemoveMembers)):
                verb = "add" if isinstance(action, AddMembers) else "delete"
                script.append(
                    f"{verb} element inet {ruleset.TABLE} {action.set} "
                    f"{{ {', '.join(action.members)} }}\n"
                )
            else:
                raise self.unknown(action)
        if script:
            _nft(["-f", "-"], "".join(script))

    def health(self, facts: Facts, desired: Desired) -> list[Check]:
        in_place = facts.comment == ruleset.wanted(desired).comment
        return [
            Check(
                self.name,
                "nftables",
                in_place,
                f"table inet {ruleset.TABLE} {'in place' if in_place else 'missing or stale'}",
            )
        ]

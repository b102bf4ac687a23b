"""Updates as a capability: nothing to converge (a slot is written only when the household
or the daily check asks), but declared like every other: its packages, its API methods
(api.py), commands (cli.py) and page (pages.py), and a health check for the dashboard
that says how the last update went."""

from typing import Any, Self

from ..capability import Capability, Check
from ..schema import Desired
from . import record
from .schema import UpdateSettings


class UpdateCapability(Capability):
    name = "update"
    settings = ("update", UpdateSettings)
    packages = ("rauc", "rauc-service")

    @classmethod
    def made(cls, parts) -> Self:
        return cls()

    def depends_on(self, desired: Desired) -> Any:
        return None

    def read_facts(self, desired: Desired) -> Any:
        return record.read()

    def plan(self, facts: Any, desired: Desired) -> list:
        return []

    def apply(self, actions: list) -> None:
        for action in actions:
            raise self.unknown(action)

    def health(self, facts: Any, desired: Desired) -> list[Check]:
        last = (facts.get("history") or [None])[0]
        if last is None or last["outcome"] == "committed":
            return []
        return [
            Check(
                self.name,
                "last update",
                False,
                f"version {last['version']} {last['outcome']}: "
                + "; ".join(last.get("lost") or ["it did not start"]),
            )
        ]

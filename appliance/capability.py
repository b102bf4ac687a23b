"""The contract every capability folder implements, and what it declares to the rest.

A capability converges one part of the system to its slice of the desired state:

    depends_on(desired)    the part of the desired state it acts on (unchanged: skipped)
    read_facts(desired)    what the system has now (of what DESIRED is about)
    plan(facts, desired)   pure: the actions that would make the system match, [] if none
    apply(actions)         carries out exactly those actions; an action it does not know
                           is a bug, and raises
    health(facts, desired) what the dashboard shows

Beside that, it declares what the shared code needs to know, so that adding one is its
folder plus one line in appliance/capabilities.py:

    settings               its slice of the desired state: its key and its class (a Slice)
    packages               the Debian packages the box's image needs for it
    units_off              the units those packages enable that the agent starts itself
                           (the image disables them)
    ports(desired)         what the firewall opens for it (to everyone, or to the home only)
    card_secrets           which of its secrets stay on the card (needed while the encrypted
                           storage is locked: appliance/configstore.py)
    uses_storage           it keeps household data on the encrypted storage, so it stops
                           before the storage is locked or goes away
    rendered(desired)      the files it was given, which a factory reset removes
    forget()               what a factory reset removes that it keeps outside the stores
    housekeeping(...)      what it does on the agent's timer besides converging

Its API methods are in its folder's api.py, its commands in its cli.py and its web UI
pages in its pages.py (``blueprints``: Flask blueprints whose templates are in the
folder's templates/), found from the list by appliance/api/methods.py, appliance/cli.py
and webui/views/__init__.py; only the web UI imports a pages.py, never the agent. A
capability that runs daemons derives from appliance/daemonconfig.py and declares them
there.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self

from .schema import Desired
from .slice import Slice

if TYPE_CHECKING:
    from .paths import Paths
    from .secrets import SecretStore
    from .storage.service import StorageService
    from .system import System
    from .vpn.backends import Backend

Port = tuple[str, int]  # ("tcp" | "udp", number)


@dataclass(frozen=True)
class Check:
    capability: str
    name: str
    ok: bool
    detail: str = ""

    def to_json(self) -> dict:
        return {
            "capability": self.capability,
            "name": self.name,
            "ok": self.ok,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Parts:
    """What the agent hands every capability it makes (each takes what it needs)."""

    system: "System"
    secrets: "SecretStore"
    backend: "Backend"
    storage: "StorageService"
    paths: "Paths | None" = None  # where the agent keeps its own files (backup's record)


@dataclass(frozen=True)
class Ports:
    open: frozenset[Port] = frozenset()  # from anywhere
    home: frozenset[Port] = frozenset()  # from the home's networks (and the VPN) only


class UnknownAction(TypeError):
    """A planner made an action its capability cannot carry out: a bug, never data."""

    def __init__(self, capability: str, action: object):
        super().__init__(f"{capability}: no such action {action!r}")


class Capability(ABC):
    name: ClassVar[str]
    settings: ClassVar[tuple[str, type[Slice]] | None] = None
    packages: ClassVar[tuple[str, ...]] = ()
    units_off: ClassVar[tuple[str, ...]] = ()
    card_secrets: ClassVar[tuple[str, ...]] = ()
    uses_storage: ClassVar[bool] = False

    @classmethod
    def made(cls, parts: Parts) -> Self:
        return cls(parts.system, parts.secrets)  # type: ignore[call-arg]

    # -- converging ----------------------------------------------------------------

    @abstractmethod
    def depends_on(self, desired: Desired) -> Any: ...

    @abstractmethod
    def read_facts(self, desired: Desired) -> Any: ...

    @abstractmethod
    def plan(self, facts: Any, desired: Desired) -> list: ...

    @abstractmethod
    def apply(self, actions: list) -> None: ...

    @abstractmethod
    def health(self, facts: Any, desired: Desired) -> list[Check]: ...

    def acknowledged(self, facts: Any, actions: list) -> Any | None:
        """The facts after ACTIONS when the system's answer to each is enough to know
        them (vpn/capability.py); None (the default): the verify reads afresh."""
        return None

    # -- declarations (the defaults: none) -------------------------------------------

    @staticmethod
    def ports(desired: Desired) -> Ports:
        return Ports()

    def rendered(self, desired: Desired) -> set[str]:
        return set()

    # Hooks whose default is to do nothing (most capabilities have nothing of the kind).
    def forget(self) -> None:  # noqa: B027
        pass

    def housekeeping(self, desired: Desired, now: float) -> None:  # noqa: B027
        pass

    def stop_all(self) -> None:  # noqa: B027
        """Stop what it runs, at once (its data is about to go away)."""

    def unknown(self, action: object) -> UnknownAction:
        return UnknownAction(self.name, action)

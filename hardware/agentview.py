"""What the box's display and LEDs say about it, asked of the agent through its API.

The hardware service is another client of the agent's socket, as its own user (the
agent lets that user call only these methods and the factory reset):
`setup.status` every few seconds (cheap: the head revision), the one-time setup code
while the box is unclaimed, and the health checks of `status` less often (it reads
every capability's facts). A storage volume that is locked fails its health check, so
"degraded" covers it. Until the agent answers, the box is "starting".
"""

import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.api.client import AgentUnavailable
from appliance.errors import ApplianceError

log = logging.getLogger("commonsbox.hardware")

DEFAULT_NAME = "Commonsbox"
HEALTH_SECONDS = 30.0  # between `status` calls while claimed
RESET_METHOD = "box.factory_reset"

Call = Callable[..., Any]  # appliance.api.client.Client.call


@dataclass(frozen=True)
class AgentView:
    state: str  # "starting" | "unclaimed" | "ready" | "degraded"
    name: str = DEFAULT_NAME
    setup_code: str = ""
    problems: tuple[str, ...] = ()  # the failing health checks, for the log


STARTING = AgentView("starting")


def problems(status: dict) -> tuple[str, ...]:
    """The failing health checks of an agent's `status` answer."""
    return tuple(
        f"{c['capability']} {c['name']}: {c['detail']}"
        for c in status.get("health", [])
        if not c.get("ok")
    )


class AgentWatch:
    """The agent's latest answer, as an AgentView. `poll` may block on a busy agent (a
    long reconcile holds its lock), so the service calls it from a thread of its own;
    polls from two threads take turns (one client, one connection)."""

    def __init__(self, call: Call, health_seconds: float = HEALTH_SECONDS) -> None:
        self._call = call
        self._health_seconds = health_seconds
        self._health_at = float("-inf")
        self._problems: tuple[str, ...] = ()
        self._said: str | None = None
        self._lock = threading.Lock()
        self.view = STARTING

    def poll(self, now: float) -> AgentView:
        with self._lock:
            return self._poll(now)

    def _poll(self, now: float) -> AgentView:
        try:
            view = self._ask(now)
        except AgentUnavailable as error:
            self._say(f"the agent does not answer yet ({error})")
            view = STARTING
        except (ApplianceError, KeyError, TypeError, ValueError) as error:
            # An answer this client does not understand: keep showing the last one.
            self._say(f"the agent's answer was not usable: {error}", logging.WARNING)
            view = self.view
        if view != self.view:
            detail = f": {'; '.join(view.problems)}" if view.problems else ""
            log.info("the box is %s%s", view.state, detail)
            if view.state != "starting":
                self._said = None
        self.view = view
        return view

    def _ask(self, now: float) -> AgentView:
        setup = self._call("setup.status")
        name = setup["name"]
        if not setup["claimed"]:
            self._health_at = float("-inf")  # once claimed, look at its health at once
            return AgentView("unclaimed", name, self._call("setup.code")["code"])
        if now - self._health_at >= self._health_seconds:
            self._problems = problems(self._call("status"))
            self._health_at = now
        return AgentView("degraded" if self._problems else "ready", name, problems=self._problems)

    def _say(self, message: str, level: int = logging.INFO) -> None:
        if message != self._said:
            log.log(level, "%s", message)
            self._said = message


def lan_address() -> str:
    """The box's IPv4 address on the home network: the source address of its default
    route. connect() on a UDP socket only looks the route up; nothing is sent."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: routed by the default route
            return str(probe.getsockname()[0])
    except OSError:
        return ""  # no default route (yet)

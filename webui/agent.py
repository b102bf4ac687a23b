"""The agent, as seen from a request: a client carrying the member's session."""

from flask import current_app, g, session
from flask.ctx import _AppCtxGlobals

from appliance.api.client import Client
from appliance.errors import ApplianceError


class RequestGlobals(_AppCtxGlobals):
    """Flask's ``g``, whose ``user`` (the member behind the session, or None) is found
    when first read: the agent tells it with the page's first call, so a page that asks
    the agent before it needs the member costs one round trip, not two."""

    @property
    def user(self) -> dict | None:
        if "user" not in self.__dict__:  # g.user = ... (a test, reach.py) sets it outright
            self.__dict__["user"] = _member()
        return self.__dict__["user"]


def _member() -> dict | None:
    agent = g.get("agent")
    if agent is None:
        return None
    user = agent.whoami()
    if user is None and agent.session is not None:
        # Expired or revoked: forget it (unless the page has just started a new one).
        if session.get("token") == agent.session:
            session.clear()
        agent.session = None
    return user


# Seconds the storage's work may take on a small board: formatting a big disk, argon2id,
# mail and chat stopping or starting.
SLOW = 900


def agent_for_request() -> None:
    g.agent = Client(current_app.config["AGENT_SOCKET"], timeout=30, session=session.get("token"))


def check_session(response):
    """Every request that carries a session has it checked, as a page does: a static
    file's too (an ended one is forgotten, a live one kept alive)."""
    try:
        g.user  # noqa: B018 (read for its effect)
    except ApplianceError:
        pass  # the agent is away: a static file is still served, a page says so itself
    return response


def close_agent(exc=None) -> None:
    """Hang up at the end of every request, so the agent keeps no idle thread for it."""
    agent = g.pop("agent", None)
    if agent is not None:
        agent.close()


def call(method: str, **params):
    return g.agent.call(method, **params)


def call_slowly(method: str, **params):
    """Call the agent and wait as long as the storage's work takes (a page's own calls
    give up after 30 s)."""
    agent = g.agent
    agent.close()
    before, agent.timeout = agent.timeout, SLOW
    try:
        return agent.call(method, **params)
    finally:
        agent.close()
        agent.timeout = before

"""The agent, as seen from a request: a client carrying the member's session."""

from flask import current_app, g, session

from appliance.api.client import Client
from appliance.errors import Unauthorized

# Seconds the storage's work may take on a small board: formatting a big disk, argon2id,
# mail and chat stopping or starting.
SLOW = 900


def agent_for_request() -> None:
    g.agent = Client(current_app.config["AGENT_SOCKET"], timeout=30, session=session.get("token"))
    g.user = None
    if session.get("token"):
        try:
            g.user = g.agent.call("auth.whoami")
        except Unauthorized:  # expired or revoked: forget it
            session.clear()
            g.agent.session = None


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

"""Which pages the Internet reaches. The firewall keeps 443 open (an invitation is
opened wherever the invited person is), so the web UI decides per page, by the peer's
address as gunicorn saw it (it serves TLS itself and trusts no proxy header):

from anywhere   an invitation, a one-time device link, mail autoconfig, static files
                (and the language switch those pages show)
otherwise       only from home (appliance/homenet.py: the box, the home's network, the
                VPN), unless the household widened it (Settings; off by default)

A refused page says so in the visitor's language. From outside, no session is used.
"""

from flask import g, render_template, request

from appliance.homenet import is_home

from .agent import call

FROM_ANYWHERE = frozenset(
    {
        "auth.join",
        "devices.one_time",
        "autoconfig.mail_config",
        "static",
        "auth.language",
    }
)


def from_home_or_widened() -> bool:
    address = request.remote_addr
    if is_home(address):  # the fixed home ranges: no question to the agent
        return True
    reach = call("webui.reach")
    return reach["anywhere"] or is_home(address, reach["networks"])


def keep_management_at_home():
    """A before_request hook, after the agent's: the refusal page, or None to go on."""
    if from_home_or_widened():
        return None
    g.user = None  # a session cookie counts for nothing from outside
    g.agent.session = None
    if request.endpoint is None or request.endpoint in FROM_ANYWHERE:
        return None  # (no endpoint: the "no such page" answer)
    return render_template("outside.html"), 403

"""The dashboard: is the box healthy, who is connected."""

import time

from flask import Blueprint, g, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l

from appliance.errors import ApplianceError
from appliance.update import pages as update_pages

from ..agent import call

bp = Blueprint("home", __name__)
ONLINE_SECONDS = 180  # WireGuard re-handshakes every 2 minutes while traffic flows
RECENT = 10
LOW_SPACE = 0.10  # under a tenth free, the dashboard warns
# The agent names its checks; the member reads them in their language. The detail
# stays as the agent gave it: it is for whoever has to fix something.
CHECKS = {
    ("vpn", "interface"): _l("VPN interface"),
    ("vpn", "devices"): _l("Devices on the VPN"),
    ("vpn", "endpoint"): _l("Address on the Internet"),
    ("firewall", "nftables"): _l("Firewall"),
    ("mail", "opendkim"): _l("Mail signing (OpenDKIM)"),
    ("mail", "mailfilter"): _l("Encrypted-only filter"),
    ("mail", "dovecot"): _l("Mailboxes (Dovecot)"),
    ("mail", "postfix"): _l("Mail server (Postfix)"),
    ("chat", "prosody"): _l("Chat server (Prosody)"),
    ("storage", "encryption"): _l("Encrypted storage"),
    ("storage", "space"): _l("Free space on the storage"),
    ("mail", "storage"): _l("Mail's storage"),
    ("chat", "storage"): _l("Chat's storage"),
    ("files", "files"): _l("File share (SFTP)"),
    ("files", "storage"): _l("Files' storage"),
    ("files", "accounts"): _l("File share accounts"),
    ("ssh", "ssh"): _l("Installer's SSH"),
    ("update", "last update"): _l("Last update"),
    ("backup", "last good backup"): _l("Last good backup"),
}


@bp.route("/")
def dashboard():
    if g.user is None:
        return redirect(url_for("auth.login"))
    status = call("status")
    now = time.time()
    devices = status["vpn"]["devices"]
    online = sum(
        1 for d in devices if d["latest_handshake"] and now - d["latest_handshake"] < ONLINE_SECONDS
    )
    recent = sorted(devices, key=lambda d: -d["latest_handshake"])[:RECENT]
    for check in status["health"]:
        check["label"] = CHECKS.get(
            (check["capability"], check["name"]), f"{check['capability']} · {check['name']}"
        )
        if (check["capability"], check["name"]) == ("update", "last update"):
            check["words"] = update_pages.check_words(check["detail"])
    manager = g.user["role"] in ("admin", "installer")
    storage = _storage() if manager else None
    space = (storage or {}).get("space") or {
        "total": status["system"]["disk_total"],
        "free": status["system"]["disk_free"],
    }
    return render_template(
        "dashboard.html",
        status=status,
        online=online,
        recent=recent,
        total=len(devices),
        hardware=call("hardware.status"),
        storage=storage,
        updates=update_pages.summary() if manager else None,
        space=space,
        low=space["free"] < LOW_SPACE * space["total"],
    )


def _storage() -> dict | None:
    """The encrypted storage's state (managers only): the dashboard shows without it."""
    try:
        return call("storage.status")
    except ApplianceError:
        return None

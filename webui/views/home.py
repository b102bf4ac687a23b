"""The dashboard: is the box healthy, who is connected."""

import time

from flask import Blueprint, g, redirect, render_template, url_for

from ..agent import call

bp = Blueprint("home", __name__)
ONLINE_SECONDS = 180  # WireGuard re-handshakes every 2 minutes while traffic flows


@bp.route("/")
def dashboard():
    if g.user is None:
        return redirect(url_for("auth.login"))
    status = call("status")
    now = time.time()
    for d in status["vpn"]["devices"]:
        d["online"] = bool(d["latest_handshake"]) and now - d["latest_handshake"] < ONLINE_SECONDS
    return render_template("dashboard.html", status=status)

"""Logging in and out, and the member's language."""

import re

from flask import Blueprint, g, redirect, render_template, request, session, url_for

from appliance.errors import ApplianceError

from ..agent import call
from ..errors import message
from ..i18n import LANGUAGES

bp = Blueprint("auth", __name__)
SAFE_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9/_.-]*")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if not call("setup.status")["claimed"]:
        return redirect(url_for("setup.claim"))
    error, needs_code = None, False
    if request.method == "POST":
        try:
            result = call("auth.login", name=request.form.get("name", "").strip().lower(),
                          passphrase=request.form.get("passphrase", ""),
                          address=request.remote_addr,
                          otp=request.form.get("otp", "").strip() or None)
        except ApplianceError as err:
            error, needs_code = message(err), err.field in ("otp", "otp_needed")
        else:
            language = session.get("language")
            session.clear()  # a fresh session (and CSRF token) after logging in
            session["token"] = result["session"]
            if language:
                session["language"] = language
            return redirect(url_for("home.dashboard"))
    return render_template("login.html", error=error, needs_code=needs_code,
                           name=request.form.get("name", "")), 401 if error else 200


@bp.route("/logout", methods=["POST"])
def logout():
    if session.get("token"):
        try:
            call("auth.logout", token=session["token"])
        except ApplianceError:
            pass
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/language", methods=["POST"])
def language():
    choice = request.form.get("language")
    if choice in LANGUAGES:
        session["language"] = choice
        if g.user:
            call("account.language", language=choice)
    back = request.form.get("next", "")
    # Only a plain path on this box: "//host" or "/\host" would leave it.
    return redirect(back if SAFE_PATH.fullmatch(back) else url_for("home.dashboard"))

"""Logging in and out, and the member's language."""

import re

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from appliance.errors import ApplianceError, NotFound

from .. import reach
from ..agent import call
from ..errors import form_field, message
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
            result = call(
                "auth.login",
                name=request.form.get("name", "").strip().lower(),
                passphrase=request.form.get("passphrase", ""),
                address=request.remote_addr,
                otp=request.form.get("otp", "").strip() or None,
            )
        except ApplianceError as err:
            error, needs_code = message(err), err.field in ("otp", "otp_needed")
        else:
            _start_session(result["session"])
            return redirect(url_for("home.dashboard"))
    return render_template(
        "login.html", error=error, needs_code=needs_code, name=request.form.get("name", "")
    ), 401 if error else 200


def _start_session(token: str) -> None:
    language = session.get("language")
    session.clear()  # a fresh session (and CSRF token) after logging in
    session["token"] = token
    if language:
        session["language"] = language


@bp.route("/join/<token>", methods=["GET", "POST"])
def join(token: str):
    """An invitation. A GET only shows it, so a messenger's link preview cannot spend it;
    an unknown, used or expired one is a 404 (the NotFound handler's page)."""
    invitation = call("users.invitation", token=token)
    form, errors = request.form, {}
    if request.method == "POST":
        passphrase = form.get("passphrase", "")
        if passphrase != form.get("confirm", ""):
            errors["confirm"] = _("The two passphrases are not the same.")
        else:
            try:
                joined = call(
                    "users.join",
                    token=token,
                    passphrase=passphrase,
                    language=form.get("language") or None,
                )
            except NotFound:
                raise
            except ApplianceError as err:  # a weak passphrase: the invitation still works
                errors[form_field(err) or "form"] = message(err)
            else:
                if not reach.from_home_or_widened():  # no login from here: say what now
                    return render_template("outside.html", joined=joined["name"])
                try:
                    result = call(
                        "auth.login",
                        name=joined["name"],
                        passphrase=passphrase,
                        address=request.remote_addr,
                    )
                except ApplianceError:  # joined all the same: the login page will do
                    return redirect(url_for("auth.login"))
                _start_session(result["session"])
                return redirect(url_for("mail.index"))
    return render_template(
        "join.html", invitation=invitation, form=form, errors=errors, languages=LANGUAGES
    ), 400 if errors else 200


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

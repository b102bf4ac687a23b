"""What admins (and the installer) look after: users, settings, the history."""

from flask import Blueprint, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from appliance.errors import ApplianceError, Forbidden

from ..agent import call
from ..errors import BY_FIELD, form_field, message
from ..i18n import LANGUAGES
from ..qr import qr_svg
from .setup import TIMEZONES

bp = Blueprint("admin", __name__)


@bp.before_request
def managers_only():
    """The agent refuses members anyway; this only spares them a broken page."""
    if g.user is None:
        return redirect(url_for("auth.login"))
    if g.user["role"] not in ("admin", "installer"):
        return render_template("error.html", message=message(Forbidden("forbidden"))), 403
    return None


def _try(action, errors: dict) -> bool:
    try:
        action()
        return True
    except ApplianceError as err:
        errors[form_field(err) or "form"] = message(err)
        return False


@bp.route("/users", methods=["GET", "POST"])
def users():
    errors, form = {}, request.form
    if request.method == "POST" and _try(lambda: call(
            "users.add", name=form.get("name", "").strip().lower(), role=form.get("role", "member"),
            passphrase=form.get("passphrase", ""), language=None), errors):
        return redirect(url_for("admin.users"))
    return render_template("users.html", users=call("users.list"), errors=errors, form=form), \
        400 if errors else 200


@bp.route("/users/invite", methods=["POST"])
def invite():
    """A one-time link with which someone chooses their own passphrase and joins: shown
    here (with its QR code) to be sent or shown to them, never stored by the web UI."""
    form = request.form
    try:
        made = call("users.invite", name=form.get("invite_name", "").strip().lower(),
                    role=form.get("invite_role", "member"))
    except ApplianceError as err:
        field = form_field(err)
        text = (str(BY_FIELD[("invalid", "admin_name")])  # a user name's rules
                if (err.code, field) == ("invalid", "name") else message(err))
        errors = {f"invite_{field if field in ('name', 'role') else 'form'}": text}
        return render_template("users.html", users=call("users.list"), errors=errors,
                               form=form), 400
    url = url_for("auth.join", token=made["token"], _external=True)
    return render_template("invitation.html", invitation=made, url=url,
                           qr=qr_svg(url, _("Invitation for %(name)s", name=made["name"])))


@bp.route("/users/<name>/remove", methods=["POST"])
def remove_user(name: str):
    call("users.remove", name=name)
    return redirect(url_for("admin.users"))


@bp.route("/users/handover", methods=["POST"])
def handover():
    call("users.handover")
    return redirect(url_for("admin.users"))


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    errors, form = {}, request.form
    if request.method == "POST":
        port = form.get("endpoint_port", "").strip()
        host = form.get("endpoint_host", "").strip()
        endpoint = {"host": host, "port": int(port) if port.isdigit() else -1} if host else None
        if _try(lambda: call("box.settings.set", name=form.get("box_name", "").strip(),
                             timezone=form.get("timezone", ""),
                             language=form.get("language", "")), errors) and _try(
                lambda: call("vpn.settings.set", endpoint=endpoint), errors):
            return redirect(url_for("admin.settings", saved=1))
    status = call("status")
    return render_template("settings.html", status=status, vpn=call("vpn.settings.get"),
                           errors=errors, form=form, languages=LANGUAGES, timezones=TIMEZONES,
                           saved=request.args.get("saved")), 400 if errors else 200


@bp.route("/history")
def history():
    return render_template("history.html", revisions=call("config.history", limit=100))


@bp.route("/history/<int:revision>")
def revision(revision: int):
    diff = call("config.diff", a=max(revision - 1, 1), b=revision)
    return render_template("revision.html", revision=revision, diff=diff["diff"])


@bp.route("/history/<int:revision>/restore", methods=["POST"])
def restore(revision: int):
    call("config.rollback", revision=revision)
    return redirect(url_for("admin.history"))

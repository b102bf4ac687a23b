"""The web UI's page for the installer's SSH (managers only): the keys that may log in to
the box's system as root; SSH is on while there is one."""

from ipaddress import ip_network

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext

from appliance.errors import ApplianceError
from webui.access import managers_only
from webui.agent import call
from webui.errors import BY_FIELD, message
from webui.nav import Link

from .schema import MAX_KEYS

bp = Blueprint("ssh", __name__, template_folder="templates")
blueprints = (bp,)
# In the menu (webui/nav.py).
links = (Link("ssh.index", _l("SSH"), 75, managers_only=True),)
bp.before_request(managers_only)

# What a redirect after an SSH form says happened (only these words: never text from the URL).
SSH_DONE = {
    "added": _l("Key added. SSH is on."),
    "removed": _l("Key removed."),
    "off": _l("Key removed. SSH is off: nobody can log in to the box's system."),
}
KEY_REFUSED = _l(
    "That is not a public key the box accepts. Paste the one line of your .pub "
    "file as it is, starting with its type (such as ssh-ed25519), with nothing "
    "before it. RSA keys need at least 2048 bits."
)
PRIVATE_KEY = _l(
    "That is a private key, which must stay on your computer. Paste the public "
    "key instead: the .pub file beside it."
)
KEY_TWICE = _l("That key is already on the list.")
TOO_MANY_KEYS = lazy_ngettext(
    "The box keeps at most %(num)d key: remove it first if it is no longer needed.",
    "The box keeps at most %(num)d keys: remove one that is no longer needed first.",
    MAX_KEYS,
)
NO_KEY_NAME = _l("Give the key a name: its line has no comment to name it by.")


def _key_refused(err: ApplianceError, form) -> tuple[str, str]:
    """The field the agent's refusal of a new key is about, and what to tell the user."""
    if (err.code, err.field) == ("invalid", "name"):
        return "name", str(
            BY_FIELD[("invalid", "name")] if form.get("name", "").strip() else NO_KEY_NAME
        )
    if (err.code, err.field) == ("conflict", "key"):
        full = len(call("ssh.access")["keys"]) >= MAX_KEYS
        return "key", str(TOO_MANY_KEYS if full else KEY_TWICE)
    if err.code == "invalid":
        return "key", str(PRIVATE_KEY if "PRIVATE KEY" in form.get("key", "") else KEY_REFUSED)
    return "form", message(err)


def _box_address() -> str:
    """The box's address in the VPN (the subnet's first), as the Files page gives it."""
    return str(next(ip_network(call("vpn.settings.get")["ipv4_subnet"]).hosts()))


def _ssh_page(errors: dict | None = None, form=None, status: int = 200):
    access, form = call("ssh.access"), form or {}
    key = form.get("key", "")
    return render_template(
        "ssh.html",
        access=access,
        address=_box_address() if access["enabled"] else None,
        errors=errors or {},
        key="" if "PRIVATE KEY" in key else key,
        name=form.get("name", ""),
        done=SSH_DONE.get(request.args.get("done", "")),
    ), status


@bp.route("/ssh", methods=["GET"])
def index():
    return _ssh_page()


@bp.route("/ssh/keys", methods=["POST"])
def add():
    form = request.form
    try:
        call("ssh.key.add", key=form.get("key", ""), name=form.get("name", "").strip() or None)
    except ApplianceError as err:
        field, text = _key_refused(err, form)
        return _ssh_page({field: text}, form, 400)
    return redirect(url_for("ssh.index", done="added"))


@bp.route("/ssh/keys/remove", methods=["POST"])
def remove():
    try:
        left = call("ssh.key.remove", fingerprint=request.form.get("fingerprint", ""))["ssh"]
    except ApplianceError as err:
        return _ssh_page({"remove_form": message(err)}, status=400)
    return redirect(url_for("ssh.index", done="removed" if left["enabled"] else "off"))

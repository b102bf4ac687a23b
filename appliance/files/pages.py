"""The web UI's page for the household's file share (SFTP over the VPN): how a member's
apps connect, their files password; the managers turn the share on or off and say what
becomes of a departed member's folder.

A files password is shown once, in the answer to the form that made it: never in a URL,
a redirect or anything a browser keeps.
"""

from flask import Blueprint, make_response, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from appliance.errors import ApplianceError, Conflict, Forbidden
from webui.access import is_manager, members_only
from webui.agent import call
from webui.errors import message
from webui.nav import Link

bp = Blueprint("files", __name__, url_prefix="/files", template_folder="templates")
blueprints = (bp,)
# In the menu (webui/nav.py).
links = (Link("files.index", _l("Files"), 40),)

# What a redirect after a form says happened (only these words: never text from the URL).
DONE = {
    "on": _l("The file share is on."),
    "off": _l("The file share is off."),
    "saved": _l("Saved."),
}
# The agent's two Conflicts for a new password, told apart by the share's state.
SHARE_OFF = _l("The file share is off: a manager of the box turns it on first.")
NO_ACCOUNT = _l(
    "Your files account is not ready yet: the box's storage must be unlocked "
    "first. Try again once it is."
)


bp.before_request(members_only)


def _closed(connection: dict) -> str | None:
    """Why a share that is on does not answer now ('storage', 'stopped'), if it does not."""
    if not connection["enabled"]:
        return None
    failed = {
        c["name"] for c in call("status")["health"] if c["capability"] == "files" and not c["ok"]
    }
    return "storage" if "storage" in failed else "stopped" if "files" in failed else None


def _page(errors: dict | None = None, status: int = 200):
    connection = call("files.connection")
    return render_template(
        "files.html",
        connection=connection,
        manager=is_manager(),
        closed=_closed(connection),
        errors=errors or {},
        done=DONE.get(request.args.get("done", "")) if request.method == "GET" else None,
    ), status


@bp.route("/", methods=["GET"])
def index():
    return _page()


@bp.route("/password", methods=["POST"])
def password():
    had = call("files.connection")["has_password"]
    try:
        made = call("files.password")
    except Conflict:
        off = not call("files.connection")["enabled"]
        return _page({"password_form": str(SHARE_OFF if off else NO_ACCOUNT)}, 400)
    except ApplianceError as err:
        return _page({"password_form": message(err)}, 400)
    answer = make_response(render_template("files_password.html", made=made, had=had))
    answer.headers["Cache-Control"] = "no-store"  # the password: shown once, kept nowhere
    return answer


@bp.route("/settings", methods=["POST"])
def settings():
    if not is_manager():
        return render_template("error.html", message=message(Forbidden("forbidden"))), 403
    enabled = request.form.get("enabled") == "1"
    try:
        call("files.settings.set", enabled=enabled)
    except ApplianceError as err:
        return _page({"settings_form": message(err)}, 400)
    return redirect(url_for("files.index", done="on" if enabled else "off"))


@bp.route("/departed", methods=["POST"])
def departed():
    """What becomes of a member's folder when they leave: archived or deleted."""
    if not is_manager():
        return render_template("error.html", message=message(Forbidden("forbidden"))), 403
    try:
        enabled = call("files.connection")["enabled"]
        call("files.settings.set", enabled=enabled, departed=request.form.get("departed", ""))
    except ApplianceError as err:
        return _page({"departed_form": message(err)}, 400)
    return redirect(url_for("files.index", done="saved"))

"""The web UI's pages for the people of the box: logging in and out, joining with an
invitation, the member's language (auth); their own account: passphrase and the optional
second factor, TOTP (account); and what managers do with the users: add, invite, remove,
the installer's handover (users)."""

import io
import re

from flask import Blueprint, g, make_response, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from appliance.errors import ApplianceError, NotFound
from appliance.storage.pages import MESSAGES as STORAGE_MESSAGES
from appliance.vpn.export import qr
from webui import reach
from webui.access import managers_only, members_only
from webui.agent import call, call_slowly
from webui.errors import BY_FIELD, attempt, form_field, message
from webui.i18n import LANGUAGES
from webui.nav import Link
from webui.qr import qr_svg

auth = Blueprint("auth", __name__, template_folder="templates")
account = Blueprint("account", __name__, url_prefix="/account", template_folder="templates")
users = Blueprint("users", __name__, template_folder="templates")
blueprints = (auth, account, users)
# In the menu (webui/nav.py).
links = (
    Link("account.index", _l("My account"), 50),
    Link("users.index", _l("Users"), 60, managers_only=True),
)
account.before_request(members_only)
users.before_request(managers_only)

NEED_STORAGE_PASSPHRASE = _l("Give the storage's passphrase to replace the recovery key.")
SAFE_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9/_.-]*")


@auth.route("/login", methods=["GET", "POST"])
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


@auth.route("/join/<token>", methods=["GET", "POST"])
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


@auth.route("/logout", methods=["POST"])
def logout():
    if session.get("token"):
        try:
            call("auth.logout", token=session["token"])
        except ApplianceError:
            pass
    session.clear()
    return redirect(url_for("auth.login"))


@auth.route("/language", methods=["POST"])
def language():
    choice = request.form.get("language")
    if choice in LANGUAGES:
        session["language"] = choice
        if g.user:
            call("account.language", language=choice)
    back = request.form.get("next", "")
    # Only a plain path on this box: "//host" or "/\host" would leave it.
    return redirect(back if SAFE_PATH.fullmatch(back) else url_for("home.dashboard"))


# The member's own account.


def _svg(text: str) -> Markup:
    out = io.BytesIO()
    qr(text).save(out, kind="svg", scale=4, xmldecl=False, svgns=True)
    return Markup(out.getvalue().decode())  # drawn here from the agent's URI: no markup in it


@account.route("/", methods=["GET"], endpoint="index")
def account_page():
    return render_template("account.html", errors={}, saved=request.args.get("saved"))


@account.route("/passphrase", methods=["POST"])
def passphrase():
    errors = {}
    try:
        call(
            "account.passphrase",
            old_passphrase=request.form.get("old_passphrase", ""),
            new_passphrase=request.form.get("new_passphrase", ""),
        )
    except ApplianceError as err:
        errors[form_field(err) or "form"] = message(err)
        return render_template("account.html", errors=errors), 400
    return redirect(url_for("auth.login"))  # every session ends with the old passphrase


@account.route("/totp", methods=["POST"])
def totp_begin():
    uri = call("account.totp.begin")["uri"]
    return render_template(
        "totp.html", qr=_svg(uri), secret=uri.split("secret=")[1].split("&")[0], errors={}
    )


@account.route("/totp/confirm", methods=["POST"])
def totp_confirm():
    try:
        done = call("account.totp.confirm", otp=request.form.get("otp", "").strip())
    except ApplianceError as err:
        return render_template(
            "totp.html", qr=None, secret=None, errors={form_field(err) or "form": message(err)}
        ), 400
    return render_template("recovery.html", codes=done["recovery_codes"])


@account.route("/totp/off", methods=["POST"])
def totp_off():
    try:
        call("account.totp.disable", passphrase=request.form.get("passphrase", ""))
    except ApplianceError as err:
        return render_template("account.html", errors={"passphrase": message(err)}), 400
    return redirect(url_for("account.index", saved=1))


# The users (managers only).


@users.route("/users", methods=["GET", "POST"], endpoint="index")
def user_list():
    errors, form = {}, request.form
    if request.method == "POST" and attempt(
        lambda: call(
            "users.add",
            name=form.get("name", "").strip().lower(),
            role=form.get("role", "member"),
            passphrase=form.get("passphrase", ""),
            language=None,
        ),
        errors,
    ):
        return redirect(url_for("users.index"))
    return _users_page(errors, form)


def _users_page(errors: dict, form, status: int | None = None):
    try:  # the handover asks for the storage's passphrase only on a box that has one
        encrypted = call("storage.status")["volume"] is not None
    except ApplianceError:
        encrypted = False
    return render_template(
        "users.html", users=call("users.list"), errors=errors, form=form, encrypted=encrypted
    ), status or (400 if errors else 200)


@users.route("/users/invite", methods=["POST"])
def invite():
    """A one-time link with which someone chooses their own passphrase and joins: shown
    here (with its QR code) to be sent or shown to them, never stored by the web UI."""
    form = request.form
    try:
        made = call(
            "users.invite",
            name=form.get("invite_name", "").strip().lower(),
            role=form.get("invite_role", "member"),
        )
    except ApplianceError as err:
        field = form_field(err)
        text = (
            str(BY_FIELD[("invalid", "admin_name")])  # a user name's rules
            if (err.code, field) == ("invalid", "name")
            else message(err)
        )
        errors = {f"invite_{field if field in ('name', 'role') else 'form'}": text}
        return _users_page(errors, form)
    url = url_for("auth.join", token=made["token"], _external=True)
    return render_template(
        "invitation.html",
        invitation=made,
        url=url,
        qr=qr_svg(url, _("Invitation for %(name)s", name=made["name"])),
    )


@users.route("/users/<name>/remove", methods=["POST"], endpoint="remove")
def remove_user(name: str):
    call("users.remove", name=name)
    return redirect(url_for("users.index"))


@users.route("/users/handover", methods=["POST"])
def handover():
    """End the installer's access; the page says what was ended, once (it may carry a
    new recovery key: never stored, never cached)."""
    form = request.form
    passphrase = form.get("handover_passphrase", "")
    try:
        done = call_slowly(
            "users.handover",
            storage_passphrase=passphrase or None,
            new_recovery_key=form.get("new_recovery_key") == "1",
            rekey_devices=form.get("rekey_devices") == "1",
        )
    except ApplianceError as err:
        if (err.code, err.field) == ("invalid", "passphrase"):
            text = NEED_STORAGE_PASSPHRASE
        else:
            text = (
                STORAGE_MESSAGES.get((err.code, err.field))
                if err.field in ("key", "passphrase")
                else None
            )
        field = "handover_passphrase" if text or err.field == "passphrase" else "handover_form"
        return _users_page({field: str(text or message(err))}, form)
    answer = make_response(render_template("handover.html", done=done))
    answer.headers["Cache-Control"] = "no-store"
    return answer

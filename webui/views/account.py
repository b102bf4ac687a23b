"""The member's own account: passphrase and the optional second factor (TOTP)."""

from flask import Blueprint, g, redirect, render_template, request, url_for
from markupsafe import Markup

from appliance.errors import ApplianceError
from appliance.vpn.export import qr

from ..agent import call
from ..errors import form_field, message

bp = Blueprint("account", __name__, url_prefix="/account")


def _svg(text: str) -> Markup:
    import io

    out = io.BytesIO()
    qr(text).save(out, kind="svg", scale=4, xmldecl=False, svgns=True)
    return Markup(out.getvalue().decode())  # drawn here from the agent's URI: no markup in it


@bp.before_request
def members_only():
    return redirect(url_for("auth.login")) if g.user is None else None


@bp.route("/", methods=["GET"])
def index():
    return render_template("account.html", errors={}, saved=request.args.get("saved"))


@bp.route("/passphrase", methods=["POST"])
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


@bp.route("/totp", methods=["POST"])
def totp_begin():
    uri = call("account.totp.begin")["uri"]
    return render_template(
        "totp.html", qr=_svg(uri), secret=uri.split("secret=")[1].split("&")[0], errors={}
    )


@bp.route("/totp/confirm", methods=["POST"])
def totp_confirm():
    try:
        done = call("account.totp.confirm", otp=request.form.get("otp", "").strip())
    except ApplianceError as err:
        return render_template(
            "totp.html", qr=None, secret=None, errors={form_field(err) or "form": message(err)}
        ), 400
    return render_template("recovery.html", codes=done["recovery_codes"])


@bp.route("/totp/off", methods=["POST"])
def totp_off():
    try:
        call("account.totp.disable", passphrase=request.form.get("passphrase", ""))
    except ApplianceError as err:
        return render_template("account.html", errors={"passphrase": message(err)}), 400
    return redirect(url_for("account.index", saved=1))

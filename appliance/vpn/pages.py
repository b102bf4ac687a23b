"""The web UI's VPN pages: add a device and show its QR code, download its config,
revoke it; a one-time link opened on the device itself."""

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from appliance.errors import ApplianceError
from webui.access import members_only
from webui.agent import call
from webui.errors import form_field, message
from webui.nav import Link

from .export import qr_svg

bp = Blueprint("devices", __name__, url_prefix="/devices", template_folder="templates")
blueprints = (bp,)
# In the menu (webui/nav.py).
links = (Link("devices.index", _l("Devices"), 20),)
PAGE = 50  # rows a phone screen can take in; a household rarely has more
COLUMNS = ["id", "name", "latest_handshake", "rx_bytes", "tx_bytes"]  # as devices.html reads them


@bp.route("/", methods=["GET", "POST"])
def index():
    # No login check first: the agent refuses these calls without a member's session
    # (then the login page), and says who the member is with the page's call.
    errors = {}
    if request.method == "POST":
        try:
            added = call(
                "vpn.device.add",
                name=request.form.get("name", "").strip(),
                mode=request.form.get("mode", "home"),
            )
        except ApplianceError as err:
            field = form_field(err)  # only the name has its own place on the form
            errors[field if field == "name" else "form"] = message(err)
        else:
            return redirect(url_for("devices.show", device_id=added["device"]["id"]))
    page = min(max(request.args.get("page", 1, type=int), 1), 10**6)
    live = call("vpn.device.live", offset=(page - 1) * PAGE, limit=PAGE, columns=COLUMNS)
    pages = max(1, -(-live["total"] // PAGE))
    return render_template(
        "devices.html",
        devices=live["rows"],
        page=page,
        pages=pages,
        total=live["total"],
        errors=errors,
        form=request.form,
    ), 400 if errors else 200


@bp.route("/<int:device_id>", methods=["GET", "POST"])
def show(device_id: int):
    """The device's QR code; a POST also makes a one-time link for it."""
    if (out := members_only()) is not None:
        return out
    device = call("vpn.device.get", device=device_id)
    link = None
    if request.method == "POST":
        made = call("vpn.device.link", device=device_id)
        link = {
            "url": url_for("devices.one_time", token=made["token"], _external=True),
            "expires": made["expires"],
        }
    qr = error = None
    try:
        config = call("vpn.device.config", device=device_id)
        qr = Markup(qr_svg(config["config"]))  # made here from the agent's text: no markup in it
    except ApplianceError as err:
        error = message(err)
    return render_template("device.html", device=device, qr=qr, error=error, link=link)


@bp.route("/<int:device_id>/config")
def download(device_id: int):
    if (out := members_only()) is not None:
        return out
    config = call("vpn.device.config", device=device_id)
    return Response(
        config["config"],
        mimetype="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{config["file_name"]}"'},
    )


@bp.route("/get/<token>", methods=["GET", "POST"], endpoint="one_time")
def one_time(token: str):
    """A one-time link, opened on the device itself. Nothing is handed out on GET, so a
    messenger's link preview cannot use the link up."""
    if request.method == "GET":
        return render_template("one_time.html")
    try:
        config = call("vpn.device.redeem", token=token)
    except ApplianceError as err:
        return render_template("error.html", message=message(err)), 404
    return Response(
        config["config"],
        mimetype="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{config["file_name"]}"'},
    )


@bp.route("/<int:device_id>/remove", methods=["POST"])
def remove(device_id: int):
    if (out := members_only()) is not None:
        return out
    call("vpn.device.remove", device=device_id)
    return redirect(url_for("devices.index"))

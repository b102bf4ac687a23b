"""First boot: an unclaimed box accepts only this."""

import zoneinfo

from flask import Blueprint, redirect, render_template, request, session, url_for

from appliance.errors import ApplianceError

from ..agent import call
from ..errors import form_field, message
from ..i18n import LANGUAGES

bp = Blueprint("setup", __name__)
TIMEZONES = sorted(
    z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith("Etc/")
)


@bp.route("/setup", methods=["GET", "POST"])
def claim():
    status = call("setup.status")
    if status["claimed"]:
        return redirect(url_for("home.dashboard"))
    form = request.form
    errors = {}
    if request.method == "POST":
        endpoint = None
        if form.get("endpoint_host", "").strip():
            port = form.get("endpoint_port", "51820").strip()
            endpoint = {
                "host": form["endpoint_host"].strip(),
                "port": int(port) if port.isdigit() else -1,
            }
        try:
            result = call(
                "setup.claim",
                code=form.get("code", ""),
                address=request.remote_addr,
                language=form.get("language", ""),
                box_name=form.get("box_name", ""),
                admin_name=form.get("admin_name", ""),
                passphrase=form.get("passphrase", ""),
                timezone=form.get("timezone", ""),
                endpoint=endpoint,
            )
        except ApplianceError as err:
            errors[form_field(err) or "form"] = message(err)
        else:
            session.clear()
            session["token"] = result["session"]
            return redirect(url_for("home.dashboard"))
    return render_template(
        "claim.html", form=form, errors=errors, languages=LANGUAGES, timezones=TIMEZONES
    ), 400 if errors else 200

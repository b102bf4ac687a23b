"""What admins (and the installer) look after of the box itself: its settings and the
history of its configuration."""

from flask import Blueprint, redirect, render_template, request, url_for

from ..access import managers_only
from ..agent import call
from ..errors import attempt
from ..i18n import LANGUAGES
from .setup import TIMEZONES

bp = Blueprint("admin", __name__)

bp.before_request(managers_only)


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    errors, form = {}, request.form
    if request.method == "POST":
        port = form.get("endpoint_port", "").strip()
        host = form.get("endpoint_host", "").strip()
        endpoint = {"host": host, "port": int(port) if port.isdigit() else -1} if host else None
        if (
            attempt(
                lambda: call(
                    "box.settings.set",
                    name=form.get("box_name", "").strip(),
                    timezone=form.get("timezone", ""),
                    language=form.get("language", ""),
                    manage_from_anywhere=form.get("manage_from_anywhere") == "1",
                    **_contacts(form),
                ),
                errors,
            )
            and attempt(
                lambda: call(
                    "vpn.settings.set", endpoint=endpoint, **_numbers(form, "devices_per_member")
                ),
                errors,
            )
            and attempt(lambda: call("config.retention", **_numbers(form, "keep")), errors)
        ):
            return redirect(url_for("admin.settings", saved=1))
    status = call("status")
    return render_template(
        "settings.html",
        status=status,
        keep=call("config.retention")["keep"],
        vpn=call("vpn.settings.get"),
        clock=call("clock.status"),
        errors=errors,
        form=form,
        languages=LANGUAGES,
        timezones=TIMEZONES,
        saved=request.args.get("saved"),
    ), 400 if errors else 200


def _contacts(form) -> dict[str, bool]:
    """The switches of what the box contacts by itself, from a page that showed them (a
    form from before they existed leaves them as they are: unticked is off)."""
    if form.get("contacts") != "1":
        return {}
    return {name: form.get(name) == "1" for name in ("time_sync", "update_check")}


def _numbers(form, *names) -> dict[str, int]:
    """Whole numbers typed in a form, those sent; anything but digits is -1, which the
    agent refuses with the field's range."""
    sent = {name: form[name].strip() for name in names if name in form}
    return {k: int(v) if v.isdigit() and len(v) < 10 else -1 for k, v in sent.items()}


@bp.route("/history")
def history():
    return render_template(
        "history.html",
        revisions=call("config.history", limit=100),
        keep=call("config.retention")["keep"],
    )


@bp.route("/history/<int:revision>/pin", methods=["POST"])
def pin(revision: int):
    call("config.pin", revision=revision, pinned=request.form.get("pinned") == "1")
    return redirect(url_for("admin.history"))


@bp.route("/history/<int:revision>")
def revision(revision: int):
    diff = call("config.diff", a=max(revision - 1, 1), b=revision)
    return render_template("revision.html", revision=revision, diff=diff["diff"])


@bp.route("/history/<int:revision>/restore", methods=["POST"])
def restore(revision: int):
    call("config.rollback", revision=revision)
    return redirect(url_for("admin.history"))

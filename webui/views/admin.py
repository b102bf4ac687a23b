"""What admins (and the installer) look after: users, settings, the history."""

from flask import Blueprint, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance.errors import ApplianceError

from ..access import managers_only
from ..agent import call, call_slowly
from ..errors import BY_FIELD, form_field, message
from ..i18n import LANGUAGES
from ..qr import qr_svg
from .setup import TIMEZONES

bp = Blueprint("admin", __name__)

NEED_STORAGE_PASSPHRASE = _l("Give the storage's passphrase to replace the recovery key.")


bp.before_request(managers_only)


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
    if request.method == "POST" and _try(
        lambda: call(
            "users.add",
            name=form.get("name", "").strip().lower(),
            role=form.get("role", "member"),
            passphrase=form.get("passphrase", ""),
            language=None,
        ),
        errors,
    ):
        return redirect(url_for("admin.users"))
    return _users_page(errors, form)


def _users_page(errors: dict, form, status: int | None = None):
    try:  # the handover asks for the storage's passphrase only on a box that has one
        encrypted = call("storage.status")["volume"] is not None
    except ApplianceError:
        encrypted = False
    return render_template(
        "users.html", users=call("users.list"), errors=errors, form=form, encrypted=encrypted
    ), status or (400 if errors else 200)


@bp.route("/users/invite", methods=["POST"])
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


@bp.route("/users/<name>/remove", methods=["POST"])
def remove_user(name: str):
    call("users.remove", name=name)
    return redirect(url_for("admin.users"))


@bp.route("/users/handover", methods=["POST"])
def handover():
    """End the installer's access; the page says what was ended, once (it may carry a
    new recovery key: never stored, never cached)."""
    from appliance.storage.pages import MESSAGES

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
                MESSAGES.get((err.code, err.field)) if err.field in ("key", "passphrase") else None
            )
        field = "handover_passphrase" if text or err.field == "passphrase" else "handover_form"
        return _users_page({field: str(text or message(err))}, form)
    answer = make_response(render_template("handover.html", done=done))
    answer.headers["Cache-Control"] = "no-store"
    return answer


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    errors, form = {}, request.form
    if request.method == "POST":
        port = form.get("endpoint_port", "").strip()
        host = form.get("endpoint_host", "").strip()
        endpoint = {"host": host, "port": int(port) if port.isdigit() else -1} if host else None
        if (
            _try(
                lambda: call(
                    "box.settings.set",
                    name=form.get("box_name", "").strip(),
                    timezone=form.get("timezone", ""),
                    language=form.get("language", ""),
                    manage_from_anywhere=form.get("manage_from_anywhere") == "1",
                ),
                errors,
            )
            and _try(
                lambda: call(
                    "vpn.settings.set", endpoint=endpoint, **_numbers(form, "devices_per_member")
                ),
                errors,
            )
            and _try(lambda: call("config.retention", **_numbers(form, "keep")), errors)
        ):
            return redirect(url_for("admin.settings", saved=1))
    status = call("status")
    return render_template(
        "settings.html",
        status=status,
        keep=call("config.retention")["keep"],
        vpn=call("vpn.settings.get"),
        errors=errors,
        form=form,
        languages=LANGUAGES,
        timezones=TIMEZONES,
        saved=request.args.get("saved"),
    ), 400 if errors else 200


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

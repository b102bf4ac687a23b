"""The web UI's pages for the household's encrypted storage (managers only): unlock it after every restart, lock
it, its keys, the disks plugged in, and making one of them the storage.

A recovery key is shown once, in the answer to the form that made it: never in a URL,
a redirect or anything a browser keeps. Storage's work is slow on a small board
(argon2id, mkfs, mail and chat stopping or starting): those calls wait minutes.
"""

from flask import Blueprint, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance.errors import ApplianceError
from webui.access import managers_only
from webui.agent import call, call_slowly
from webui.errors import message
from webui.nav import Link

bp = Blueprint("storage", __name__, url_prefix="/storage", template_folder="templates")
blueprints = (bp,)
# In the menu (webui/nav.py).
links = (Link("storage.index", _l("Storage"), 65, managers_only=True),)
CIPHERS = ("aes-xts", "adiantum")

# The agent's English "why" for its cipher, in the manager's language (by the cipher).
WHY = {
    "aes-xts": _l("This box's processor has AES instructions: AES-XTS is fast and strong on it."),
    "adiantum": _l(
        "This box's processor has no AES instructions (a Raspberry Pi 4 has none): "
        "Adiantum is faster on it than AES, and as strong."
    ),
}
SLOTS = {
    "passphrase": _l("the household's passphrase"),
    "recovery key": _l("the recovery key"),
    "USB key": _l("the USB key"),
}
CONTENTS = {
    "empty": _l("Empty."),
    "luks": _l("Holds an encrypted volume."),
    "filesystem": _l("Holds files (a file system)."),
    "partitions": _l("Holds partitions."),
    "unknown data": _l("Holds data the box does not recognise."),
}
# What a redirect after a form says happened (only these words: never text from the URL).
DONE = {
    "unlocked": _l("The storage is unlocked."),
    "locked": _l("The storage is locked."),
    "saved": _l("Saved."),
    "passphrase": _l("The storage's passphrase is changed."),
    "usb_added": _l(
        "The USB key is ready: with the stick plugged in, the box unlocks its "
        "storage when it starts."
    ),
    "usb_removed": _l("The USB key no longer opens the storage."),
}
# The agent's typed errors, by (code, the form field they belong to) or (code, the
# agent's field), before the messages every page shares.
MESSAGES = {
    ("conflict", None): _l("This box has no encrypted storage yet: set up a disk first."),
    ("not_found", "disk"): _l(
        "The storage disk is not plugged in: plug it into the box and try again."
    ),
    ("unauthorized", "key"): _l("That passphrase or recovery key does not open the storage."),
    ("unauthorized", "passphrase"): _l("That is not the storage's passphrase."),
    ("unauthorized", "old"): _l("The current passphrase is wrong."),
    ("invalid", "confirm"): _l(
        "Type the disk's name exactly as it is shown, to say that it may be erased."
    ),
    ("invalid", "cipher"): _l("Choose a cipher from the list."),
    ("not_found", "form"): _l(
        "That disk is not plugged in any more. Plug it in and reload this page."
    ),
    ("conflict", "form"): _l(
        "This disk cannot become the storage: the box runs from it, or the "
        "box already has its storage."
    ),
    ("invalid", "usb_disk"): _l(
        "The box cannot write to that stick: use one formatted as FAT, "
        "exFAT or ext4 (as most sticks come)."
    ),
    ("not_found", "usb_disk"): _l("That USB stick is not plugged in any more."),
    ("invalid", "usb_contents"): _l(
        "Where the key goes, that stick holds a link, a folder or a very large file, which "
        "the box will not use: delete the commonsbox folder on the stick, or use another stick."
    ),
}


bp.before_request(managers_only)


def _error(err: ApplianceError, fields: dict, form: str) -> dict:
    """{the form field to show it beside: the message in the manager's language}."""
    target = fields.get(err.field, form)
    text = MESSAGES.get((err.code, target)) or MESSAGES.get((err.code, err.field)) or message(err)
    return {target: str(text)}


def _usable_sticks(disks: list) -> list:
    """USB sticks a key may go on: with files on them (the key is one more), neither the
    storage nor what the box runs from."""
    return [
        d
        for d in disks
        if d["usb"]
        and not d["is_storage"]
        and not d["system"]
        and d["contents"] in ("filesystem", "partitions")
    ]


def _page(errors: dict | None = None, status: int = 200):
    storage, disks = call("storage.status"), call("storage.disks")
    volume = storage["volume"]
    slots = [str(SLOTS.get(name, name)) for name in (volume or {}).get("key_slots", {})]
    return render_template(
        "storage.html",
        storage=storage,
        volume=volume,
        disks=disks,
        slots=slots,
        sticks=_usable_sticks(disks),
        why=WHY.get(storage["suggested_cipher"], storage["why"]),
        contents=CONTENTS,
        errors=errors or {},
        done=DONE.get(request.args.get("done", "")) if request.method == "GET" else None,
    ), status


def _after(method: str, done: str, fields: dict, form: str, **params):
    """Run a storage action; back to the page saying it was done, or with the error."""
    try:
        call_slowly(method, **params)
    except ApplianceError as err:
        return _page(_error(err, fields, form), 400)
    return redirect(url_for("storage.index", done=done))


@bp.route("/", methods=["GET"])
def index():
    return _page()


@bp.route("/unlock", methods=["POST"])
def unlock():
    return _after(
        "storage.unlock", "unlocked", {"key": "key"}, "unlock_form", key=request.form.get("key", "")
    )


@bp.route("/lock", methods=["POST"])
def lock():
    return _after("storage.lock", "locked", {}, "lock_form")


@bp.route("/passphrase", methods=["POST"])
def passphrase():
    form = request.form
    if form.get("new", "") != form.get("new2", ""):
        return _page({"new2": _("The two passphrases are not the same.")}, 400)
    return _after(
        "storage.passphrase",
        "passphrase",
        {"key": "old", "passphrase": "new"},
        "passphrase_form",
        old=form.get("old", ""),
        new=form.get("new", ""),
    )


@bp.route("/recovery-key", methods=["POST"])
def recovery_key():
    try:
        made = call_slowly("storage.recovery_key", passphrase=request.form.get("rk_passphrase", ""))
    except ApplianceError as err:
        return _page(
            _error(err, {"passphrase": "rk_passphrase", "key": "rk_passphrase"}, "recovery_form"),
            400,
        )
    return _recovery_key(made["recovery_key"], new=True)


@bp.route("/usb-key", methods=["POST"])
def usb_key_add():
    form = request.form
    return _after(
        "storage.usb_key.add",
        "usb_added",
        {"disk": "usb_disk", "passphrase": "usb_passphrase", "key": "usb_passphrase"},
        "usb_form",
        disk=form.get("usb_disk", ""),
        passphrase=form.get("usb_passphrase", ""),
    )


@bp.route("/usb-key/remove", methods=["POST"])
def usb_key_remove():
    return _after(
        "storage.usb_key.remove",
        "usb_removed",
        {"passphrase": "usb_remove_passphrase", "key": "usb_remove_passphrase"},
        "usb_remove_form",
        passphrase=request.form.get("usb_remove_passphrase", ""),
    )


@bp.route("/settings", methods=["POST"])
def settings():
    return _after(
        "storage.settings.set",
        "saved",
        {},
        "unencrypted_form",
        allow_unencrypted="allow_unencrypted" in request.form,
    )


@bp.route("/setup/<name>", methods=["GET", "POST"])
def setup(name: str):
    """Erase the disk NAME and make it the household's storage: its name typed back.
    A disk pulled out meanwhile is the agent's to refuse: its answer is shown."""
    storage = call("storage.status")
    if storage["volume"] is not None:
        return redirect(url_for("storage.index"))
    disk = next((d for d in call("storage.disks") if d["name"] == name), None)
    errors, form = {}, request.form
    if disk is not None and disk["system"]:
        errors["form"] = str(MESSAGES[("conflict", "form")])
    elif request.method == "GET" and disk is None:
        errors["form"] = str(MESSAGES[("not_found", "form")])
    elif request.method == "POST":
        if disk is not None and form.get("passphrase", "") != form.get("passphrase2", ""):
            errors["passphrase2"] = _("The two passphrases are not the same.")
        else:
            try:
                made = call_slowly(
                    "storage.format",
                    disk=name,
                    confirm=form.get("confirm", ""),
                    passphrase=form.get("passphrase", ""),
                    cipher=form.get("cipher") or None,
                )
            except ApplianceError as err:
                errors = _error(
                    err,
                    {
                        "disk": "form",
                        "confirm": "confirm",
                        "passphrase": "passphrase",
                        "cipher": "cipher",
                    },
                    "form",
                )
            else:
                return _recovery_key(made["recovery_key"], new=False)
    status = 200 if not errors else 404 if disk is None and request.method == "GET" else 400
    return render_template(
        "storage_setup.html",
        disk=disk,
        name=name,
        storage=storage,
        ciphers=CIPHERS,
        cipher=form.get("cipher", storage["suggested_cipher"]),
        why=WHY.get(storage["suggested_cipher"], storage["why"]),
        contents=CONTENTS,
        errors=errors,
        confirm=form.get("confirm", ""),
    ), status


def _recovery_key(key: str, new: bool):
    answer = make_response(render_template("storage_key.html", key=key, new=new))
    answer.headers["Cache-Control"] = "no-store"  # the key: shown once, kept nowhere
    return answer

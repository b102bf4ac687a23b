"""The web UI's page for updates (managers only): the version the box runs, a trial in
progress or a version waiting for a restart, what came of the last updates in plain words,
the changes a fallback undid, the feed's last check; install from a feed or a USB stick,
and go back to the previous version once the manager has read what that may undo. Each
of those restarts the box, and the page says so before and after.

The health gate records what did not work in English (gate.missing, gate.run) and the
capability's health check repeats it: ``lost_words`` and ``check_words`` put each shape
they write into the manager's language; anything else is shown as it is, set apart.
"""

import re
import time

from flask import Blueprint, g, redirect, render_template, request, url_for
from flask_babel import LazyString, format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from appliance.errors import ApplianceError, Invalid
from webui.access import managers_only
from webui.agent import call, call_slowly
from webui.errors import message
from webui.nav import Link
from webui.uploading import uploaded_name

from . import upload
from .feed import Version

bp = Blueprint("update", __name__, url_prefix="/update", template_folder="templates")
blueprints = (bp,)
# In the menu (webui/nav.py).
links = (Link("update.index", _l("Updates"), 80, managers_only=True),)
bp.before_request(managers_only)

RECENT_FALLBACK = 30 * 86400  # seconds the dashboard names what a fallback undid

# What a redirect after a form says happened (only these words: never text from the URL).
DONE = {
    "installing": _l(
        "The update is installed. The box is restarting to try it: these pages come back "
        "in a few minutes."
    ),
    "nothing": _l("The feed offers nothing newer than the version this box runs."),
    "no_stick": _l("No USB stick plugged into the box holds a newer update."),
    "going_back": _l(
        "The box is restarting into the previous version: these pages come back in a few minutes."
    ),
}
# The agent's refusals, by (code, field): the feed's checks (feed.py), its fetch
# (fetch.py), the stick (stick.py), the service (service.py, api.py).
MESSAGES: dict[tuple[str, str | None], LazyString] = {
    ("invalid", "update_url"): _l(
        "That is not an update feed's address: it starts with https:// and names a folder, "
        "like https://updates.example.org/commonsbox/."
    ),
    ("system", "update_url"): _l(
        "The box could not fetch the feed from that address. Check the address, and that "
        "the box can reach it."
    ),
    ("invalid", "update_signature"): _l(
        "The feed's signature does not match: it was changed after it was signed, or "
        "signed by someone this box does not trust."
    ),
    ("invalid", "update_expires"): _l(
        "The feed has expired. The box refuses an old feed, as it could hide newer "
        "updates: whoever publishes it must sign it again."
    ),
    ("invalid", "update_board"): _l("The feed has no update for this kind of box."),
    ("invalid", "update_version"): _l(
        "The update is not newer than the version this box runs. The box does not go back "
        "to an older version this way, as that could bring back security holes that were "
        "fixed."
    ),
    ("invalid", "update_bundle"): _l(
        "The update's file is not the one its signed list names (damaged or tampered "
        "with), or the box's installer refused it."
    ),
    ("invalid", "update_feed"): _l("That address does not hold an update feed this box can read."),
    ("invalid", "update_stick"): _l(
        "The update on the USB stick cannot be used: its folder holds a link, a special "
        "file or an incomplete copy. Copy the whole feed folder onto the stick again, or "
        "use another stick."
    ),
    ("invalid", "update_upload"): _l("The box could not read the uploaded file. Upload it again."),
    ("invalid", "update_key"): _l(
        "This box has no key to check an update's signature, so it installs no updates."
    ),
    ("invalid", "update_trial"): _l(
        "The box is trying an update now: wait until it is kept or the previous version is "
        "back, then try again."
    ),
    ("invalid", "update_previous"): _l("There is no earlier version on this box to go back to."),
}
REFUSED = {  # an update looked at and refused: said to have left nothing behind
    "update_signature",
    "update_expires",
    "update_board",
    "update_version",
    "update_bundle",
    "update_feed",
    "update_stick",
    "update_upload",
}
NOTHING_INSTALLED = _l("Nothing was installed.")
CHOOSE_FILE = _l("Choose the update's file (it ends in .raucb) first.")
# The other stores a fallback put back (fallback.changed), by kind.
STORES = {
    "secrets": _l("passwords and keys"),
    "runtime": _l("sign-ins and preferences"),
}


def refusal(err: ApplianceError) -> str:
    """The agent's refusal of an update or of going back, in the manager's language."""
    text = MESSAGES.get((err.code, err.field))
    if text is None:
        return message(err)
    return f"{text} {NOTHING_INSTALLED}" if err.field in REFUSED else str(text)


def lost_words(text: str) -> Markup:
    """One thing the gate found not working (gate.missing, gate.run), in words."""
    from webui.views.home import CHECKS  # the dashboard's names of checks (it reads this module)

    if text.startswith("health check failing: "):
        capability, _sep, name = text.removeprefix("health check failing: ").partition(": ")
        label = CHECKS.get((capability, name), f"{capability} · {name}")
        return escape(_("A check failed: %(check)s", check=str(label)))
    if text.startswith("not running: "):
        unit = Markup('<span class="ltr">%s</span>') % text.removeprefix("not running: ")
        return Markup(escape(_("Did not run again: %(unit)s"))) % {"unit": unit}
    if text == "the web UI does not answer":
        return escape(_("The web pages did not answer."))
    if text.startswith("the agent does not answer"):
        return escape(_("The box's agent did not answer."))
    if text == "the new version did not start":
        return escape(_("The new version did not start."))
    return Markup("<bdi>%s</bdi>") % text


def outcome(entry: dict) -> str:
    """What came of one update (the record's history), in a sentence."""
    new, old, what = entry.get("version"), entry.get("from"), entry.get("outcome")
    if what == "committed":
        if old is None:
            return _("Version %(new)s was kept.", new=new)
        if _older(new, old):
            return _("Back from version %(old)s to %(new)s: kept.", old=old, new=new)
        return _("From version %(old)s to %(new)s: kept.", old=old, new=new)
    if what == "rolled back":
        if old is None:
            return _(
                "Version %(new)s was tried and not kept: the box went back to the version before.",
                new=new,
            )
        return _(
            "Version %(new)s was tried and not kept: the box went back to version %(old)s.",
            new=new,
            old=old,
        )
    if what == "fell back":
        if old is None:
            return _(
                "Version %(new)s did not start: the box went back to the version before by itself.",
                new=new,
            )
        return _(
            "Version %(new)s did not start: the box went back to version %(old)s by itself.",
            new=new,
            old=old,
        )
    return f"{old} → {new}: {what}"


# The capability's failing check (capability.py): "version V OUTCOME: what; did; not work".
_CHECK = re.compile(r"version (\S+) (rolled back|fell back): (.*)", re.S)


def check_words(detail: str) -> Markup | None:
    """The dashboard's words for the capability's failing "last update" check; None if
    DETAIL is not the shape the capability writes."""
    found = _CHECK.fullmatch(detail)
    if found is None:
        return None
    version, what, lost = found.groups()
    said = escape(outcome({"version": version, "outcome": what}))
    if what != "rolled back":
        return said
    listed = Markup("; ").join(lost_words(x) for x in lost.split("; "))
    return said + Markup(" ") + Markup(escape(_("What did not work: %(what)s"))) % {"what": listed}


def worded(status: dict) -> dict:
    """update.status with its words: each outcome's sentence and what did not work, the
    version's date, the fallbacks of the last days."""
    for entry in status["history"]:
        entry["words"] = outcome(entry)
        entry["lost_words"] = (
            [lost_words(x) for x in entry.get("lost") or []]
            if entry.get("outcome") == "rolled back"
            else []
        )
    status["last"] = status["history"][0] if status["history"] else None
    status["released"] = _released(status["version"])
    now = time.time()
    for report in status.get("fallbacks", []):
        report["stores"] = _stores(report.get("changed") or {})
        report["recent"] = now - report.get("at", 0) < RECENT_FALLBACK
    return status


def summary() -> dict | None:
    """What the dashboard says of updates (managers); None if the agent cannot say."""
    try:
        return worded(call("update.status"))
    except ApplianceError:
        return None


def render(status: dict, errors: dict | None = None, code: int = 200, **shown) -> tuple[str, int]:
    return render_template("update.html", status=worded(status), errors=errors or {}, **shown), code


@bp.route("/", methods=["GET"])
def index():
    return render(call("update.status"), done=DONE.get(request.args.get("done", "")))


@bp.route("/feed", methods=["POST"])
def from_feed():
    url = request.form.get("url", "").strip()
    if not url.startswith("https://"):  # the agent would take it for a file on the box
        errors = {"url": str(MESSAGES[("invalid", "update_url")])}
        return render(call("update.status"), errors, 400, url=url)
    try:
        done = call_slowly("update.install", source=url)
    except ApplianceError as err:
        return _refused(err, "url", url=url)
    return redirect(url_for("update.index", done="installing" if done["slot"] else "nothing"))


@bp.route("/stick", methods=["POST"])
def from_stick():
    try:
        done = call_slowly("update.install_stick")
    except ApplianceError as err:
        return _refused(err, "stick_form")
    return redirect(url_for("update.index", done="installing" if done["slot"] else "no_stick"))


@bp.route("/upload", methods=["POST"])
def from_upload():
    sent = request.files.get("bundle")
    if sent is None or not sent.filename or not g.get("uploading"):
        return render(call("update.status"), {"upload_form": str(CHOOSE_FILE)}, 400)
    sent.stream.flush()
    try:
        call_slowly("update.install_upload", name=uploaded_name(sent.stream))
    except ApplianceError as err:
        return _refused(err, "upload_form")
    return redirect(url_for("update.index", done="installing"))


from_upload.max_content_length = upload.MAX_BYTES  # type: ignore[attr-defined]


@bp.route("/rollback", methods=["GET", "POST"])
def rollback():
    """Going back, once the manager has read what it may undo; the box restarts."""
    status = call("update.status")
    if request.method == "GET":
        if not status["previous"]:
            return redirect(url_for("update.index"))
        return render_template("update_rollback.html", status=status)
    try:
        call_slowly("update.rollback")
    except ApplianceError as err:
        return render_template(
            "update_rollback.html", status=status, error=refusal(err), detail=err.message
        ), _code(err)
    return redirect(url_for("update.index", done="going_back"))


def _refused(err: ApplianceError, field: str, **shown):
    """The page again, with the refusal beside the form it answers and the agent's own
    words for whoever has to fix it."""
    return render(
        call("update.status"), {field: refusal(err)}, _code(err), detail=err.message, **shown
    )


def _code(err: ApplianceError) -> int:
    return 400 if err.code == "invalid" else 503


def _older(a: str | None, b: str | None) -> bool:
    try:
        return Version.parse(a) < Version.parse(b)
    except Invalid:
        return False


def _released(version: str) -> str | None:
    try:
        return format_date(Version.parse(version).built_on, "long")
    except Invalid:
        return None


def _stores(changed: dict) -> list[str]:
    return [str(STORES.get(kind, kind)) for kind in sorted(changed)]

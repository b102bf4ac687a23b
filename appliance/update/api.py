"""The updates' API methods: what runs and how the last update went, install a bundle
(a file on the box, the newest from the feed at an https:// address, or the one on a USB
stick plugged into the box), go back."""

import json
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

from ..accounts.service import Caller
from ..api.methods import (
    HARDWARE,
    OPT_INT,
    OPT_TEXT,
    REQUIRED,
    TEXT,
    WHY,
    change,
    method,
    reason,
)
from ..box import Box
from ..errors import Invalid
from ..validate import UNSET
from . import boot, feed, fetch, record, state, stick, upload
from .schema import UpdateSettings, in_window
from .service import KEYRING, Updates

UPDATES = Updates()
DAILY = 20 * 3600  # a check at most this often (the window is hours long; the timer hourly)
KEYS = Path("/usr/lib/commonsbox/update-feed.pub")  # the feed's signing keys, one per line


def rooted(root: Path) -> None:
    """An agent under another root than / (the lab gives each box its own) keeps its
    update record, and finds its release, update key and the feed's keys, under it."""
    global UPDATES, KEYS
    if root == Path("/"):
        return
    record.DIR, record.RELEASE, KEYS = (
        root / p.relative_to("/") for p in (record.DIR, record.RELEASE, KEYS)
    )
    release = root / boot.RELEASE.relative_to("/")
    UPDATES = Updates(lambda: boot.for_this_box(release), keyring=root / KEYRING.relative_to("/"))


@method("update.status", hardware=True)
def update_status(box: Box, caller: Caller):
    """With the changes the latest fallback undid (who made them and why: not for the
    hardware service's display)."""
    found = UPDATES.status()
    return found if caller is HARDWARE else {**found, "fallbacks": state.reports(box.paths)}


def _restart_soon() -> None:
    threading.Thread(target=UPDATES.reboot, name="update-reboot", daemon=True).start()


def _install(box: Box, bundle: Path, reboot: str, gate_minutes: int | None) -> dict:
    """BUNDLE written into the slot that is not running and its trial armed; then, unless
    REBOOT is "no", the restart into it (in a moment: the answer goes out first)."""
    done = UPDATES.install(bundle, box.status(), gate_minutes)
    if reboot == "yes":
        _restart_soon()
    return done


@method(
    "update.install",
    source=(TEXT, REQUIRED),
    reboot=(OPT_TEXT, "yes"),
    gate_minutes=(OPT_INT, None),
)
def update_install(box: Box, caller: Caller, source, reboot, gate_minutes):
    """SOURCE: a bundle's path on the box, or a feed's https:// address. GATE_MINUTES:
    how long the new version may take to become healthy (default: the gate's)."""
    _check_gate(gate_minutes)
    if source.startswith("https://"):
        return _install_from_feed(box, source, reboot, gate_minutes)
    path = Path(source)
    if not path.is_absolute() or not path.is_file():
        raise Invalid(f"no bundle at {source} (give a file's full path on the box)", "source")
    return _install(box, path, reboot, gate_minutes)


def _install_from_feed(box: Box, url: str, reboot: str, gate_minutes: int | None):
    chosen = _newest(url)
    if chosen is None:
        return _nothing_newer()
    with _scratch() as tmp:
        bundle = Path(tmp, chosen.file)
        fetch.fetch_bundle(url, chosen, bundle)
        return _install(box, bundle, reboot, gate_minutes)


@method("update.install_stick", reboot=(OPT_TEXT, "yes"), gate_minutes=(OPT_INT, None))
def update_install_stick(box: Box, caller: Caller, reboot, gate_minutes):
    """The newer update on a USB stick plugged into the box (a feed folder copied into
    commonsbox/update/ on it), copied off checked, then installed as update.install does."""
    _check_gate(gate_minutes)
    keys = _keys()
    with _scratch() as tmp:
        chosen = stick.from_sticks(
            box.system,
            box.storage.disks(),
            keys,
            record.running_version(),
            _board(),
            Path(tmp, "from-stick.raucb"),
        )
        if chosen is None:
            return _nothing_newer()
        return _install(box, Path(tmp, "from-stick.raucb"), reboot, gate_minutes)


@method(
    "update.install_upload",
    name=(TEXT, REQUIRED),
    reboot=(OPT_TEXT, "yes"),
    gate_minutes=(OPT_INT, None),
)
def update_install_upload(box: Box, caller: Caller, name, reboot, gate_minutes):
    """The bundle a manager uploaded on the web UI (NAME, in the web UI's uploads folder),
    copied off, then installed as update.install does."""
    _check_gate(gate_minutes)
    with _scratch() as tmp:
        copy = Path(tmp, "uploaded.raucb")
        upload.copy_out(box.paths.webui_state / "uploads", name, copy)
        return _install(box, copy, reboot, gate_minutes)


def _check_gate(gate_minutes: int | None) -> None:
    if gate_minutes is not None and not 1 <= gate_minutes <= 120:
        raise Invalid("the gate waits between 1 and 120 minutes", "gate_minutes")


def _nothing_newer() -> dict:
    return {"version": record.running_version(), "slot": None, "reboot": False}


def _scratch() -> tempfile.TemporaryDirectory:
    """A folder for a bundle while it is checked and installed, on the data partition."""
    record.DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    return tempfile.TemporaryDirectory(dir=record.DIR)


@method("update.check", url=(TEXT, REQUIRED))
def update_check(box: Box, caller: Caller, url):
    """What the feed at URL offers this box (nothing is installed)."""
    chosen = _newest(url)
    return {"found": str(chosen.version) if chosen else None}


@method("update.settings.set", feed=(OPT_TEXT, UNSET), window=(OPT_TEXT, UNSET), **WHY)
def update_settings_set(box: Box, caller: Caller, feed, window, why):
    """FEED: the https:// address the box checks once a day (empty: none); WINDOW: the
    hours it may install and restart in (HH:MM-HH:MM, the box's time)."""

    def make(d):
        s = d.update
        found = UpdateSettings.from_json(
            {
                "feed": s.feed if feed is UNSET else feed,
                "window": s.window if window is UNSET else window,
            }
        )
        return d.replace(update=found)

    return change(box, caller.who, reason(why, "change where and when the box updates"), make)


@method("update.auto", access="root")
def update_auto(box: Box, caller: Caller):
    """The daily check (commonsbox-update-check.timer, hourly): in the household's window,
    at most once a day, install the feed's newest and restart."""
    desired = box.head()[1]
    if not desired.box.update_check:
        return {"skipped": "the household turned the update check off"}
    if desired.update.feed is None:
        return {"skipped": "no feed address is set"}
    if not in_window(desired.update.window, datetime.now().time()):
        return {"skipped": f"outside the window {desired.update.window}"}
    last = (record.read().get("last_check") or {}).get("at", 0)
    if _now().timestamp() - last < DAILY:
        return {"skipped": "checked within the last day"}
    return _install_from_feed(box, desired.update.feed, "yes", None)


@method("update.rollback")
def update_rollback(box: Box, caller: Caller):
    done = UPDATES.rollback(box.status())
    _restart_soon()
    return done


def _keys() -> list[str]:
    keys = KEYS.read_text().split() if KEYS.is_file() else []
    if not keys:
        raise Invalid(
            "this box was built without the feed's key: it takes no updates", "update_key"
        )
    return keys


def _newest(url: str) -> feed.Bundle | None:
    keys = _keys()
    if not url.startswith("https://"):
        raise Invalid("a feed's address starts with https://", "url")
    data, sig = fetch.fetch_feed(url)
    chosen = feed.choose(data, sig, keys, record.running_version(), _board(), _now())
    record.checked({"url": url, "found": str(chosen.version) if chosen else None})
    return chosen


def _board() -> str:
    return json.loads(record.RELEASE.read_text())["board"]


def _now() -> datetime:
    return datetime.now(UTC)

"""Installing an update into the other slot, going back to the previous version, and what
the box says about both. The slot switch is the board's (boot/), the writing RAUC's."""

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import Invalid, SystemFailure, UpdateRefused
from . import gate, record
from .boot import BootBackend, BootError, for_this_box, other
from .feed import Version

KEYRING = Path("/etc/rauc/keyring.pem")
# What the gate expects to run again after an update, if it ran before (systemctl names),
# and whether each waits for the encrypted storage.
UNITS = {
    "commonsbox-agent.service": False,
    "commonsbox-webui.service": False,
    "commonsbox-ssh.service": False,
    "commonsbox-mailfilter.service": True,
    "commonsbox-files.service": True,
    "postfix.service": True,
    "dovecot.service": True,
    "prosody.service": True,
    "opendkim.service": True,
}


def rauc(*args: str, timeout: float = 3600) -> str:
    done = subprocess.run(
        ["rauc", *args], capture_output=True, text=True, check=False, timeout=timeout
    )
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        raise UpdateRefused(lines[-1] if lines else "RAUC refused the bundle", "update_bundle")
    return done.stdout


class Updates:
    def __init__(
        self,
        backend: Callable[[], BootBackend] = for_this_box,
        run_rauc: Callable[..., str] = rauc,
        keyring: Path = KEYRING,
    ):
        self._backend = backend
        self._rauc = run_rauc
        self.keyring = keyring

    def status(self) -> dict:
        data = record.read()
        found = {
            "version": record.running_version(),
            "takes_updates": self.keyring.is_file(),
            "trial": data.get("trial"),
            "last": (data.get("history") or [None])[0],
            "history": data.get("history", []),
            "previous": _previous(data),
            "last_check": data.get("last_check"),
        }
        try:
            b = self._backend()
            found.update(booted=b.booted(), primary=b.primary(), in_trial=b.is_trial())
        except BootError as err:
            found.update(booted=None, primary=None, in_trial=False, boot_error=err.message)
        return found

    def install(self, bundle: Path, box_status: dict, gate_minutes: int | None = None) -> dict:
        """Write BUNDLE into the slot not running and arm its trial; the caller reboots.
        GATE_MINUTES: how long the new version may take to become healthy."""
        if not self.keyring.is_file():
            raise Invalid(
                "this box was built without an update key: it takes no updates", "update_key"
            )
        backend = self._backend()
        if backend.is_trial():
            raise Invalid(
                "the box is trying an update now: it must be kept or rolled back first",
                "update_trial",
            )
        info = json.loads(self._rauc("info", "--output-format=json", str(bundle)))
        version = Version.parse(info.get("version"))
        running = record.running_version()
        if running != "unknown" and version <= Version.parse(running):
            raise UpdateRefused(
                f"refusing to go back: the bundle is version {version}, not newer than "
                f"the {running} this box runs",
                "update_version",
            )
        before = gate.before_update(box_status, UNITS)
        self._rauc("install", str(bundle))  # checks signature and board; arms the trial
        slot = other(backend.booted())
        record.armed(slot, str(version), before, gate_minutes and gate_minutes * 60.0)
        return {"version": str(version), "slot": slot, "reboot": True}

    def rollback(self, box_status: dict) -> dict:
        """Try the other slot (the version before the last update) once; kept if healthy."""
        backend = self._backend()
        if backend.is_trial():
            raise Invalid("the box is trying an update now: restart it to go back", "update_trial")
        slot = other(backend.booted())
        previous = _previous(record.read())
        if previous is None:
            raise Invalid(
                "there is no earlier version on this box to go back to", "update_previous"
            )
        backend.set_primary(slot)
        record.armed(slot, previous, gate.before_update(box_status, UNITS))
        return {"version": previous, "slot": slot, "reboot": True}

    def reboot(self) -> None:
        time.sleep(1)  # the answer reaches the caller first
        try:
            self._backend().reboot()
        except (BootError, subprocess.CalledProcessError) as err:
            raise SystemFailure(f"the box could not restart: {err}") from err


def _previous(data: dict) -> str | None:
    """The version the other slot holds, if the box ran it: the one the last update came
    from, if that update was kept. After one that was not, the other slot holds the version
    that failed; while a trial is armed, the version installed."""
    history = data.get("history") or []
    if data.get("trial") or not history or history[0].get("outcome") != "committed":
        return None
    return history[0].get("from")

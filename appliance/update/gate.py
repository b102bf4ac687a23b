"""The health gate: a new slot is kept only when the box works on it.

Run at every boot by its own unit (commonsbox-update-gate.service), apart from the agent,
so that an agent that never starts still ends the trial. On the trial boot of a slot it
waits, up to a deadline, for what the household had before the update to work again:

    the agent answers            its status over the socket
    the same health checks pass  each check that passed when the update was installed
    the same services run        each unit that was active then is active again
    the web UI answers           over HTTPS on the box itself
    the VPN is up                its interface (a health check of the VPN capability)

Then it commits the slot (RAUC's mark-good, which calls the boot backend); otherwise it
gives the slot up (mark-bad) and reboots, and the bootloader boots the old slot. On any
boot it also notices a trial that never reached it (a kernel that panicked, a hang the
watchdog ended): the old slot is running while the record says a trial was armed. Each
outcome is written to the update record for the dashboard.
"""

import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from ..api.client import Client
from ..errors import ApplianceError
from ..paths import DEFAULT_SOCKET
from . import record
from .boot import BootBackend, BootError, for_this_box

DEADLINE = 15 * 60.0  # seconds from the gate's start; a trial under emulation is slow
WEBUI = "https://127.0.0.1/"


@dataclass
class Probe:
    """What the gate asks of the box; each part injectable for tests."""

    status: Callable[[], dict] = lambda: Client(DEFAULT_SOCKET, timeout=20).call("status")
    active_units: Callable[[list[str]], set[str]] = field(default=lambda units: active(units))
    webui_answers: Callable[[], bool] = field(default=lambda: webui_answers(WEBUI))


def active(units: list[str]) -> set[str]:
    if not units:
        return set()
    out = subprocess.run(
        ["systemctl", "is-active", *units], capture_output=True, text=True, check=False
    ).stdout.split()
    return {u for u, state in zip(units, out, strict=False) if state == "active"}


def webui_answers(url: str) -> bool:
    """Any HTTP answer will do (the box's certificate is its own: not checked here)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        urllib.request.urlopen(url, timeout=10, context=context).close()
    except urllib.error.HTTPError as err:
        return err.code < 500
    except OSError:
        return False
    return True


def missing(before: dict, probe: Probe) -> list[str]:
    """What of BEFORE (the record made at install) does not work now; [] when all does.
    What keeps its data on the encrypted storage is judged only once the storage is
    unlocked: after a restart it waits for the household's passphrase (or USB key), and
    an update at 03:00 must not be rolled back for that."""
    try:
        status = probe.status()
    except ApplianceError as err:
        return [f"the agent does not answer ({err.message})"]
    passing = {f"{c['capability']}: {c['name']}" for c in status.get("health", []) if c["ok"]}
    checks, units = list(before.get("checks", [])), list(before.get("units", []))
    if UNLOCKED in passing or UNLOCKED not in before.get("storage_checks", []):
        checks += before.get("storage_checks", [])
        units += before.get("storage_units", [])
    lost = [f"health check failing: {name}" for name in checks if name not in passing]
    lost += [f"not running: {u}" for u in sorted(set(units) - probe.active_units(units))]
    if not probe.webui_answers():
        lost.append("the web UI does not answer")
    return lost


UNLOCKED = "storage: encryption"


def before_update(status: dict, units: dict[str, bool]) -> dict:
    """What the gate will ask of the new slot: taken from the running box at install.
    UNITS: each unit the box may run -> whether it needs the encrypted storage."""
    from ..capabilities import CAPABILITIES

    on_storage = {c.name for c in CAPABILITIES if c.uses_storage}
    ok = sorted(f"{c['capability']}: {c['name']}" for c in status["health"] if c["ok"])
    stored = [c for c in ok if c == UNLOCKED or c.split(":")[0] in on_storage]
    running = active(sorted(units))
    return {
        "checks": [c for c in ok if c not in stored],
        "storage_checks": stored,
        "units": sorted(u for u in running if not units[u]),
        "storage_units": sorted(u for u in running if units[u]),
    }


def run(
    backend: BootBackend,
    probe: Probe,
    log: Callable[[str], None] = print,
    deadline: float = DEADLINE,
    poll: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rauc: Callable[[str], None] = lambda verb: rauc_mark(verb),
) -> str:
    """One boot's gate; returns what happened ("committed", "rolled back", "fell back",
    "steady")."""
    booted = backend.booted()
    trial = record.read().get("trial")
    if not backend.is_trial():
        if trial and trial.get("slot") == booted:  # committed; the record was not yet told
            record.finished(trial, "committed", [])
            return "committed"
        if trial:
            # Armed, but the old slot runs: the trial ended before the gate could judge it
            # (the Pi's autoboot.txt may still offer it: disarmed).
            backend.mark_bad(trial["slot"])
            record.finished(trial, "fell back", ["the new version did not start"])
            log(f"update to {trial['version']} did not start; back on the old version")
            return "fell back"
        return "steady"
    if not trial or trial.get("slot") != booted:
        trial = {"slot": booted, "version": record.running_version(), "before": {}}
    started = clock()
    deadline = float(trial.get("deadline") or deadline)
    lost: list[str] = []
    while clock() - started < deadline:
        lost = missing(trial.get("before", {}), probe)
        if not lost:
            rauc("mark-good")
            record.finished(trial, "committed", [])
            log(f"version {trial['version']} works: kept")
            return "committed"
        sleep(poll)
    log(f"version {trial['version']} is not healthy: {'; '.join(lost)}; going back")
    record.finished(trial, "rolled back", lost)
    try:
        rauc("mark-bad")
    except (OSError, subprocess.CalledProcessError) as err:  # the restart alone ends a trial
        log(f"RAUC could not mark the slot bad ({err}); restarting all the same")
    backend.reboot()
    return "rolled back"


def rauc_mark(verb: str) -> None:
    """RAUC's own mark (its status file stays true), which calls the boot backend."""
    subprocess.run(["rauc", "status", verb, "booted"], check=True, capture_output=True)


def main() -> int:
    try:
        backend = for_this_box()
    except BootError as err:
        print(f"update gate: {err.message}", file=sys.stderr)
        return 0  # a board that cannot switch slots has nothing to judge
    print(f"update gate: {run(backend, Probe())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

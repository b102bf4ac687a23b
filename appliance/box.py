"""The box: desired state, secrets and capabilities, behind one lock.

Every change goes the same way: take the lock, compute the next desired state from
the current one, store it as a new revision, reconcile. The API is a thin typed
layer over these methods.
"""

import difflib
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from . import __version__, capabilities
from .accounts.service import AccountService
from .accounts.sessions import RuntimeStore
from .capability import Capability, Parts
from .configstore import LOCKED, ConfigStore
from .departure import forget_departed, restorable
from .errors import ApplianceError, Conflict, Invalid, SystemFailure
from .files.capability import FilesCapability
from .firewall import ruleset
from .mail.service import MailService
from .paths import Paths
from .reconcile import Outcome, reconcile
from .schema import Desired
from .ssh.capability import SshCapability
from .storage.place import MAPPED, mounted_at
from .storage.service import StorageService
from .store import Revision
from .system import System
from .vpn.backends import Backend
from .vpn.capability import VpnCapability
from .vpn.schema import device_key_name, psk_name
from .vpn.service import VpnService

log = logging.getLogger(__name__)
C = TypeVar("C", bound=Capability)
VIEW_MAX_AGE = 2.0  # seconds a dashboard may show old handshakes; a change shows at once


def system_facts(paths: Paths) -> dict:
    """Disk and temperature for the dashboard, where this machine can tell."""
    disk = shutil.disk_usage(paths.state_dir)
    temperature = None
    for zone in sorted(Path("/sys/class/thermal").glob("thermal_zone*/temp")):
        try:
            temperature = int(zone.read_text()) / 1000
            break
        except (OSError, ValueError):
            continue
    return {"disk_total": disk.total, "disk_free": disk.free, "temperature_c": temperature}


class Box:
    def __init__(
        self,
        paths: Paths,
        backend: Backend,
        detected: dict[str, bool] | None = None,
        system: System | None = None,
        hardware_survey: Callable[[], dict] = lambda: {},
    ):
        self.paths = paths
        # The board and its devices, as the hardware package reads them: handed in by the
        # agent's entry point (appliance/agent.py), so the box itself imports no hardware.
        self.hardware_survey = hardware_survey
        self.detected = detected or {}
        self.lock = threading.RLock()
        self.system = system or System(paths.root)
        self.store = ConfigStore(paths, lambda: mounted_at(self.system) == MAPPED)
        self.secrets = self.store.secrets
        self.runtime = RuntimeStore(paths.runtime_db)
        self.accounts = AccountService(self.secrets, self.runtime)
        self.vpn = VpnService(self.store, self.secrets)
        self.backend = backend
        self.mail = MailService(self.secrets)
        self.storage = StorageService(self.system, self.runtime)
        parts = Parts(self.system, self.secrets, backend, self.storage, paths)
        self.capabilities: list[Capability] = [cap.made(parts) for cap in capabilities.CAPABILITIES]
        # Those whose data is on the encrypted storage: stopped before it goes away.
        self.data_services = [cap for cap in self.capabilities if cap.uses_storage]
        self.files = self.capability(FilesCapability)
        self.ssh = self.capability(SshCapability)
        self.last_outcomes: list[Outcome] = []
        self.tls_fingerprint: str | None = None
        self._facts: dict[str, tuple[float, object]] = {}  # for views: (when read, facts)
        self._settled: dict[str, object] = {}  # capability -> what it last converged to
        self._known: dict[str, object] = {}  # capability -> facts its last verify read
        with self.lock:
            self.vpn.ensure_box_key()
            if self.store.head() is None:
                self.store.commit(Desired.new(), "agent", "first start")
            self.accounts.adopt_languages(self.store.head()[1])

    def capability(self, kind: type[C]) -> C:
        return next(cap for cap in self.capabilities if isinstance(cap, kind))

    # -- state ---------------------------------------------------------------------

    def head(self) -> tuple[Revision, Desired]:
        return self.store.head()

    def data_settings(self) -> Desired:
        """The desired state, for what is only on the encrypted storage (the mail, chat
        and file-share settings): refused while it is locked, not shown as off."""
        if self.store.locked:
            raise Conflict(LOCKED, "storage")
        return self.store.head()[1]

    def change(self, who: str, why: str, make: Callable[[Desired], tuple[Desired, object]]):
        """Apply ``make`` to the desired state, store the result, reconcile.

        Returns (revision, what make returned, outcomes). A change that changes
        nothing stores no revision.
        """
        with self.lock:
            revision, current = self.store.head()
            desired, result = make(current)
            if desired == current:
                return revision, result, []
            revision = self.store.commit(desired, who, why)
            log.info("revision %d by %s: %s", revision.n, who, why)
            return revision, result, self.reconcile(only_changed=True)

    def reconcile(self, only_changed: bool = False) -> list[Outcome]:
        """Converge the system to the head revision: every capability, or (after a
        change) those whose part of the desired state is not what they last settled."""
        with self.lock:
            self.store.follow_storage()  # unlocked, locked or pulled out since
            _, desired = self.store.head()
            wants = {cap.name: cap.depends_on(desired) for cap in self.capabilities}
            skip = frozenset(
                name
                for name, want in wants.items()
                if only_changed and self._settled.get(name) == want
            )
            if not only_changed:
                self._known.clear()  # at start and on the timer: read everything afresh
            before = dict(self._known)
            self.last_outcomes = reconcile(self.capabilities, desired, skip, self._known)
            self._stamp_facts(before)
            for outcome in self.last_outcomes:
                if outcome.converged:
                    self._settled[outcome.capability] = wants[outcome.capability]
                else:
                    self._settled.pop(outcome.capability, None)
            return self.last_outcomes

    def _stamp_facts(self, before: dict[str, object]) -> None:
        """Only facts this reconcile read are fresh; those it skipped or planned from
        memory keep the age they had (a view reads them afresh when they are too old)."""
        now = time.monotonic()
        facts: dict[str, tuple[float, object]] = {}
        for name, known in self._known.items():
            if known is not before.get(name):
                # Facts known from an acknowledgement carry the time of the read they
                # were built on (vpn/facts.py): a view must not take them as fresh.
                facts[name] = (min(now, getattr(known, "read_at", now)), known)
            elif name in self._facts:
                facts[name] = self._facts[name]
        self._facts = facts

    def forget_facts(self) -> None:
        """Something besides a reconcile changed the system (a disk was formatted and
        mounted): what the last verify read is stale, so the next plans read afresh."""
        with self.lock:
            self._known.clear()

    def housekeeping(self) -> None:
        """What capabilities do on a timer besides converging (mail forgets old mail)."""
        with self.lock:
            desired = self.store.head()[1]
        for cap in self.capabilities:
            try:
                cap.housekeeping(desired, time.time())
            except ApplianceError as err:
                log.warning("%s housekeeping: %s", cap.name, err)

    def lock_storage(self) -> list[Outcome]:
        """Stop what keeps data on the encrypted storage, then lock it."""
        with self.lock:
            if self.store.head()[1].storage.volume is None:
                raise Conflict("the box has no encrypted storage yet")
            self.stop_data_services()
            self.store.close_volume()
            self.storage.lock()
            return self.reconcile()

    def stop_data_services(self) -> None:
        """Mail, chat and files, whose data is about to move or go away."""
        for cap in self.data_services:
            cap.stop_all()

    def storage_plugged(self) -> None:
        """A disk came (or the agent started): a USB key among them opens the storage."""
        with self.lock:
            opened = self.storage.unlock_with_usb_key(self.store.head()[1])
            if opened:
                log.info("the encrypted storage was unlocked with its USB key")
                self.reconcile()
            elif opened is False:
                log.info("the storage is locked and no USB key opened it")

    def storage_unplugged(self) -> None:
        """A disk went away: if it was the unlocked storage's, stop its services at once
        (they would fail on every write) and let go of it."""
        with self.lock:
            volume = self.store.head()[1].storage.volume
            if (
                volume is None
                or not self.system.path(MAPPED).exists()
                or self.storage.device(volume) is not None
            ):
                return
            log.warning("the storage disk (%s) was unplugged while unlocked", volume.disk)
            self.stop_data_services()
            self.store.close_volume()
            self.storage.gone()
            self.reconcile()

    def rollback(self, n: int, who: str) -> tuple[Revision, list[Outcome]]:
        """Restore revision ``n``'s configuration as a new revision.

        Who may log in is not configuration: the accounts and the claim stay as they
        are now, so restoring an old version can neither lock the household out nor
        un-claim the box. Nor is the encrypted volume: a disk formatted since stays.
        Nothing held by someone who is not a member now comes back, nor anything whose
        secret is gone (departure.restorable).
        """
        with self.lock:
            try:
                old = Desired.from_json(self.store.document(n))
            except Invalid as err:
                raise SystemFailure(f"revision {n} cannot be restored: {err.message}") from None
            at = self.store.revision(n).at

            def restore(current: Desired):
                # The encrypted volume is a disk that exists now, whatever the past said.
                now = old.replace(
                    accounts=current.accounts,
                    storage=current.storage,
                    box=replace(old.box, claimed=current.box.claimed),
                )
                return restorable(now, current, self.secrets, at), None

            revision, _, outcomes = self.change(who, f"restore revision {n}", restore)
            return revision, outcomes

    def remove_members(self, names: list[str], caller, why: str) -> tuple[Revision, list, dict]:
        """NAMES leave the household, one path for a removal and the handover: their
        accounts and all they held (Desired.without_member), the secrets behind it,
        their sessions, and the invitations and one-time links they made. Returns the
        revision, the reconcile's outcomes and what was ended (counts and names)."""

        def make(current: Desired):
            d = current
            for name in names:
                d = self.accounts.remove_user(d, name, caller)
            return d, current

        revision, before, outcomes = self.change(caller.who, why, make)
        after = self.head()[1]
        forget_departed(self.secrets, names, before, after)
        kept = {d.id for d in after.vpn.devices}
        ended: dict = {
            "devices": [d.name for d in before.vpn.devices if d.id not in kept],
            "app_passwords": [
                p.label for p in before.mail.app_passwords if p not in after.mail.app_passwords
            ],
            "ssh_keys": [k.name for k in before.ssh.keys if k not in after.ssh.keys],
            "sessions": 0,
            "invitations": 0,
            "links": self.runtime.close_links_to(
                [d.id for d in before.vpn.devices if d.id not in kept]
            ),
        }
        for name in names:
            ended["sessions"] += len(self.runtime.sessions_of(name))
            self.runtime.close_sessions_of(name)
            invitations, links = self.runtime.end_made_by(name)
            ended["invitations"] += invitations
            ended["links"] += links
        return revision, outcomes, ended

    def rekey_devices(self, who: str, why: str) -> tuple[Revision, list[dict], list[Outcome]]:
        """New key pairs for every device whose private key the box made (and handed
        out): whoever saw an old config can no longer use it; each device needs its new
        one. The new private keys are kept once the revision that names them is stored."""
        made: dict[int, object] = {}

        def make(current: Desired):
            made.clear()
            return self.vpn.rekey(current, made), None

        with self.lock:
            revision, _, outcomes = self.change(who, why, make)
            for device_id, private_key in made.items():
                self.secrets.put(device_key_name(device_id), private_key)
        devices = self.head()[1].vpn.devices
        return revision, [{"id": d.id, "name": d.name} for d in devices if d.id in made], outcomes

    def diff(self, a: int, b: int) -> str:
        def lines(n):
            return json.dumps(
                self.store.document(n), indent=2, sort_keys=True, ensure_ascii=False
            ).splitlines(keepends=True)

        return "".join(difflib.unified_diff(lines(a), lines(b), f"revision {a}", f"revision {b}"))

    # -- the VPN -------------------------------------------------------------------

    def device_config(self, ref) -> tuple[str, str]:
        """(file name, wg-quick text) for one device; the only path a device's own
        private key leaves the agent, to be handed to that device."""
        from .vpn.export import file_name, wg_quick  # only when a config is exported

        _, desired = self.store.head()
        device = self.vpn.find(desired, ref)
        text = wg_quick(
            device,
            desired.vpn,
            self.vpn.box_public_key(),
            self.secrets.get(device_key_name(device.id)),
            self.secrets.get(psk_name(device.id)) if device.preshared_key else None,
        )
        return file_name(device), text

    def status(self) -> dict:
        with self.lock:  # facts read between a change's apply and its verify mislead
            return self._status()

    def facts(self, cap: Capability, desired: Desired, max_age: float):
        """A capability's facts for a read-only view, at most ``max_age`` seconds old.
        Reconciling always reads afresh (and drops these)."""
        now = time.monotonic()
        cached = self._facts.get(cap.name)
        if cached is None or now - cached[0] > max_age:
            cached = self._facts[cap.name] = (now, cap.read_facts(desired))
        return cached[1]

    def devices_live(self, visible=None, offset: int = 0, limit: int | None = None) -> dict:
        """A page of devices with their last handshake and traffic, and how many there
        are in all (``visible``: which devices the caller may see)."""
        with self.lock:
            _, desired = self.store.head()
            facts = self.facts(self.capability(VpnCapability), desired, VIEW_MAX_AGE)
        iface = facts.interfaces.get(desired.vpn.interface)
        peers = iface.peers if iface else {}
        devices = desired.vpn.devices
        shown = devices if visible is None else [d for d in devices if visible(d)]
        rows = []
        for d in shown[offset : None if limit is None else offset + limit]:
            peer = peers.get(d.public_key)
            rows.append(
                {
                    "id": d.id,
                    "name": d.name,
                    "ipv4": d.ipv4,
                    "ipv6": d.ipv6,
                    "mode": d.mode,
                    "owner": d.owner,
                    "latest_handshake": peer.last_handshake if peer else 0,
                    "rx_bytes": peer.rx_bytes if peer else 0,
                    "tx_bytes": peer.tx_bytes if peer else 0,
                    "endpoint": peer.endpoint if peer else None,
                }
            )
        return {"total": len(shown), "devices": rows}

    def _status(self) -> dict:
        revision, desired = self.store.head()
        checks = []
        for cap in self.capabilities:
            try:
                facts = self.facts(cap, desired, VIEW_MAX_AGE)
            except Exception as err:  # status must answer even when the system is broken
                checks.append(
                    {"capability": cap.name, "name": "facts", "ok": False, "detail": str(err)}
                )
                continue
            checks += [c.to_json() for c in cap.health(facts, desired)]
        try:
            devices = self.devices_live()["devices"]
        except Exception:
            devices = []
        return {
            "version": __version__,
            "box": desired.box.to_json(),
            "revision": revision.to_json(),
            "backend": self.backend.kind,
            "detected": self.detected,
            "webui": {"tls_sha256": self.tls_fingerprint},
            "vpn": {
                "interface": desired.vpn.interface,
                "public_key": self.vpn.box_public_key(),
                "listen_port": desired.vpn.listen_port,
                "endpoint": str(desired.vpn.endpoint) if desired.vpn.endpoint else None,
                "ipv4_subnet": str(desired.vpn.ipv4_subnet),
                "ipv6_subnet": str(desired.vpn.ipv6_subnet),
                "devices": devices,
            },
            "firewall": {
                "open_ports": [
                    f"{proto}/{port}" for proto, port in sorted(ruleset.open_ports(desired))
                ],
                "home_ports": [
                    f"{proto}/{port}" for proto, port in sorted(ruleset.home_ports(desired))
                ],
            },
            "health": checks,
            "system": system_facts(self.paths),
            "last_reconcile": [o.to_json() for o in self.last_outcomes],
        }

    def close(self) -> None:
        self.store.close()
        self.runtime.close()

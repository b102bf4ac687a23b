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
from .vpn.capability import VpnCapability, device_key_name, psk_name
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
    ):
        self.paths = paths
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
        parts = Parts(self.system, self.secrets, backend, self.storage)
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
            self.last_outcomes = reconcile(self.capabilities, desired, skip, self._known)
            now = time.monotonic()
            self._facts = {name: (now, facts) for name, facts in self._known.items()}
            for outcome in self.last_outcomes:
                if outcome.converged:
                    self._settled[outcome.capability] = wants[outcome.capability]
                else:
                    self._settled.pop(outcome.capability, None)
            return self.last_outcomes

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
        A restored device whose owner is gone becomes the box's.
        """
        with self.lock:
            try:
                old = Desired.from_json(self.store.document(n))
            except Invalid as err:
                raise SystemFailure(f"revision {n} cannot be restored: {err.message}") from None

            def restore(current: Desired):
                devices = tuple(
                    d
                    if d.owner is None or current.accounts.user(d.owner)
                    else replace(d, owner=None)
                    for d in old.vpn.devices
                )
                # The encrypted volume is a disk that exists now, whatever the past said.
                return replace(
                    old,
                    accounts=current.accounts,
                    storage=current.storage,
                    box=replace(old.box, claimed=current.box.claimed),
                    vpn=replace(old.vpn, devices=devices),
                ), None

            revision, _, outcomes = self.change(who, f"restore revision {n}", restore)
            return revision, outcomes

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
        shown = [d for d in desired.vpn.devices if visible is None or visible(d)]
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

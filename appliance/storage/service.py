"""Storage's operations: make a disk the household's encrypted storage, unlock and lock
it, change its passphrase and recovery key. Formatting is the one thing here that
destroys data: it happens only to a disk named by the household, typed back exactly.
"""

import os
from pathlib import Path

from ..accounts import passwords
from ..accounts.sessions import RuntimeStore
from ..errors import Conflict, Invalid, NotFound, RateLimited, Unauthorized
from ..schema import Desired
from ..system import System
from . import cipher as ciphers
from . import luks, usbkey
from .disks import Disk, list_disks
from .place import MAPPED, MAPPER, PRIVATE, mounted_at
from .recovery import new_recovery_key, normal
from .schema import StorageSettings, Volume

UNLOCK_KEYS = ["storage:unlock"]  # one counter for the box: wrong keys slow everyone down
MOUNT_OPTIONS = "nodev,nosuid,noexec"
STAGING = "/run/commonsbox/storage"  # where a new volume is filled before it is mounted


class StorageService:
    def __init__(self, system: System, runtime: RuntimeStore, kdf: tuple[str, ...] = luks.KDF):
        self.system, self.runtime, self.kdf = system, runtime, kdf

    # -- what there is -----------------------------------------------------------------

    def disks(self) -> list[Disk]:
        return list_disks(self.system) if self.own_disks else []

    @property
    def own_disks(self) -> bool:
        """Whether this machine's disks are the box's: not for a box in a namespace or
        under another root (the demo, the tests), whose disks are not its to erase."""
        return not self.system.enter and self.system.root == Path("/")

    def cipher_for_this_box(self) -> tuple[ciphers.Cipher, str]:
        return ciphers.choose((self.system.read("/proc/cpuinfo") or b"").decode())

    def device(self, volume: Volume) -> str | None:
        """Where the volume's disk is now (it may be plugged into another port)."""
        # No cache: a disk just pulled must not be found where it was.
        done = self.system.run(["blkid", "-c", "/dev/null", "-U", volume.uuid], check=False)
        return done.stdout.strip() or None

    def luks_volumes(self) -> frozenset[str]:
        done = self.system.run(
            ["blkid", "-c", "/dev/null", "-t", "TYPE=crypto_LUKS", "-o", "value", "-s", "UUID"],
            check=False,
        )
        return frozenset(done.stdout.split())

    def status(self, desired: Desired) -> dict:
        volume = desired.storage.volume
        chosen, why = self.cipher_for_this_box()
        out = {
            "allow_unencrypted": desired.storage.allow_unencrypted,
            "suggested_cipher": chosen.name,
            "why": why,
            "volume": None,
            "space": None,
        }
        if volume is not None:
            device = self.device(volume)
            header = luks.header(self.system, device) if device else None
            out["volume"] = {
                **volume.to_json(),
                "device": device,
                "present": device is not None,
                "unlocked": self.system.path(MAPPED).exists(),
                "mounted": mounted_at(self.system) == MAPPED,
                "key_slots": {
                    luks.SLOT_NAMES.get(n, str(n)): kdf for n, kdf in sorted(header.slots.items())
                }
                if header
                else {},
            }
        if volume is None or out["volume"]["mounted"]:
            out["space"] = self.space()
        return out

    def space(self) -> dict | None:
        """Room where the household's data lives: bytes in all and free."""
        try:
            st = os.statvfs(self.system.path(PRIVATE))
        except OSError:
            return None
        return {"total": st.f_blocks * st.f_frsize, "free": st.f_bavail * st.f_frsize}

    # -- making and opening the volume -------------------------------------------------

    def change_settings(self, desired: Desired, allow_unencrypted: bool) -> Desired:
        if allow_unencrypted and desired.storage.volume is None:
            # The place is the card's now (a box reset after it had a volume): writable.
            self.system.run(["chattr", "-i", PRIVATE], check=False)
        return desired.replace(storage=StorageSettings(desired.storage.volume, allow_unencrypted))

    def format(
        self,
        desired: Desired,
        disk_name: str,
        confirm: str,
        passphrase: str,
        cipher: str | None = None,
        stop_users=lambda: None,
    ) -> tuple[Desired, str]:
        """Erase DISK_NAME and make it the household's encrypted storage, with what was
        kept unencrypted until now moved onto it (STOP_USERS: stops the services using
        it first). Returns the new state and the recovery key, shown this once."""
        disk = next((d for d in self.disks() if d.name == disk_name), None)
        if disk is None:
            raise NotFound(f"there is no disk {disk_name!r}", "disk")
        if disk.system:
            raise Conflict("the box runs from this disk: choose another", "disk")
        if desired.storage.volume is not None:
            raise Conflict("the box already has its encrypted storage", "disk")
        if confirm != disk.confirm_name:
            raise Invalid(
                f"to erase this disk, type its name exactly: {disk.confirm_name}", "confirm"
            )
        passphrase = passwords.check_strength(passphrase, "")
        chosen = self.cipher_for_this_box()[0] if cipher is None else ciphers.CIPHERS.get(cipher)
        if chosen is None:
            raise Invalid(f"cipher must be one of: {', '.join(ciphers.CIPHERS)}", "cipher")
        key = new_recovery_key()
        stop_users()
        luks.format_volume(self.system, disk.path, passphrase, chosen, self.kdf)
        luks.add_key(self.system, disk.path, passphrase, key, luks.RECOVERY, self.kdf)
        uuid = luks.header(self.system, disk.path).uuid
        luks.open_volume(self.system, disk.path, MAPPER, passphrase)
        self.system.run(["mkfs.ext4", "-q", "-L", "commonsbox", MAPPED], timeout=600)
        self._move_in()
        self.mount()
        volume = Volume(uuid=uuid, cipher=chosen.name, disk=disk.confirm_name)
        return desired.replace(
            storage=StorageSettings(volume, desired.storage.allow_unencrypted)
        ), key

    def _move_in(self) -> None:
        """What the household kept unencrypted (mail, chat, files) onto the new volume,
        then off the card: else it would stay there, hidden under the mount. (Flash
        keeps erased blocks a while: the card still holds traces until they are reused.)"""
        here = self.system.path(PRIVATE)
        if not here.is_dir() or not any(here.iterdir()):
            return
        staging = f"{STAGING}/new"
        self.system.path(staging).mkdir(mode=0o700, parents=True, exist_ok=True)
        self.system.run(["mount", MAPPED, staging])
        try:
            self.system.run(["cp", "-a", f"{PRIVATE}/.", staging], timeout=3600)
        finally:
            self.system.run(["umount", staging])
        self.system.run(["find", PRIVATE, "-mindepth", "1", "-delete"], timeout=600)

    def unlock(self, desired: Desired, key: str) -> int:
        """Open the volume with the passphrase or the recovery key; returns the slot
        (-1: it was open already)."""
        self._volume(desired)
        wait = self.runtime.wait_before_next(UNLOCK_KEYS)
        if wait > 0:
            raise RateLimited(
                f"too many wrong keys: try again in {wait:.0f} s", "key", retry_after=wait
            )
        device = self._present(desired)
        slot = -1
        if not self.system.path(MAPPED).exists():
            slot = self._open(device, key)
        if mounted_at(self.system) != MAPPED:
            self.mount()
        return slot

    def _open(self, device: str, key: str) -> int:
        """The key as given, then as a recovery key typed loosely (case, spaces, O for 0)."""
        for candidate in dict.fromkeys(k for k in (key, normal(key)) if k is not None):
            try:
                slot = luks.open_volume(self.system, device, MAPPER, candidate)
            except Unauthorized:
                continue
            self.runtime.succeeded(UNLOCK_KEYS)
            return slot
        self.runtime.failed(UNLOCK_KEYS)
        raise Unauthorized("that passphrase or recovery key does not open the storage", "key")

    def lock(self) -> None:
        """Unmount and close (the services using it are stopped first: Box.lock_storage)."""
        if mounted_at(self.system) == MAPPED:
            self.system.run(["umount", PRIVATE])
        luks.close_volume(self.system, MAPPER)

    def gone(self) -> None:
        """The disk was pulled while unlocked: let go of what is left of it."""
        if mounted_at(self.system) == MAPPED:
            self.system.run(["umount", "--lazy", PRIVATE], check=False)
        self.system.run(["cryptsetup", "close", "--deferred", MAPPER], check=False)

    def mount(self) -> None:
        self.system.path(PRIVATE).mkdir(mode=0o755, parents=True, exist_ok=True)
        # The mount point itself immutable: whatever still writes there after the disk
        # is pulled or locked fails, rather than leaving data unencrypted on the card.
        self.system.run(["chattr", "+i", PRIVATE], check=False)
        self.system.run(["mount", "-o", MOUNT_OPTIONS, MAPPED, PRIVATE])

    # -- keys --------------------------------------------------------------------------

    def change_passphrase(self, desired: Desired, old: str, new: str) -> None:
        device = self._present(desired)
        new = passwords.check_strength(new, "")
        luks.change_key(self.system, device, old, new, luks.PASSPHRASE, self.kdf)

    def new_recovery_key(self, desired: Desired, passphrase: str) -> str:
        """A new recovery key in place of the old one (lost, or seen by someone)."""
        device = self._present(desired)
        if luks.which_slot(self.system, device, passphrase) != luks.PASSPHRASE:
            raise Unauthorized("that is not the storage's passphrase", "passphrase")
        key = new_recovery_key()
        if luks.RECOVERY in luks.header(self.system, device).slots:
            luks.remove_key(self.system, device, luks.RECOVERY, passphrase)
        luks.add_key(self.system, device, passphrase, key, luks.RECOVERY, self.kdf)
        return key

    def add_usb_key(self, desired: Desired, disk_name: str, passphrase: str) -> None:
        """A new key on the USB stick DISK_NAME (in place of any USB key before)."""
        device = self._present(desired)
        stick = next((d for d in self.disks() if d.name == disk_name and d.usb), None)
        if stick is None:
            raise NotFound(f"there is no USB stick {disk_name!r}", "disk")
        if luks.which_slot(self.system, device, passphrase) is None:
            raise Unauthorized("that passphrase does not open the storage", "passphrase")
        key = usbkey.new_key()
        # The file first: a stick that cannot be written leaves the slots as they were.
        usbkey.write_key(self.system, stick, desired.storage.volume.uuid, key)
        self.remove_usb_key(desired, passphrase)
        luks.add_key(self.system, device, passphrase, key, luks.USB, self.kdf)

    def remove_usb_key(self, desired: Desired, passphrase: str) -> None:
        """The USB key opens the storage no more (its file stays on the stick, useless)."""
        device = self._present(desired)
        if luks.USB in luks.header(self.system, device).slots:
            luks.remove_key(self.system, device, luks.USB, passphrase)

    def unlock_with_usb_key(self, desired: Desired) -> bool | None:
        """Open the locked storage with a USB key plugged in: True if one opened it,
        False if none did, None if there is no locked storage to open."""
        volume = desired.storage.volume
        if volume is None or self.system.path(MAPPED).exists():
            return None
        device = self.device(volume)
        if device is None:
            return None
        for key in usbkey.find_keys(self.system, self.disks(), volume.uuid):
            try:
                luks.open_volume(self.system, device, MAPPER, key)
            except Unauthorized:  # a key from before the last change: not a wrong guess
                continue
            self.mount()
            return True
        return False

    def _volume(self, desired: Desired) -> Volume:
        if desired.storage.volume is None:
            raise Conflict("the box has no encrypted storage yet")
        return desired.storage.volume

    def _present(self, desired: Desired) -> str:
        volume = self._volume(desired)
        device = self.device(volume)
        if device is None:
            raise NotFound(f"the storage disk ({volume.disk}) is not plugged in", "disk")
        return device

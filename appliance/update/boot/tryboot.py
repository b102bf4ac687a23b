"""The Raspberry Pi 4/5 firmware's tryboot as the A/B boot backend.

Each slot has its own FAT boot partition (p2 for A, p3 for B) beside its root, and a small
common FAT partition (p1) holds only autoboot.txt, which the firmware reads to choose one:

    [all]
    tryboot_a_b=1
    boot_partition=2        the committed slot: what every reset boots
    [tryboot]
    boot_partition=3        what `reboot "0 tryboot"` boots, once; == [all]: nothing armed

Why per-slot boot partitions, not per-slot directories (os_prefix) on one boot partition:
the firmware, device trees, kernel and initramfs change together with the root, so RAUC
writes each slot's boot partition whole (a vfat slot, child of its root slot) and a
half-written inactive slot never touches the running one; committing a slot is rewriting
one line of autoboot.txt; with tryboot_a_b=1 the trial boots the other partition's own
config.txt. The firmware writes nothing: its tryboot flag is cleared before the trial
starts, so a trial that hangs or panics falls back to [all] at the next reset by itself.
(Pi 4B revisions 1.0 and 1.1 keep the flag in the EEPROM, which must not be write-protected:
raspberrypi/documentation, raspberry-pi/bootflow-eeprom.adoc.)

What the Pi needs: a Pi 4 bootloader EEPROM from 2022-11-25 or later ("[tryboot]
conditional statement + tryboot_a_b mode", rpi-eeprom firmware-2711/release-notes.md);
older ones lack tryboot_a_b (the oldest ignore autoboot.txt and boot p2 whatever is
committed), so set_primary refuses when /chosen/bootloader/capabilities lacks TRYBOOT_A_B.
Every Pi 5 EEPROM has it. And a kernel that turns the reboot argument " tryboot" into the
firmware's one-shot flag: the Raspberry Pi kernel does (raspberrypi/linux
drivers/firmware/raspberrypi.c, a reboot notifier sending RPI_FIRMWARE_SET_REBOOT_FLAGS).
Debian's kernel does not (6.12.117+deb13-arm64 carries upstream's driver, without that
notifier), so with it the trial reboot boots the committed slot again: safe, nothing tried.

So a slot is good when autoboot.txt may boot it: the committed one, and the one armed for a
trial. A commit leaves the old slot unarmed, so it reads bad; a rollback arms it again with
set_primary and tries it like any update. A trial that never reaches the health gate
(a kernel that panics) leaves the box on the committed slot with the trial still armed:
whoever armed it sees booted() == primary() and not the slot it tried, and calls mark_bad;
until then reboot() would try again.

autoboot.txt is replaced by writing a new file, fsync, rename over the old, fsync the
directory: on FAT, the only file system the firmware reads, a rename rewrites directory
entries in place and is not atomic, but the new content is on the card before the name
points at it, and the firmware's file is never half-written.
"""

import fcntl
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import SLOTS, BootBackend, BootError, Slot, State, other

DEVICE_TREE = Path("/proc/device-tree/chosen/bootloader")
COMMON = Path("/boot/common")  # the common FAT partition, p1 (image/cbimage/raspi.py)
AUTOBOOT = "autoboot.txt"
BOOT_PARTITIONS: dict[Slot, int] = {"A": 2, "B": 3}  # the card's layout: image/cbimage/raspi.py
AUTOBOOT_LIMIT = 512  # bytes the firmware reads (config_txt/autoboot.adoc)
TRYBOOT_A_B = 1 << 2  # /chosen/bootloader/capabilities (configuration/device-tree.adoc)
TRYBOOT_ARGUMENT = "0 tryboot"  # partition 0: the one autoboot.txt chooses

Reboot = Callable[[str | None], None]  # the reboot(2) argument, or None for a plain reboot


def systemctl_reboot(argument: str | None) -> None:
    extra = [f"--reboot-argument={argument}"] if argument else []
    subprocess.run(["systemctl", "reboot", *extra], check=True)


@dataclass(frozen=True)
class Autoboot:
    primary: Slot  # [all] boot_partition
    trial: Slot  # [tryboot] boot_partition


def render(primary: Slot, trial: Slot) -> str:
    return (
        "[all]\ntryboot_a_b=1\n"
        f"boot_partition={BOOT_PARTITIONS[primary]}\n"
        f"[tryboot]\nboot_partition={BOOT_PARTITIONS[trial]}\n"
    )


# The filters autoboot.txt supports, as (applies normally, applies in tryboot mode).
FILTERS = {"all": (True, True), "none": (False, False), "tryboot": (False, True)}
KEYS = ("boot_partition", "tryboot_a_b")


def parse(data: bytes) -> Autoboot:
    """The two slots autoboot.txt chooses, read by the firmware's rules: lines under [all]
    apply always, under [tryboot] only in tryboot mode, under [none] never, the last wins."""
    if len(data) > AUTOBOOT_LIMIT:
        raise BootError(f"{AUTOBOOT} is {len(data)} bytes; the firmware reads only 512 bytes")
    normal: dict[str, int] = {}
    trying: dict[str, int] = {}
    applies = FILTERS["all"]
    for number, raw in enumerate(data.decode("utf-8", errors="replace").split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            if line[1:-1] not in FILTERS:
                raise BootError(
                    f"{AUTOBOOT} line {number}: the filter {line} is not for autoboot.txt"
                )
            applies = FILTERS[line[1:-1]]
            continue
        key, sep, value = line.partition("=")
        if not sep or key not in KEYS or not (value.isascii() and value.isdigit()):
            raise BootError(
                f"{AUTOBOOT} line {number}: {line[:40]!r} is not boot_partition=N or tryboot_a_b=N"
            )
        for on, settings in zip(applies, (normal, trying), strict=True):
            if on:
                settings[key] = int(value)
    autoboot = Autoboot(
        _slot_of(normal.get("boot_partition")), _slot_of(trying.get("boot_partition"))
    )
    if trying.get("tryboot_a_b") != 1:
        raise BootError(
            f"{AUTOBOOT} does not set tryboot_a_b=1: a trial would look for tryboot.txt"
        )
    return autoboot


def _slot_of(partition: int | None) -> Slot:
    if partition is None:
        raise BootError(f"{AUTOBOOT} names no boot_partition")
    for slot, number in BOOT_PARTITIONS.items():
        if number == partition:
            return slot
    raise BootError(f"{AUTOBOOT} chooses partition {partition}, which is no slot of this box")


class TrybootBackend(BootBackend):
    def __init__(
        self,
        device_tree: Path = DEVICE_TREE,
        common: Path = COMMON,
        reboot: Reboot = systemctl_reboot,
    ):
        self.device_tree = device_tree
        self.common = common
        self._reboot = reboot

    # What the firmware says about this boot.

    def booted(self) -> Slot:
        partition = self._cell("partition")
        for slot in SLOTS:
            if BOOT_PARTITIONS[slot] == partition:
                return slot
        raise BootError(f"the firmware booted partition {partition}, which is no slot of this box")

    def is_trial(self) -> bool:
        return self._cell("tryboot") != 0

    def _cell(self, name: str) -> int:
        path = self.device_tree / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BootError(
                f"{path} is missing: this boot was not made by the Raspberry Pi firmware"
            ) from None
        except OSError as err:
            raise BootError(f"cannot read {path}: {err.strerror}") from None
        if len(data) != 4:
            raise BootError(f"{path} holds {len(data)} bytes, not a 32-bit cell")
        return int.from_bytes(data, "big")

    def _supports_tryboot_a_b(self) -> bool:
        """False for a Pi 4 EEPROM older than tryboot_a_b; True where the firmware does not
        say (the property is the BCM2711 bootloader's)."""
        try:
            return bool(self._cell("capabilities") & TRYBOOT_A_B)
        except BootError:
            return not (self.device_tree / "capabilities").exists()

    # What autoboot.txt chooses.

    def primary(self) -> Slot:
        return self._read().primary

    def state(self, slot: Slot) -> State:
        autoboot = self._read()
        return "good" if slot in (autoboot.primary, autoboot.trial) else "bad"

    def set_primary(self, slot: Slot) -> None:
        with self._locked():
            autoboot = self._read()
            if slot == autoboot.primary:
                if autoboot.trial != slot:
                    self._write(slot, slot)  # disarm the trial
                return
            if not self._supports_tryboot_a_b():
                raise BootError(
                    "this Pi's bootloader is too old for A/B updates (it lacks tryboot_a_b): "
                    "update its EEPROM to 2022-11-25 or later"
                )
            self._write(autoboot.primary, slot)

    def mark_good(self, slot: Slot) -> None:
        with self._locked():
            autoboot = self._read()
            if slot == autoboot.primary:
                return
            if slot != self.booted():
                raise BootError(f"slot {slot} has not booted: only the running slot is marked good")
            self._write(slot, slot)  # committed: every reset boots it now

    def mark_bad(self, slot: Slot) -> None:
        with self._locked():
            autoboot = self._read()
            if slot == autoboot.primary:
                raise BootError(
                    f"slot {slot} is what the box boots after a reset and cannot be marked bad; "
                    f"mark slot {other(slot)} good or reboot first"
                )
            if slot == autoboot.trial:
                self._write(autoboot.primary, autoboot.primary)

    def reboot(self) -> None:
        autoboot = self._read()
        self._reboot(TRYBOOT_ARGUMENT if autoboot.trial != autoboot.primary else None)

    # The file.

    def _read(self) -> Autoboot:
        path = self.common / AUTOBOOT
        try:
            return parse(path.read_bytes())
        except FileNotFoundError:
            raise BootError(f"{path} is missing: is the common partition mounted?") from None
        except OSError as err:
            raise BootError(f"cannot read {path}: {err.strerror}") from None

    def _write(self, primary: Slot, trial: Slot) -> None:
        path = self.common / AUTOBOOT
        new = path.with_name(AUTOBOOT + ".new")
        data = render(primary, trial).encode()
        try:
            with open(new, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(new, path)
            directory = os.open(self.common, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as err:
            raise BootError(f"cannot write {path}: {err.strerror}") from None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One change at a time: RAUC's handler and the health gate are separate processes."""
        try:
            fd = os.open(self.common, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as err:
            raise BootError(f"cannot open {self.common}: {err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

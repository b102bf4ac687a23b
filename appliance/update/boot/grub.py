"""GRUB on UEFI (the QEMU boards) as the A/B boot backend.

GRUB's environment block on the EFI system partition holds PRIMARY, the slot every reset
boots, and TRIAL, a slot to boot once: GRUB clears TRIAL before it boots it
(image/cbimage/grub.py), so, as with the Pi firmware's tryboot, a trial that panics,
hangs until the watchdog fires or fails the health gate boots PRIMARY again at the next
reset. Marking the trial good makes it PRIMARY. The booted slot is the one GRUB named on
the kernel's command line (rauc.slot=).
"""

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from . import SLOTS, BootBackend, BootError, Slot, State, grubenv

ESP = Path("/boot/efi")  # mounted only while the environment changes (the image's fstab)
ENV = "EFI/BOOT/grubenv"


def systemctl_reboot() -> None:
    subprocess.run(["systemctl", "reboot"], check=True)


@contextmanager
def mounted(esp: Path) -> Iterator[Path]:
    """The EFI system partition, mounted for as long as it takes (a FAT file system left
    mounted is one a power cut can leave dirty)."""
    if os.path.ismount(esp):
        yield esp
        return
    subprocess.run(["mount", str(esp)], check=True, capture_output=True)
    try:
        yield esp
    finally:
        subprocess.run(["umount", str(esp)], check=False, capture_output=True)


class GrubBackend(BootBackend):
    def __init__(
        self,
        esp: Path = ESP,
        cmdline: Path = Path("/proc/cmdline"),
        reboot: Callable[[], None] = systemctl_reboot,
        mount: Callable[[Path], AbstractContextManager[Path]] = mounted,
    ):
        self.esp = esp
        self.cmdline = cmdline
        self._reboot = reboot
        self._mount = mount

    def booted(self) -> Slot:
        for word in self.cmdline.read_text().split():
            name, _, value = word.partition("=")
            if name == "rauc.slot":
                for slot in SLOTS:
                    if value == slot:
                        return slot
        raise BootError("the kernel's command line names no slot (rauc.slot=A or B)")

    def primary(self) -> Slot:
        return self._slot(self._read().get("PRIMARY"), "PRIMARY")

    def is_trial(self) -> bool:
        return self.booted() != self.primary()

    def state(self, slot: Slot) -> State:
        env = self._read()
        return "good" if slot in (env.get("PRIMARY"), env.get("TRIAL")) else "bad"

    def set_primary(self, slot: Slot) -> None:
        """Try SLOT at the next boot, once (the primary slot itself: nothing to try)."""
        env = self._read()
        env["TRIAL"] = "" if slot == self._slot(env.get("PRIMARY"), "PRIMARY") else slot
        self._write(env)

    def mark_good(self, slot: Slot) -> None:
        if slot != self.booted():
            raise BootError(f"slot {slot} is not the one running: only a booted slot is kept")
        self._write({"PRIMARY": slot, "TRIAL": ""})

    def mark_bad(self, slot: Slot) -> None:
        env = self._read()
        if slot == env.get("PRIMARY"):
            raise BootError(f"slot {slot} is the one every reset boots: it cannot be given up")
        if env.get("TRIAL") == slot:
            env["TRIAL"] = ""
            self._write(env)

    def reboot(self) -> None:
        self._reboot()

    # -- the environment block ----------------------------------------------------------

    def _read(self) -> dict[str, str]:
        with self._mount(self.esp) as esp:
            try:
                env = grubenv.read(esp / ENV)
            except (OSError, grubenv.BadEnv) as err:
                raise BootError(f"GRUB's environment cannot be read: {err}") from err
        self._slot(env.get("PRIMARY"), "PRIMARY")
        if env.get("TRIAL", "") not in ("", *SLOTS):
            raise BootError(f"GRUB's environment names an unknown trial slot {env['TRIAL']!r}")
        return env

    def _write(self, env: dict[str, str]) -> None:
        with self._mount(self.esp) as esp:
            try:
                grubenv.write(esp / ENV, env)
            except OSError as err:
                raise BootError(f"GRUB's environment cannot be written: {err}") from err

    @staticmethod
    def _slot(value: str | None, name: str) -> Slot:
        for slot in SLOTS:
            if value == slot:
                return slot
        raise BootError(f"GRUB's environment has no valid {name} slot ({value!r})")

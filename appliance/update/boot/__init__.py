"""One interface over the bootloaders that try a new root once and keep it only when told to.

The verbs are RAUC's, so its `custom` bootloader backend can call them (rauc_custom.py):

    booted          the slot running now (RAUC: get-current)
    primary         what a reset boots: the committed slot (get-primary)
    set_primary     arm a one-time trial of a slot; it becomes primary only when marked
                    good (set-primary; RAUC calls it after writing the slot)
    state           good or bad: whether the slot may boot (get-state)
    mark_good       commit the booted slot (set-state good; the health gate calls it)
    mark_bad        stop the slot from booting (set-state bad; RAUC calls it before
                    writing the slot, the gate when the trial fails)
    is_trial        whether this boot is the one-time trial
    reboot          reboot into the armed trial, if any

Slots are named "A" and "B" on every board: RAUC's bootname of rootfs.0 and rootfs.1.
Backends: tryboot.py (the Raspberry Pi firmware); grub.py (GRUB on UEFI, the QEMU boards),
which tries a slot once in the same way. for_this_box() picks the board's.
"""

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Literal

from appliance.errors import SystemFailure

Slot = Literal["A", "B"]
State = Literal["good", "bad"]
SLOTS: tuple[Slot, Slot] = ("A", "B")


class BootError(SystemFailure):
    """The bootloader's state cannot be read, or the change asked is unsafe: nothing written."""


def other(slot: Slot) -> Slot:
    return "B" if slot == "A" else "A"


class BootBackend(ABC):
    @abstractmethod
    def booted(self) -> Slot: ...

    @abstractmethod
    def primary(self) -> Slot: ...

    @abstractmethod
    def set_primary(self, slot: Slot) -> None: ...

    @abstractmethod
    def state(self, slot: Slot) -> State: ...

    @abstractmethod
    def mark_good(self, slot: Slot) -> None: ...

    @abstractmethod
    def mark_bad(self, slot: Slot) -> None: ...

    @abstractmethod
    def is_trial(self) -> bool: ...

    @abstractmethod
    def reboot(self) -> None: ...


RELEASE = Path("/usr/lib/commonsbox/release.json")  # written by the image builder


def for_this_box(release: Path = RELEASE) -> BootBackend:
    """The backend of the board this root was built for (its boot kind)."""
    try:
        kind = json.loads(release.read_text())["boot"]
    except (OSError, ValueError, KeyError) as err:
        raise BootError(f"this root says nothing of its bootloader ({release}): {err}") from err
    if kind == "grub":
        from .grub import GrubBackend

        return GrubBackend()
    if kind == "raspi":
        from .tryboot import TrybootBackend

        return TrybootBackend()
    raise BootError(f"this board's bootloader ({kind}) cannot switch slots")

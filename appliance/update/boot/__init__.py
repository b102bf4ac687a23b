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
Backends: tryboot.py (the Raspberry Pi firmware); GRUB with boot counting on the QEMU boards.
"""

from abc import ABC, abstractmethod
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

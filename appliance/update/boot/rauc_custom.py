"""RAUC's `custom` bootloader backend, over the board's boot backend.

With `bootloader=custom` in system.conf, RAUC runs the program named by
`bootloader-custom-backend=` in [handlers] as (rauc src/bootloaders/custom.c):

    PROGRAM get-primary                 prints the bootname a reset boots
    PROGRAM set-primary BOOTNAME        after writing the slot: try it once
    PROGRAM get-state BOOTNAME          prints good or bad
    PROGRAM set-state BOOTNAME good|bad
    PROGRAM get-current                 prints the booted bootname

and takes exit status 0 as success. Bootnames are the slots, A and B. The image runs this
as `python3 -m appliance.update.boot.rauc_custom` from /usr/lib/commonsbox/rauc-boot-backend.
"""

import sys
from collections.abc import Sequence

from . import SLOTS, BootBackend, BootError, Slot, for_this_box

USAGE = (
    "usage: rauc-boot-backend get-primary | get-current | get-state A|B | "
    "set-primary A|B | set-state A|B good|bad"
)


class Usage(Exception):
    pass


def _slot(name: str) -> Slot:
    for slot in SLOTS:
        if name == slot:
            return slot
    raise Usage


def run(backend: BootBackend, argv: Sequence[str]) -> str | None:
    """What to print for the call, or None; Usage when RAUC's call is not one of the five."""
    match list(argv):
        case ["get-primary"]:
            return backend.primary()
        case ["get-current"]:
            return backend.booted()
        case ["get-state", name]:
            return backend.state(_slot(name))
        case ["set-primary", name]:
            backend.set_primary(_slot(name))
        case ["set-state", name, "good"]:
            backend.mark_good(_slot(name))
        case ["set-state", name, "bad"]:
            backend.mark_bad(_slot(name))
        case _:
            raise Usage
    return None


def main(argv: Sequence[str] | None = None, backend: BootBackend | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if backend is None:
            backend = for_this_box()
        out = run(backend, args)
    except Usage:
        print(USAGE, file=sys.stderr)
        return 2
    except BootError as err:
        print(f"rauc-boot-backend {' '.join(args)}: {err.message}", file=sys.stderr)
        return 1
    if out is not None:
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Board profiles: which box this is, read from the device tree or DMI.

The profile carries the defaults the other modules need (I2C bus, GPIO lines, the
watchdog), so no module guesses the board on its own. `root` is injectable so tests
(and the box-in-a-namespace) read a directory tree instead of the host's /proc, /sys.
"""

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Board:
    id: str  # "rpi4" | "rpi5" | "qemu-arm64" | "qemu-amd64" | "unknown"
    model: str  # human text, e.g. "Raspberry Pi 4 Model B Rev 1.5"
    i2c_bus: int | None  # fixed bus number, or None: find it by adapter name
    i2c_adapter: str | None  # adapter name to look for when the number is not fixed
    gpio_chip: str | None  # label of the gpiochip with the header pins
    status_led_line: int | None  # line offsets on that chip
    attention_led_line: int | None
    button_line: int | None
    watchdog_path: str | None

    @property
    def has_gpio(self) -> bool:
        return self.gpio_chip is not None


# Header pins 11, 13 and 15 (GPIO 17, 27, 22): free on both Pis, clear of I2C1 (GPIO 2/3,
# where the display, clock and sensor sit) and of the UART.
_PI_LINES = {"status_led_line": 17, "attention_led_line": 27, "button_line": 22}

# i2c-stub gives the QEMU guest a real kernel I2C bus; its number depends on what other
# adapters the machine has, so the guest finds it by name.
_STUB_ADAPTER = "SMBus stub driver"


def _read(root: Path, relative: str) -> str | None:
    try:
        return (root / relative).read_bytes().decode("utf-8", "replace")
    except OSError:
        return None


def _compatible(root: Path) -> list[str]:
    raw = _read(root, "proc/device-tree/compatible") or ""
    return [entry for entry in raw.split("\0") if entry]


def detect(root: str | os.PathLike[str] = "/", machine: str | None = None) -> Board:
    """The board this runs on. `machine` (uname's) only tells QEMU arm64 from amd64 when
    a QEMU machine is known from DMI alone (arm64 booted through UEFI has no DT)."""
    base = Path(root)
    compatible = _compatible(base)
    dt_model = (_read(base, "proc/device-tree/model") or "").rstrip("\0").strip()
    if any(c.startswith("raspberrypi,") for c in compatible):
        # The SoC names the family, so a Pi 400 / CM4 is a Pi 4 and a Pi 500 / CM5 a Pi 5.
        if "brcm,bcm2712" in compatible:
            return Board(
                "rpi5",
                dt_model or "Raspberry Pi 5",
                1,
                None,
                "pinctrl-rp1",
                watchdog_path="/dev/watchdog",
                **_PI_LINES,
            )
        if "brcm,bcm2711" in compatible:
            return Board(
                "rpi4",
                dt_model or "Raspberry Pi 4",
                1,
                None,
                "pinctrl-bcm2711",
                watchdog_path="/dev/watchdog",
                **_PI_LINES,
            )
    if "linux,dummy-virt" in compatible:
        return _qemu("qemu-arm64", dt_model or "QEMU virt (arm64)")
    vendor = (_read(base, "sys/class/dmi/id/sys_vendor") or "").strip()
    product = (_read(base, "sys/class/dmi/id/product_name") or "").strip()
    if vendor == "QEMU":
        arch = machine if machine is not None else os.uname().machine
        board_id = "qemu-arm64" if arch in ("aarch64", "arm64") else "qemu-amd64"
        return _qemu(board_id, f"QEMU {product}".strip())
    model = (
        dt_model
        or " ".join(part for part in (vendor, product) if part)
        or (compatible[0] if compatible else "unknown machine")
    )
    return Board("unknown", model, None, None, None, None, None, None, "/dev/watchdog")


def _qemu(board_id: str, model: str) -> Board:
    # No GPIO header in a VM; a watchdog only if the VM was given one (i6300esb).
    return Board(board_id, model, None, _STUB_ADAPTER, None, None, None, None, "/dev/watchdog")


def i2c_bus_number(board: Board, root: str | os.PathLike[str] = "/") -> int | None:
    """The board's I2C bus: its fixed number, or the adapter found by name in sysfs."""
    if board.i2c_bus is not None:
        return board.i2c_bus
    if board.i2c_adapter is None:
        return None
    adapters = Path(root) / "sys/bus/i2c/devices"  # adapters (i2c-N) beside clients (N-00AA)
    try:
        entries = sorted(adapters.iterdir())
    except OSError:
        return None
    for entry in entries:
        name = _read(entry, "name")
        if (
            name is not None
            and name.strip() == board.i2c_adapter
            and entry.name.startswith("i2c-")
            and entry.name[4:].isdigit()
        ):
            return int(entry.name[4:])
    return None

"""The box's hardware service: status display, LEDs, reset button and clock.

    commonsbox-hardware [--socket PATH] [--root DIR] [--display-height 64|32]
    (or: python -m hardware)

systemd runs it as root (image/cbimage/files/commonsbox-hardware.service). It
- sets the system clock from a trusted real-time clock at start, and stores the time
  in it once NTP has synchronised the system clock (hardware/clocksync.py);
- shows what the agent says about the box (hardware/agentview.py) on the display and
  the two LEDs, redrawing only when the picture changes;
- watches the button: held 10 s, the display asks; pressed again within 30 s, the
  agent resets the box to its factory state (`box.factory_reset`).
It never opens /dev/watchdog: systemd (PID 1) owns the hardware watchdog.

Every device is optional. Absent hardware is looked for again every minute (at once
on SIGHUP); a device that fails is said once in the log and set aside until the next
look; nothing here ends the service but SIGTERM, after which the display is dark and
the LEDs are off.
"""

import argparse
import errno
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from appliance.sdnotify import sd_notify
from hardware.agentview import RESET_METHOD, AgentWatch, lan_address
from hardware.boards import Board, detect, i2c_bus_number
from hardware.button import ButtonWatcher
from hardware.clocksync import STORE_SECONDS, ntp_synchronized, why_not_set
from hardware.errors import DeviceAbsent, DeviceFault, HardwareError
from hardware.gpio import Button, GpioChip, Led, Lines, find_chip
from hardware.i2c import Bus
from hardware.i2c.rtc import RealTimeClock, from_system, set_system_clock, to_system
from hardware.i2c.ssd1306 import Ssd1306
from hardware.i2c.status_screen import BoxView, layout
from hardware.status import open_smbus

log = logging.getLogger("commonsbox.hardware")

PROBE_SECONDS = 60.0  # look again for absent or failed devices
POLL_SECONDS = 5.0  # ask the agent how the box is
ADDRESS_SECONDS = 30.0  # look up the box's address again
SYNC_CHECK_SECONDS = 60.0  # ask the kernel whether NTP has synchronised the clock
RESET_TIMEOUT = 900.0  # the agent stops services, locks the storage, reconciles
SLOW_BLINK, FAST_BLINK = 1.0, 4.0  # Hz


def indication(state: str, now: float) -> tuple[bool, bool]:
    """(status LED, attention LED) for a box state at time NOW (seconds): the table in
    hardware/README.md."""
    slow = now * SLOW_BLINK * 2 % 2 < 1
    fast = now * FAST_BLINK * 2 % 2 < 1
    return {
        "starting": (slow, False),
        "unclaimed": (True, False),
        "ready": (True, False),
        "degraded": (True, True),
        "reset-confirm": (True, fast),
        "resetting": (fast, fast),
    }.get(state, (False, True))


@dataclass
class Presence:
    """One optional device as the log tells it: said when it changes, not every look."""

    what: str
    state: str = "unknown"  # "present" | "absent" | "faulty"
    detail: str = ""

    def note(self, state: str, detail: str = "") -> None:
        if (state, detail) == (self.state, self.detail):
            return
        log.log(
            logging.WARNING if state == "faulty" else logging.INFO,
            "%s: %s%s",
            self.what,
            state,
            f" ({detail})" if detail else "",
        )
        self.state, self.detail = state, detail


class BusPort:
    """The board's I2C bus, open only while the service uses it: the drivers keep this
    object, each use opens /dev/i2c-N afresh (found again by adapter name, so a bus that
    comes later or is renumbered is found) and closes it, so the adapter is never held
    (i2c-stub in the VM can be unloaded)."""

    def __init__(self, board: Board, open_bus: Callable[[int], Bus], root: str) -> None:
        self._board, self._open, self._root = board, open_bus, root
        self._bus: Bus | None = None
        self.number: int | None = None

    @contextmanager
    def session(self) -> Iterator[None]:
        number = i2c_bus_number(self._board, self._root)
        if number is None:
            adapter = self._board.i2c_adapter
            raise DeviceAbsent(
                f"no adapter named {adapter!r}" if adapter else f"{self._board.id} has no I2C bus"
            )
        try:
            bus = self._open(number)
        except OSError as error:
            raise DeviceAbsent(
                f"cannot open /dev/i2c-{number}: {os.strerror(error.errno or 0)}"
            ) from error
        self.number, self._bus = number, bus
        try:
            yield
        finally:
            self._bus = None
            close = getattr(bus, "close", None)
            if close is not None:
                close()

    def _live(self) -> Bus:
        if self._bus is None:
            raise OSError(errno.ENODEV, "the I2C bus is not open")
        return self._bus

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        return self._live().read_byte_data(i2c_addr, register)

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        self._live().write_byte_data(i2c_addr, register, value)

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        return self._live().read_i2c_block_data(i2c_addr, register, length)

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int]) -> None:
        self._live().write_i2c_block_data(i2c_addr, register, data)


def _busy(error: HardwareError) -> bool:
    """EBUSY: a kernel driver has bound the chip (an RTC overlay's rtc-ds1307, say)."""
    cause = error.__cause__
    return isinstance(cause, OSError) and cause.errno == errno.EBUSY


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _in_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="commonsbox-reset", daemon=True).start()


class HardwareService:
    """One `step()` at a time: look for devices when due, sample the button, light the
    LEDs, draw the display if its picture changed, keep the clocks. Everything that can
    differ between a box and a test is injected."""

    def __init__(
        self,
        board: Board,
        agent: AgentWatch,
        *,
        reset: Callable[[], None],
        open_bus: Callable[[int], Bus] = open_smbus,
        find_gpio: Callable[[str], GpioChip] = find_chip,
        root: str = "/",
        display_height: int = 64,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utc_now,
        set_clock: Callable[[float], None] = set_system_clock,
        synchronized: Callable[[], bool] = ntp_synchronized,
        address: Callable[[], str] = lan_address,
        spawn: Callable[[Callable[[], None]], None] = _in_thread,
    ) -> None:
        self.board, self.agent = board, agent
        self._reset, self._find_gpio = reset, find_gpio
        self._clock, self._wall_clock, self._set_clock = clock, wall_clock, set_clock
        self._synchronized, self._address_of, self._spawn = synchronized, address, spawn
        self._height = display_height
        self.port = BusPort(board, open_bus, root)
        self.devices = {
            name: Presence(what)
            for name, what in (
                ("bus", "I2C bus"),
                ("display", "status display"),
                ("rtc", "real-time clock"),
                ("gpio", "GPIO (LEDs and button)"),
            )
        }
        self._panel: Ssd1306 | None = None
        self._rtc: RealTimeClock | None = None
        self._lines: list[Lines] = []
        self._leds: tuple[Led, Led] | None = None
        self._button: Button | None = None
        self._lit: tuple[bool, bool] | None = None
        self.button = ButtonWatcher()
        self.resetting = False
        self.drawn: BoxView | None = None
        self._next_probe = 0.0
        self._clock_checked = False  # the system clock was compared with the RTC
        self._next_sync_check = 0.0
        self._stored_at: float | None = None
        self._address, self._address_at = "", float("-inf")

    # -- the loop ------------------------------------------------------------------------

    def reprobe(self) -> None:
        """Look for devices at the next step (SIGHUP)."""
        self._next_probe = 0.0

    def step(self) -> float:
        """One look at everything; returns the seconds until the next."""
        now = self._clock()
        probe = now >= self._next_probe
        if probe:
            self._next_probe = now + PROBE_SECONDS
            self._probe_gpio()
        if now - self._address_at >= ADDRESS_SECONDS:
            self._address, self._address_at = self._address_of(), now
        event = self._sample_button(now)
        view = self.view()
        self._light(view.state, now)
        # A probe opens the bus even when both chips are known: that is how a bus that
        # went away is noticed while the picture stays the same.
        clock_due = self._rtc is not None and now >= self._next_sync_check
        if probe or clock_due or (self._panel is not None and view != self.drawn):
            self._use_i2c(now, probe, view)
        if event == "reset-confirmed":
            self._spawn(self._factory_reset)  # after "resetting" is on the display
        return 0.05 if self._button is not None else 1.0

    def view(self) -> BoxView:
        agent = self.agent.view
        if self.resetting:
            state = "resetting"
        elif self.button.state in ("requested", "awaiting-confirm"):
            state = "reset-confirm"
        else:
            state = agent.state
        address = self._address
        return BoxView(
            agent.name,
            address,
            state,
            agent.setup_code if state == "unclaimed" else "",
            f"https://{address}/" if address else "",
        )

    def poll_agent_forever(self, stop: threading.Event) -> None:
        """The agent may be slow to answer (a long reconcile holds its lock): asked from
        a thread of its own, so the button and the LEDs never wait for it."""
        failed = ""
        while True:
            try:
                self.agent.poll(self._clock())
            except Exception as error:  # a bug: said once, the display keeps its picture
                if repr(error) != failed:
                    log.exception("asking the agent failed")
                    failed = repr(error)
            if stop.wait(POLL_SECONDS):
                return

    def close(self) -> None:
        """A clean stop: the panel dark (a stale "Ready" would be wrong), the LEDs off."""
        if self._panel is not None:
            try:
                with self.port.session():
                    self._panel.off()
            except HardwareError:
                pass
        if self._leds is not None:
            try:
                for led in self._leds:
                    led.off()
            except OSError:
                pass
        self._release_gpio()

    def summary(self) -> str:
        """One line for `systemctl status`."""
        parts = [f"{p.what} {p.state}" for name, p in self.devices.items() if name != "bus"]
        return f"the box is {self.view().state}; " + ", ".join(parts)

    # -- GPIO: the LEDs and the button -----------------------------------------------------

    def _probe_gpio(self) -> None:
        gpio = self.devices["gpio"]
        if self._lines:
            return
        board = self.board
        if (
            board.gpio_chip is None
            or board.status_led_line is None
            or board.attention_led_line is None
            or board.button_line is None
        ):
            gpio.note("absent", f"{board.id} has no GPIO header")
            return
        try:
            chip = self._find_gpio(board.gpio_chip)
            leds = []
            for line, name in (
                (board.status_led_line, "status"),
                (board.attention_led_line, "attention"),
            ):
                self._lines.append(
                    chip.request(
                        [line], output=True, initial=[False], consumer=f"commonsbox-{name}-led"
                    )
                )
                leds.append(Led(self._lines[-1]))
            self._lines.append(
                chip.request(
                    [board.button_line],
                    output=False,
                    consumer="commonsbox-button",
                    active_low=True,
                    bias="pull-up",
                    debounce_us=10_000,
                )
            )
            self._button = Button(self._lines[-1])
            self._leds = (leds[0], leds[1])
        except DeviceAbsent as error:
            self._release_gpio()
            gpio.note("absent", str(error))
            return
        except (DeviceFault, OSError) as error:  # EBUSY: another program holds a line
            self._release_gpio()
            gpio.note("faulty", str(error))
            return
        self._lit = None
        gpio.note(
            "present",
            f"{board.gpio_chip}: LEDs on lines {board.status_led_line} "
            f"and {board.attention_led_line}, button on {board.button_line}",
        )

    def _release_gpio(self) -> None:
        for lines in self._lines:
            try:
                lines.close()
            except OSError:
                pass
        self._lines, self._leds, self._button = [], None, None

    def _gpio_failed(self, error: OSError) -> None:
        self._release_gpio()
        self.devices["gpio"].note("faulty", os.strerror(error.errno or 0) or str(error))

    def _sample_button(self, now: float) -> str | None:
        if self._button is None or self.resetting:
            return None
        try:
            pressed = self._button.pressed()
        except OSError as error:
            self._gpio_failed(error)
            return None
        event = self.button.update(pressed, now)
        if event == "reset-requested":
            log.warning("the button was held 10 s: the display asks to confirm a factory reset")
        elif event == "reset-expired":
            log.info("no second press within 30 s: no factory reset")
        elif event == "reset-confirmed":
            log.warning("the button confirmed a factory reset")
            self.resetting = True
        return event

    def _light(self, state: str, now: float) -> None:
        if self._leds is None:
            return
        wanted = indication(state, now)
        if wanted == self._lit:
            return
        try:
            for led, on in zip(self._leds, wanted, strict=True):
                led.set(on)
        except OSError as error:
            self._gpio_failed(error)
            return
        self._lit = wanted

    # -- I2C: the display and the real-time clock ---------------------------------------

    def _use_i2c(self, now: float, probe: bool, view: BoxView) -> None:
        try:
            with self.port.session():
                self.devices["bus"].note("present", f"/dev/i2c-{self.port.number}")
                if probe:
                    self._probe_display()
                    self._probe_rtc()
                self._keep_time(now)
                self._draw(view)
        except DeviceAbsent as error:  # the bus itself
            self.devices["bus"].note("absent", str(error))
            for name in ("display", "rtc"):
                self.devices[name].note("absent", "no I2C bus")
            self._panel = self._rtc = None

    def _probe_display(self) -> None:
        if self._panel is not None:
            return
        panel = Ssd1306(self.port, height=self._height)
        try:
            panel.probe()
            panel.init()
        except HardwareError as error:
            self._device_failed("display", error)
            return
        self._panel, self.drawn = panel, None
        self.devices["display"].note("present", f"SSD1306 128x{self._height}")

    def _draw(self, view: BoxView) -> None:
        if self._panel is None or view == self.drawn:
            return
        try:
            self._panel.show(layout(view, self._panel.width, self._panel.height))
        except HardwareError as error:
            self._panel = None
            self._device_failed("display", error)
            return
        if self.drawn is None or self.drawn.state != view.state:
            log.info("the display shows: %s", view.state)
        self.drawn = view

    def _probe_rtc(self) -> None:
        if self._rtc is not None:
            return
        rtc = RealTimeClock(self.port)
        try:
            reading = rtc.read()
        except HardwareError as error:
            self._device_failed("rtc", error)
            return
        self._rtc = rtc
        self._next_sync_check = 0.0
        self.devices["rtc"].note(
            "present",
            reading.kind.upper() + ("" if reading.trusted else f", not trusted: {reading.reason}"),
        )
        if not self._clock_checked:  # once per start: the boot's clock
            self._clock_checked = True
            self._clock_from_rtc(rtc, reading)

    def _clock_from_rtc(self, rtc: RealTimeClock, reading) -> None:
        reason = why_not_set(reading, self._wall_clock(), self._synchronized())
        if reason is not None:
            log.info("system clock left as it is: %s", reason)
            return
        result = to_system(rtc, self._set_clock)
        if result.applied and result.time is not None:
            log.warning(
                "system clock set from the real-time clock: %s",
                result.time.isoformat(timespec="seconds"),
            )
        else:
            log.warning("system clock not set from the real-time clock: %s", result.reason)

    def _keep_time(self, now: float) -> None:
        """Every minute: is the system clock synchronised? Then every 11 minutes (the
        first time at once) its time goes to the RTC."""
        if self._rtc is None or now < self._next_sync_check:
            return
        self._next_sync_check = now + SYNC_CHECK_SECONDS
        if not self._synchronized():
            return
        if self._stored_at is not None and now - self._stored_at < STORE_SECONDS:
            return
        result = from_system(self._rtc, self._wall_clock)
        if not result.applied:
            self._rtc = None
            self.devices["rtc"].note("faulty", result.reason)
            return
        if self._stored_at is None:
            log.info("the real-time clock keeps the synchronised time from now on")
        self._stored_at = now

    def _device_failed(self, name: str, error: HardwareError) -> None:
        if isinstance(error, DeviceAbsent):
            self.devices[name].note("absent", str(error))
        elif _busy(error):
            self.devices[name].note("absent", "a kernel driver has it")
        else:
            self.devices[name].note("faulty", str(error))

    # -- the factory reset ----------------------------------------------------------------

    def _factory_reset(self) -> None:
        from appliance.errors import ApplianceError

        try:
            self._reset()
        except ApplianceError as error:  # AgentUnavailable too
            log.error("the factory reset did not happen: %s", error)
        else:
            log.warning("factory reset done: the box is unclaimed")
        finally:
            self.agent.poll(self._clock())  # the new state (and setup code) first
            self.resetting = False


# -- the daemon ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    from appliance.api.client import Client
    from appliance.paths import DEFAULT_SOCKET

    parser = argparse.ArgumentParser(
        prog="commonsbox-hardware", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--socket", type=Path, default=DEFAULT_SOCKET)
    parser.add_argument("--root", default="/", help="where /proc and /sys are (tests)")
    parser.add_argument("--display-height", type=int, choices=(64, 32), default=64)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    board = detect(args.root)
    log.info("board: %s (%s)", board.id, board.model)

    def reset() -> None:
        with Client(args.socket, timeout=RESET_TIMEOUT) as client:
            client.call(RESET_METHOD)

    service = HardwareService(
        board,
        AgentWatch(Client(args.socket, timeout=30).call),
        reset=reset,
        root=args.root,
        display_height=args.display_height,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: service.reprobe())
    failures: set[str] = set()

    def step() -> float:
        try:
            return service.step()
        except Exception as error:  # a bug must not become a crash loop: said once
            if repr(error) not in failures:
                log.exception("unexpected error (the service goes on)")
                failures.add(repr(error))
            return 1.0

    step()  # the devices, the clock from the RTC, "Starting..." on the display
    sd_notify("READY=1")
    threading.Thread(
        target=service.poll_agent_forever, args=(stop,), name="agent", daemon=True
    ).start()
    said_status, petted = "", 0.0
    while not stop.is_set():
        wait = step()
        status = service.summary()
        now = time.monotonic()
        if status != said_status or now - petted >= 10:
            sd_notify(f"WATCHDOG=1\nSTATUS={status}")  # WatchdogSec= of our own unit
            said_status, petted = status, now
        stop.wait(wait)
    sd_notify("STOPPING=1")
    service.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

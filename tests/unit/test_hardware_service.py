"""The hardware service's loop, driven step by step: the fake bus's chips (the panel's
pixels read back as text), fake GPIO lines, a fake agent and a fake clock. Nothing here
touches this machine's clock, I2C or GPIO."""

import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from appliance.api.client import AgentUnavailable
from appliance.errors import NotFound
from hardware.agentview import AgentWatch
from hardware.boards import Board
from hardware.clocksync import STORE_SECONDS, why_not_set
from hardware.i2c import font
from hardware.i2c.rtc import RtcReading
from hardware.i2c.ssd1306 import Ssd1306
from hardware.i2c.status_screen import BoxView, layout
from hardware.service import PROBE_SECONDS, HardwareService, indication

from .fakei2c import DS3231, SSD1306, Failing, FakeBus, bcd
from .test_hardware_display import read_text, zbar

PI4 = Board(
    "rpi4", "Raspberry Pi 4 Model B", 1, None, "pinctrl-bcm2711", 17, 27, 22, "/dev/watchdog"
)
QEMU = Board(
    "qemu-amd64", "QEMU", None, "SMBus stub driver", None, None, None, None, "/dev/watchdog"
)
RTC_TIME = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
HEALTHY = [{"capability": "vpn", "name": "interface", "ok": True, "detail": "wg0"}]
LOCKED = HEALTHY + [
    {
        "capability": "storage",
        "name": "encryption",
        "ok": False,
        "detail": "locked: unlock it with the household's passphrase",
    }
]


def rtc_chip(when: datetime = RTC_TIME, **kwargs) -> DS3231:
    return DS3231(
        {
            0: bcd(when.second),
            1: bcd(when.minute),
            2: bcd(when.hour),
            3: when.isoweekday(),
            4: bcd(when.day),
            5: bcd(when.month),
            6: bcd(when.year - 2000),
        },
        **kwargs,
    )


class FakeAgent:
    """The agent's API as the service uses it: down until started, then unclaimed
    (a setup code) or claimed (health checks); the factory reset a test can watch."""

    def __init__(self):
        self.up = False
        self.claimed = False
        self.name = "Smith family box"
        self.code = "ABCD-EFGH-JKMN"
        self.health = HEALTHY
        self.calls: list[str] = []
        self.on_reset = None  # what the test looks at while the reset runs

    def call(self, method, **params):
        self.calls.append(method)
        if not self.up:
            raise AgentUnavailable("cannot reach the agent at /run/commonsbox/agent.sock")
        if method == "setup.status":
            return {"claimed": self.claimed, "name": self.name, "language": "en"}
        if method == "setup.code":
            return {"code": self.code, "expires": 0}
        if method == "status":
            return {"health": self.health}
        raise NotFound(f"there is no method {method!r}", "method")

    def factory_reset(self):
        self.calls.append("box.factory_reset")
        if self.on_reset is not None:
            self.on_reset()
        self.claimed, self.code = False, "PQRS-TUVW-XYZ2"


class FakeLines:
    def __init__(self, count, initial):
        self.values = list(initial) or [False] * count
        self.closed = False

    def get(self):
        return tuple(self.values)

    def set(self, values):
        for index, on in values.items():
            self.values[index] = on

    def close(self):
        self.closed = True


class FakeChip:
    """A gpiochip: requested lines by offset; LEDs read back, the button pressed."""

    def __init__(self):
        self.lines: dict[int, FakeLines] = {}
        self.requests = []

    def request(
        self,
        offsets,
        *,
        output,
        consumer,
        active_low=False,
        bias="as-is",
        debounce_us=0,
        initial=(),
    ):
        self.requests.append((tuple(offsets), output, consumer, active_low, bias))
        lines = FakeLines(len(offsets), initial)
        for offset in offsets:
            self.lines[offset] = lines
        return lines

    def led(self, offset):
        return self.lines[offset].values[0]

    def leds(self):
        return self.led(17), self.led(27)

    def press(self, pressed=True):
        self.lines[22].values[0] = pressed


class Rig:
    """A service with everything fake, and the helpers to look at what it shows."""

    def __init__(
        self,
        board=PI4,
        chips=None,
        gpio=True,
        system_time=RTC_TIME - timedelta(days=3),
        synchronized=False,
        address="192.168.1.23",
        root="/",
    ):
        self.now = 1000.0
        self.system_time = system_time
        self.synchronized = synchronized
        self.clock_set: list[float] = []
        self.agent = FakeAgent()
        self.panel = SSD1306()
        self.bus = FakeBus({0x3C: self.panel, 0x68: rtc_chip()} if chips is None else chips)
        self.chip = FakeChip()
        self.opened: list[int] = []
        self.watch = AgentWatch(self.agent.call)

        def open_bus(number):
            self.opened.append(number)
            return self.bus

        def find_gpio(label):
            if not gpio:
                from hardware.errors import DeviceAbsent

                raise DeviceAbsent(f"no GPIO chip labelled {label!r} in /dev")
            assert label == "pinctrl-bcm2711"
            return self.chip

        self.service = HardwareService(
            board,
            self.watch,
            reset=self.agent.factory_reset,
            open_bus=open_bus,
            find_gpio=find_gpio,
            clock=lambda: self.now,
            wall_clock=lambda: self.system_time,
            set_clock=self.clock_set.append,
            synchronized=lambda: self.synchronized,
            address=lambda: address,
            spawn=lambda work: work(),
            root=str(root),
        )

    def step(self, seconds=0.0):
        self.now += seconds
        self.system_time += timedelta(seconds=seconds)
        return self.service.step()

    def poll(self):
        return self.watch.poll(self.now)

    def text(self) -> list[str]:
        """The panel's lines of text, left of the QR code when there is one."""
        image = self.panel.visible()
        qr = layout(self.service.drawn).qr_codes if self.service.drawn else ()
        count = (qr[0].x + 1) // font.CELL_WIDTH if qr else None
        return [read_text(image, row, count=count) for row in range(8)]

    def hold(self, seconds, step=0.05):
        """Hold the button down for SECONDS, stepping the loop as the box would."""
        self.chip.press(True)
        for _ in range(round(seconds / step)):
            self.step(step)

    def release(self):
        self.chip.press(False)
        self.step(0.05)


def test_the_display_and_leds_follow_the_box_from_starting_to_ready():
    rig = Rig()
    rig.step()
    assert rig.text()[2] == "Starting..."
    assert rig.chip.leds() == (True, False)  # status LED blinks: on for half a second
    rig.step(0.5)
    assert rig.chip.leds() == (False, False)  # ... and off for the other half
    rig.poll()  # the agent is not up: still starting
    rig.step(0.5)
    assert rig.text()[2] == "Starting..."

    rig.agent.up = True
    assert rig.poll().state == "unclaimed"
    rig.step(0.05)
    lines = rig.text()
    assert lines[0] == "Smith fami" and "Setup code" in lines  # a QR code beside
    assert "ABCD-EFGH-JKMN" in "".join(lines)  # whole: a code cut short claims nothing
    assert rig.chip.leds() == (True, False)  # steady
    assert rig.service.drawn.url == "https://192.168.1.23/"

    rig.agent.claimed = True
    rig.poll()
    rig.step(0.05)
    lines = rig.text()
    assert lines[0] == "Smith family box" and lines[2] == "Ready" and lines[4] == "192.168.1.23"
    assert rig.chip.leds() == (True, False)
    assert "ABCD-EFGH-JKMN" not in "".join(lines)


def test_a_failing_health_check_is_degraded_and_lights_the_attention_led():
    rig = Rig()
    rig.agent.up, rig.agent.claimed, rig.agent.health = True, True, LOCKED
    rig.poll()
    rig.step()
    assert rig.text()[2:5] == ["Needs attention:", "see the web UI at", "192.168.1.23"]
    assert rig.chip.leds() == (True, True)
    rig.agent.health = HEALTHY
    rig.now += 31  # the health checks are asked for every 30 s, not every poll
    rig.poll()
    rig.step()
    assert rig.text()[2] == "Ready" and rig.chip.leds() == (True, False)


def test_an_agent_that_stops_answering_shows_starting_again():
    rig = Rig()
    rig.agent.up, rig.agent.claimed = True, True
    rig.poll()
    rig.step()
    assert rig.text()[2] == "Ready"
    rig.agent.up = False
    rig.poll()
    rig.step()
    assert rig.text()[2] == "Starting..."


def test_the_panel_is_redrawn_only_when_the_picture_changes():
    rig = Rig()
    rig.agent.up, rig.agent.claimed = True, True
    rig.poll()
    rig.step()
    writes = len(rig.bus.log)
    for _ in range(100):
        rig.poll()
        rig.step(0.05)
    assert len(rig.bus.log) == writes  # no I2C at all: nothing changed
    assert rig.opened.count(1) == 1  # the bus was opened once, for the first picture


def test_hold_ten_seconds_then_press_again_resets_the_box_through_the_agent():
    rig = Rig()
    rig.agent.up, rig.agent.claimed = True, True
    rig.poll()
    rig.step()
    rig.hold(5)
    assert rig.text()[2] == "Ready"  # a short hold is nothing
    rig.hold(5.1)
    assert rig.text()[0] == "Factory reset?"
    assert rig.text()[2:4] == ["Press the button", "again within 30 s"]
    rig.release()
    assert rig.text()[0] == "Factory reset?"  # it stays until the second press
    rig.step(10)
    seen = []
    rig.agent.on_reset = lambda: seen.append((rig.text(), rig.chip.leds()))
    rig.chip.press(True)
    rig.step(0.05)
    assert rig.agent.calls.count("box.factory_reset") == 1
    ((shown, _),) = seen
    assert shown[:4] == ["Factory reset", "", "Erasing this box.", "Do not unplug it."]
    rig.chip.press(False)
    rig.step(0.05)
    lines = rig.text()  # the new state, with the new code
    assert "Setup code" in lines and "PQRS-TUVW-XYZ2" in "".join(lines)


def test_no_second_press_within_30_s_changes_nothing():
    rig = Rig()
    rig.agent.up, rig.agent.claimed = True, True
    rig.poll()
    rig.step()
    rig.hold(10.1)
    rig.release()
    assert rig.text()[0] == "Factory reset?"
    assert rig.chip.leds()[0] is True
    rig.step(30.5)
    rig.step(0.05)
    assert rig.text()[2] == "Ready"
    assert "box.factory_reset" not in rig.agent.calls


def test_a_failed_reset_goes_back_to_what_the_box_is(caplog):
    rig = Rig()
    rig.agent.up, rig.agent.claimed = True, True

    def refused():
        raise NotFound("there is no method 'box.factory_reset'", "method")

    rig.service._reset = refused
    rig.poll()
    rig.step()
    rig.hold(10.1)
    rig.release()
    rig.chip.press(True)
    with caplog.at_level(logging.ERROR, logger="commonsbox.hardware"):
        rig.step(0.05)
    assert "did not happen" in caplog.text
    rig.chip.press(False)
    rig.step(0.05)
    assert rig.text()[2] == "Ready" and not rig.service.resetting


def test_leds_blink_while_the_reset_is_asked_and_while_it_runs():
    assert indication("starting", 0.2) == (True, False)
    assert indication("starting", 0.7) == (False, False)
    assert indication("unclaimed", 0.7) == indication("ready", 0.7) == (True, False)
    assert indication("degraded", 0.7) == (True, True)
    assert [indication("reset-confirm", t)[1] for t in (0.0, 0.13, 0.26)] == [True, False, True]
    assert indication("resetting", 0.0) == (True, True)
    assert indication("resetting", 0.13) == (False, False)


def test_the_agents_setup_code_is_shown_whole_beside_the_qr_code(tmp_path):
    view = BoxView("Smith", "192.168.1.23", "unclaimed", "ABCD-EFGH-JKMN", "https://192.168.1.23/")
    canvas = layout(view)
    assert [qr.data for qr in canvas.qr_codes] == ["https://192.168.1.23/"]
    texts = [item.text for item in canvas.texts]
    assert "".join(texts[texts.index("Setup code") + 1 :][:2]) == "ABCD-EFGH-JKMN"
    panel = SSD1306()
    display = Ssd1306(FakeBus({0x3C: panel}))
    display.init()
    display.show(canvas)
    if shutil.which("zbarimg"):
        assert zbar(panel.visible(), tmp_path) == "https://192.168.1.23/"


def test_a_box_without_display_or_gpio_runs_and_says_so_once(caplog):
    rig = Rig(board=QEMU, chips={}, gpio=False)
    with caplog.at_level(logging.INFO, logger="commonsbox.hardware"):
        assert rig.step() == 1.0  # nothing to sample: a slow loop
        for _ in range(5):
            rig.step(PROBE_SECONDS)
    said = [r.getMessage() for r in caplog.records]
    assert said.count("GPIO (LEDs and button): absent (qemu-amd64 has no GPIO header)") == 1
    assert sum(m.startswith("status display: absent") for m in said) == 1
    assert rig.opened == []  # no i2c-stub adapter: no bus to open


def test_devices_that_come_later_are_found_within_a_minute(tmp_path):
    bus_dir = tmp_path / "sys/bus/i2c/devices/i2c-3"
    rig = Rig(board=QEMU, chips={}, gpio=False, root=tmp_path)
    rig.step()
    assert rig.service.devices["bus"].state == "absent"
    bus_dir.mkdir(parents=True)
    (bus_dir / "name").write_text("SMBus stub driver\n")
    rig.bus.chips[0x3C] = rig.panel
    rig.step(PROBE_SECONDS / 2)
    assert rig.service.devices["display"].state == "absent"  # not looked for yet
    rig.step(PROBE_SECONDS / 2)
    assert rig.opened == [3] and rig.service.devices["display"].state == "present"
    assert rig.text()[2] == "Starting..."
    del rig.bus.chips[0x3C]  # pulled off the header
    rig.agent.up = True
    rig.poll()
    rig.step(1)
    assert rig.service.devices["display"].state == "absent"
    rig.bus.chips[0x3C] = rig.panel
    rig.service.reprobe()  # SIGHUP: look now
    rig.step(1)
    assert rig.service.devices["display"].state == "present"
    assert "Setup code" in rig.text()


def test_a_bus_that_goes_away_is_noticed_at_the_next_look_even_if_nothing_changed(tmp_path):
    bus_dir = tmp_path / "sys/bus/i2c/devices/i2c-3"
    bus_dir.mkdir(parents=True)
    (bus_dir / "name").write_text("SMBus stub driver\n")
    rig = Rig(board=QEMU, gpio=False, root=tmp_path)
    rig.step()
    assert rig.service.devices["rtc"].state == "present"
    (bus_dir / "name").unlink()
    bus_dir.rmdir()  # modprobe -r i2c-stub
    rig.step(1)
    assert rig.service.devices["bus"].state == "present"  # the same picture: not looked
    rig.service.reprobe()  # SIGHUP: look now
    rig.step(1)
    assert rig.service.devices["bus"].state == "absent"
    assert rig.service.devices["display"].detail == "no I2C bus"


def test_a_faulty_display_is_logged_once_and_never_stops_the_loop(caplog):
    rig = Rig(chips={0x3C: Failing(errno.ETIMEDOUT), 0x68: rtc_chip()})
    with caplog.at_level(logging.INFO, logger="commonsbox.hardware"):
        for _ in range(10):
            rig.step(PROBE_SECONDS)
    faults = [r for r in caplog.records if r.getMessage().startswith("status display: faulty")]
    assert len(faults) == 1 and faults[0].levelno == logging.WARNING
    assert rig.chip.leds()[0] in (True, False)  # the LEDs still run


def test_the_rtc_sets_the_system_clock_only_when_trusted_ahead_and_unsynchronised():
    rig = Rig()  # the system clock is 3 days behind
    rig.step()
    assert rig.clock_set == [RTC_TIME.timestamp()]
    for label, rig in (
        ("untrusted", Rig(chips={0x68: rtc_chip(oscillator_stopped=True)})),
        ("synchronised", Rig(synchronized=True)),
        ("not behind", Rig(system_time=RTC_TIME + timedelta(minutes=5))),
    ):
        rig.step()
        rig.step(PROBE_SECONDS)
        assert rig.clock_set == [], label


def test_why_the_clock_is_left_alone():
    good = RtcReading("ds3231", RTC_TIME, True, "")
    assert why_not_set(good, RTC_TIME - timedelta(hours=1), False) is None
    assert "not behind" in why_not_set(good, RTC_TIME + timedelta(seconds=1), False)
    assert "already synchronised" in why_not_set(good, RTC_TIME - timedelta(hours=1), True)
    bad = RtcReading("ds1307", RTC_TIME, False, "its clock is halted")
    assert "not trusted: its clock is halted" in why_not_set(bad, RTC_TIME - timedelta(1), False)


def test_a_synchronised_clock_goes_to_the_rtc_then_every_11_minutes():
    rig = Rig(synchronized=True, system_time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    rtc = rig.bus.chips[0x68]
    rig.step()
    assert [rtc.byte(r) for r in (6, 5, 4, 2, 1, 0)] == [0x26, 0x01, 0x02, 0x03, 0x04, 0x05]
    writes = [e for e in rig.bus.log if e[0] == "write_i2c_block_data" and e[1] == 0x68]
    rig.step(STORE_SECONDS - 60)
    assert [e for e in rig.bus.log if e[0] == "write_i2c_block_data" and e[1] == 0x68] == writes
    rig.step(60)
    assert len([e for e in rig.bus.log if e[0] == "write_i2c_block_data" and e[1] == 0x68]) == 2
    assert rig.clock_set == []


def test_an_rtc_held_by_a_kernel_driver_is_left_to_it():
    rig = Rig(chips={0x3C: SSD1306(), 0x68: Failing(errno.EBUSY)})
    rig.step()
    assert rig.service.devices["rtc"].state == "absent"
    assert rig.service.devices["rtc"].detail == "a kernel driver has it"


def test_stop_darkens_the_panel_and_turns_the_leds_off():
    rig = Rig()
    rig.agent.up, rig.agent.claimed, rig.agent.health = True, True, LOCKED
    rig.poll()
    rig.step()
    assert rig.chip.leds() == (True, True) and any(any(r) for r in rig.panel.visible())
    rig.service.close()
    assert rig.chip.leds() == (False, False)
    assert not any(any(r) for r in rig.panel.visible())
    assert all(lines.closed for lines in rig.chip.lines.values())


def test_the_daemon_says_ready_and_stops_cleanly_on_sigterm(tmp_path):
    """`python -m hardware` on a machine without a display, clock or agent: READY=1 to
    systemd's notify socket, then SIGTERM ends it at once with status 0."""
    notify = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    listener.settimeout(30)
    env = dict(
        os.environ, NOTIFY_SOCKET=str(notify), PYTHONPATH=str(Path(__file__).resolve().parents[2])
    )
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hardware",
            "--root",
            str(tmp_path),
            "--socket",
            str(tmp_path / "agent.sock"),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        messages = [listener.recv(4096).decode()]
        assert messages[0] == "READY=1"
        messages.append(listener.recv(4096).decode())
        assert "STATUS=the box is starting" in messages[1]
        t0 = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
        assert time.monotonic() - t0 < 5
    finally:
        if daemon.poll() is None:
            daemon.kill()
        listener.close()
    log = daemon.stderr.read()
    assert "board: unknown" in log and "INFO stopped" in log
    assert "Traceback" not in log

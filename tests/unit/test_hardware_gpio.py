"""GPIO uAPI v2 structures checked against the kernel header, requests as data, and
the factory-reset button as a state machine fed timed samples."""

import ctypes
import errno
import shutil
import subprocess

import pytest

from hardware import gpio_uapi as uapi
from hardware.button import ButtonWatcher
from hardware.errors import DeviceAbsent
from hardware.gpio import Button, CharDevChip, Led, find_chip, request_struct

HEADER = "/usr/include/linux/gpio.h"


def test_sizes_and_ioctl_numbers_from_the_uapi_documentation():
    assert ctypes.sizeof(uapi.LineAttribute) == 16
    assert ctypes.sizeof(uapi.LineConfigAttribute) == 24
    assert ctypes.sizeof(uapi.LineConfig) == 272
    assert ctypes.sizeof(uapi.LineRequest) == 592
    assert ctypes.sizeof(uapi.LineValues) == 16
    assert ctypes.sizeof(uapi.ChipInfo) == 68
    assert uapi.LineRequest.config.offset == 256 + 32
    assert uapi.LineRequest.fd.offset == 588
    # _IOWR(0xB4, 0x07, 592 bytes) = 3 << 30 | 592 << 16 | 0xB4 << 8 | 7
    assert uapi.GPIO_V2_GET_LINE_IOCTL == 0xC250B407
    assert uapi.GPIO_V2_LINE_GET_VALUES_IOCTL == 0xC010B40E
    assert uapi.GPIO_V2_LINE_SET_VALUES_IOCTL == 0xC010B40F
    assert uapi.GPIO_GET_CHIPINFO_IOCTL == 0x8044B401


C_PROBE = r"""
#include <stdio.h>
#include <stddef.h>
#include <linux/gpio.h>
int main(void) {
    printf("%zu %zu %zu %zu %zu %zu\n", sizeof(struct gpio_v2_line_attribute),
           sizeof(struct gpio_v2_line_config_attribute), sizeof(struct gpio_v2_line_config),
           sizeof(struct gpio_v2_line_request), sizeof(struct gpio_v2_line_values),
           sizeof(struct gpiochip_info));
    printf("%zu %zu %zu %zu %zu\n", offsetof(struct gpio_v2_line_request, consumer),
           offsetof(struct gpio_v2_line_request, config),
           offsetof(struct gpio_v2_line_request, num_lines),
           offsetof(struct gpio_v2_line_request, fd),
           offsetof(struct gpio_v2_line_config, attrs));
    printf("%lu %lu %lu %lu\n", (unsigned long)GPIO_V2_GET_LINE_IOCTL,
           (unsigned long)GPIO_V2_LINE_GET_VALUES_IOCTL,
           (unsigned long)GPIO_V2_LINE_SET_VALUES_IOCTL, (unsigned long)GPIO_GET_CHIPINFO_IOCTL);
    printf("%llu %llu %llu %llu\n", (unsigned long long)GPIO_V2_LINE_FLAG_INPUT,
           (unsigned long long)GPIO_V2_LINE_FLAG_OUTPUT,
           (unsigned long long)GPIO_V2_LINE_FLAG_ACTIVE_LOW,
           (unsigned long long)GPIO_V2_LINE_FLAG_BIAS_PULL_UP);
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler to read gpio.h")
def test_layout_matches_the_installed_kernel_header(tmp_path):
    source = tmp_path / "probe.c"
    source.write_text(C_PROBE)
    compiled = subprocess.run(
        ["cc", "-o", str(tmp_path / "probe"), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if compiled.returncode and "gpio.h" in compiled.stderr:
        pytest.skip(f"no {HEADER}")
    assert compiled.returncode == 0, compiled.stderr
    out = subprocess.run(
        [str(tmp_path / "probe")], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    sizes, offsets, ioctls, flags = ([int(n) for n in line.split()] for line in out[:4])
    assert sizes == [
        ctypes.sizeof(t)
        for t in (
            uapi.LineAttribute,
            uapi.LineConfigAttribute,
            uapi.LineConfig,
            uapi.LineRequest,
            uapi.LineValues,
            uapi.ChipInfo,
        )
    ]
    assert offsets == [
        uapi.LineRequest.consumer.offset,
        uapi.LineRequest.config.offset,
        uapi.LineRequest.num_lines.offset,
        uapi.LineRequest.fd.offset,
        uapi.LineConfig.attrs.offset,
    ]
    assert ioctls == [
        uapi.GPIO_V2_GET_LINE_IOCTL,
        uapi.GPIO_V2_LINE_GET_VALUES_IOCTL,
        uapi.GPIO_V2_LINE_SET_VALUES_IOCTL,
        uapi.GPIO_GET_CHIPINFO_IOCTL,
    ]
    assert flags == [
        uapi.FLAG_INPUT,
        uapi.FLAG_OUTPUT,
        uapi.FLAG_ACTIVE_LOW,
        uapi.FLAG_BIAS_PULL_UP,
    ]


def u32(raw, offset):
    return int.from_bytes(raw[offset : offset + 4], "little")


def u64(raw, offset):
    return int.from_bytes(raw[offset : offset + 8], "little")


def test_button_request_bytes():
    raw = bytes(
        request_struct(
            [22],
            output=False,
            consumer="commonsbox-button",
            active_low=True,
            bias="pull-up",
            debounce_us=10_000,
        )
    )
    assert len(raw) == 592
    assert u32(raw, 0) == 22 and u32(raw, 4) == 0
    assert raw[256:288].rstrip(b"\0") == b"commonsbox-button"
    assert u64(raw, 288) == 0b1_0000_0110  # pull-up (bit 8), input (2), active-low (1)
    assert u32(raw, 296) == 1  # one attribute
    attribute = 288 + 32
    assert u32(raw, attribute) == 3  # GPIO_V2_LINE_ATTR_ID_DEBOUNCE
    assert u32(raw, attribute + 8) == 10_000
    assert u64(raw, attribute + 16) == 1  # applies to line index 0
    assert u32(raw, 560) == 1  # num_lines
    assert raw[564:592] == bytes(28)  # event buffer size, padding, fd: zero


def test_led_request_bytes():
    raw = bytes(request_struct([17, 27], output=True, consumer="x" * 40, initial=[False, True]))
    assert (u32(raw, 0), u32(raw, 4)) == (17, 27)
    assert raw[256:288] == b"x" * 31 + b"\0"  # cut, still NUL-terminated
    assert u64(raw, 288) == 0b1000  # output
    assert u32(raw, 296) == 1
    assert u32(raw, 320) == 2 and u64(raw, 328) == 0b10 and u64(raw, 336) == 0b11
    assert u32(raw, 560) == 2
    with pytest.raises(ValueError):
        request_struct([], output=True, consumer="none")


class FakeKernel:
    """Stands in for the GPIO driver behind open()/ioctl(): it reads what each request
    says, gives it a line file, and keeps the level of each line by its offset."""

    def __init__(self, label="pinctrl-bcm2711", present=True):
        self.label = label
        self.present = present
        self.requests = []
        self.lines = {}  # line file -> offsets it holds
        self.level = {}  # offset -> logical value
        self.closed = []

    def open(self, path, flags):
        if not self.present:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        return 3

    def close(self, fd):
        self.closed.append(fd)

    def ioctl(self, fd, request, buffer, mutate):
        assert mutate and isinstance(buffer, bytearray)
        if request == uapi.GPIO_GET_CHIPINFO_IOCTL:
            info = uapi.ChipInfo(name=b"gpiochip0", label=self.label.encode(), lines=58)
            buffer[:] = bytes(info)
        elif request == uapi.GPIO_V2_GET_LINE_IOCTL:
            assert fd == 3 and len(buffer) == 592
            self.requests.append(bytes(buffer))
            offsets = [u32(buffer, 4 * i) for i in range(u32(buffer, 560))]
            line_fd = 10 + len(self.lines)
            self.lines[line_fd] = offsets
            for offset in offsets:
                self.level.setdefault(offset, False)
            buffer[588:592] = line_fd.to_bytes(4, "little")
        elif request == uapi.GPIO_V2_LINE_SET_VALUES_IOCTL:
            bits, mask = u64(buffer, 0), u64(buffer, 8)
            for index, offset in enumerate(self.lines[fd]):
                if mask >> index & 1:
                    self.level[offset] = bool(bits >> index & 1)
        elif request == uapi.GPIO_V2_LINE_GET_VALUES_IOCTL:
            mask = u64(buffer, 8)
            bits = sum(
                1 << index
                for index, offset in enumerate(self.lines[fd])
                if mask >> index & 1 and self.level[offset]
            )
            buffer[0:8] = bits.to_bytes(8, "little")
        else:
            raise OSError(errno.ENOTTY, "unknown ioctl")
        return 0

    def chip(self, path="/dev/gpiochip0"):
        return CharDevChip(path, opener=self.open, ioctl=self.ioctl, closer=self.close)


def test_leds_and_button_through_the_chip():
    kernel = FakeKernel()
    chip = kernel.chip()
    assert chip.label() == "pinctrl-bcm2711"
    status, attention = Led.request(chip, 17), Led.request(chip, 27)
    status.on()
    attention.on()
    attention.off()
    assert kernel.level == {17: True, 27: False}
    assert [u32(raw, 0) for raw in kernel.requests] == [17, 27]
    button = Button.request(chip, 22)
    assert not button.pressed()
    kernel.level[22] = True  # logical: the kernel applies active-low for us
    assert button.pressed()
    assert kernel.closed.count(3) == 4  # the chip file is closed after each call


def test_find_chip_by_label(tmp_path):
    (tmp_path / "gpiochip0").touch()
    (tmp_path / "gpiochip1").touch()
    labels = {"gpiochip0": "brcmvirt-gpio", "gpiochip1": "pinctrl-rp1"}
    found = find_chip(
        "pinctrl-rp1", tmp_path, chip=lambda path: FakeKernel(labels[path.name]).chip(path)
    )
    assert found.path.endswith("gpiochip1")
    with pytest.raises(DeviceAbsent):
        find_chip(
            "pinctrl-bcm2711", tmp_path, chip=lambda path: FakeKernel(labels[path.name]).chip(path)
        )
    with pytest.raises(DeviceAbsent):
        FakeKernel(present=False).chip().label()


# --- the factory-reset button ------------------------------------------------------


def run(samples, watcher=None):
    """Feed (time, pressed) samples; return [(time, event)] for each event."""
    watcher = watcher or ButtonWatcher()
    return [
        (t, event) for t, pressed in samples if (event := watcher.update(pressed, t)) is not None
    ]


def held(start, end, step=0.5):
    return [(start + i * step, True) for i in range(int((end - start) / step) + 1)]


def test_hold_10s_then_press_again_confirms():
    samples = held(0, 12) + [(12.5, False), (20.0, False), (25.0, True), (25.5, False)]
    assert run(samples) == [(10.0, "reset-requested"), (25.0, "reset-confirmed")]


def test_no_second_press_expires_30s_after_release():
    samples = held(0, 11) + [(11.5, False), (41.0, False), (41.6, False), (50.0, False)]
    assert run(samples) == [(10.0, "reset-requested"), (41.6, "reset-expired")]


def test_a_late_press_does_not_confirm():
    samples = held(0, 10) + [(10.5, False), (45.0, True), (45.5, False)]
    assert run(samples) == [(10.0, "reset-requested"), (45.0, "reset-expired")]


def test_short_presses_and_a_9s_hold_do_nothing():
    samples = (
        [(0, True), (0.3, False), (1, True), (1.2, False)]
        + held(2, 11)
        + [(11.5, False), (60, False)]
    )
    assert run(samples) == []


def test_state_while_holding():
    watcher = ButtonWatcher()
    watcher.update(True, 100.0)
    assert watcher.state == "holding"
    assert watcher.update(True, 109.9) is None
    assert watcher.update(True, 110.0) == "reset-requested"
    assert watcher.state == "requested"
    assert watcher.update(True, 130.0) is None  # still held: no second press yet
    watcher.update(False, 131.0)
    assert watcher.state == "awaiting-confirm"
    assert watcher.update(True, 160.9) == "reset-confirmed"
    assert watcher.state == "idle"

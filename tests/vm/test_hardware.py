"""The hardware drivers in the guest, on a real kernel I2C bus: i2c-stub with chips at
the display's, the clock's and the sensor's addresses, through /dev/i2c-N and smbus2."""

import json
import textwrap

import pytest

pytestmark = pytest.mark.vm

PYTHON = ["env", "PYTHONPATH=/usr/lib/commonsbox/python", "python3", "-c"]


def test_the_drivers_run_on_a_kernel_i2c_bus(vm):
    assert json.loads(vm.run(["commonsbox", "hardware", "status", "--json"], check=True).stdout)[
        "devices"]["i2c_bus"]["state"] == "absent"  # no bus yet: reported, not an error
    for module in (["i2c-dev"], ["i2c-stub", "chip_addr=0x3c,0x48,0x68"]):
        vm.run(["modprobe", *module], check=True)
    script = textwrap.dedent("""
        from smbus2 import SMBus
        from hardware.boards import detect, i2c_bus_number
        from hardware.i2c.rtc import RealTimeClock, from_system
        number = i2c_bus_number(detect())
        assert number is not None, "no i2c-stub adapter found"
        bus = SMBus(number)
        bus.write_i2c_block_data(0x48, 0, [0x19, 0x80])  # the sensor reads 25.5 C
        assert from_system(RealTimeClock(bus, kind="ds3231")).applied
    """)
    done = vm.run([*PYTHON, script])
    assert done.rc == 0, done.stderr + vm.run(["sh", "-c", "grep . /sys/bus/i2c/devices/*/name"]).stdout
    status = json.loads(vm.run(["commonsbox", "hardware", "status", "--json"], check=True).stdout)
    devices, readings = status["devices"], status["readings"]
    assert status["board"]["id"] == "qemu-amd64"
    assert devices["i2c_bus"]["state"] == "present"
    assert devices["temperature"]["state"] == "present" and readings["temperature_c"] == 25.5
    assert devices["rtc"]["state"] == "present" and readings["rtc_trusted"] is True
    assert devices["display"]["state"] == "present"

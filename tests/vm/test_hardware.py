"""The box's hardware in the guest: the hardware service under systemd with its sandbox,
PID 1's watchdog settings, and the drivers on a real kernel I2C bus: i2c-stub with chips
at the display's, the clock's and the sensor's addresses, through /dev/i2c-N and smbus2.
The tests run in this order: no devices, the chips loaded, a clock that is ahead, the
bus gone again."""

import json
import re
import textwrap
import time

import pytest

pytestmark = pytest.mark.vm

PYTHON = ["env", "PYTHONPATH=/usr/lib/commonsbox/python", "python3", "-c"]
UNIT = "commonsbox-hardware"


def journal(vm) -> str:
    return vm.run(["journalctl", "-b", "-u", UNIT, "-o", "cat", "--no-pager"], timeout=60).stdout


def show(vm, *properties: str) -> dict[str, str]:
    out = vm.run(["systemctl", "show", UNIT, *(f"-p{p}" for p in properties)], check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def said(vm, text: str, since: int = 0, timeout: float = 60) -> str:
    """The service's journal from character SINCE on, once it holds TEXT (the service
    logs a device when what it knows of it changes)."""
    deadline = time.monotonic() + timeout
    while True:
        log = journal(vm)[since:]
        if text in log or time.monotonic() > deadline:
            assert text in log, log[-3000:]
            return log
        time.sleep(1)


def in_guest(vm, script: str):
    done = vm.run([*PYTHON, textwrap.dedent(script)], timeout=120)
    assert done.rc == 0, done.stderr
    return done.stdout


def test_the_hardware_service_runs_sandboxed_without_any_device(vm):
    vm.wait_active(UNIT)
    unit = show(
        vm,
        "MainPID",
        "NRestarts",
        "CapabilityBoundingSet",
        "DevicePolicy",
        "ProtectSystem",
        "IPAddressDeny",
        "MemoryCurrent",
    )
    assert unit["NRestarts"] == "0" and unit["CapabilityBoundingSet"] == "cap_sys_time"
    assert unit["DevicePolicy"] == "closed" and unit["ProtectSystem"] == "strict"
    assert int(unit["MemoryCurrent"]) < 64 * 2**20
    timing = show(vm, "ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic")
    print(
        f"hardware service: {int(unit['MemoryCurrent']) / 2**20:.1f} MiB, READY "
        f"{(int(timing['ActiveEnterTimestampMonotonic']) - int(timing['ExecMainStartTimestampMonotonic'])) / 1e6:.1f} s "
        "after its start"
    )
    pid = unit["MainPID"]
    status = vm.run(["cat", f"/proc/{pid}/status"], check=True).stdout
    # Its own user, not root, with setting the clock its one capability.
    uid = vm.run(["id", "-u", "commonsbox-hw"], check=True).stdout.strip()
    assert uid != "0" and re.search(rf"^Uid:\s+{uid}\s", status, re.M), status
    assert re.search(r"^CapBnd:\s+0*2000000$", status, re.M)  # CAP_SYS_TIME (25) only
    assert re.search(r"^CapEff:\s+0*2000000$", status, re.M)
    # The agent answers it: what the display shows comes from the API, as this user.
    log = said(vm, "the box is ")
    assert "not usable" not in log and "may not use this API" not in log
    log = said(vm, "GPIO (LEDs and button): absent (qemu-amd64 has no GPIO header)")
    assert "board: qemu-amd64" in log
    assert "I2C bus: absent (no adapter named 'SMBus stub driver')" in log
    assert "status display: absent (no I2C bus)" in log
    assert "Traceback" not in log
    # i2c-dev is loaded at boot; PID 1 owns the watchdog settings; the service holds
    # neither the watchdog nor an I2C bus open.
    assert vm.run(["test", "-d", "/sys/module/i2c_dev"]).rc == 0
    manager = vm.run(
        ["systemctl", "show", "-pRuntimeWatchdogUSec", "-pRebootWatchdogUSec"], check=True
    ).stdout.split()
    assert manager == ["RuntimeWatchdogUSec=15s", "RebootWatchdogUSec=15s"]
    fds = vm.run(["sh", "-c", f"readlink /proc/{pid}/fd/*"], check=True).stdout
    assert "/dev/watchdog" not in fds and "/dev/i2c" not in fds


def test_the_drivers_run_on_a_kernel_i2c_bus(vm):
    assert (
        json.loads(vm.run(["commonsbox", "hardware", "status", "--json"], check=True).stdout)[
            "devices"
        ]["i2c_bus"]["state"]
        == "absent"
    )  # no bus yet: reported, not an error
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
    assert done.rc == 0, (
        done.stderr + vm.run(["sh", "-c", "grep . /sys/bus/i2c/devices/*/name"]).stdout
    )
    status = json.loads(vm.run(["commonsbox", "hardware", "status", "--json"], check=True).stdout)
    devices, readings = status["devices"], status["readings"]
    assert status["board"]["id"] == "qemu-amd64"
    assert devices["i2c_bus"]["state"] == "present"
    assert devices["temperature"]["state"] == "present" and readings["temperature_c"] == 25.5
    assert devices["rtc"]["state"] == "present" and readings["rtc_trusted"] is True
    assert devices["display"]["state"] == "present"


def test_the_service_finds_the_chips_and_leaves_a_right_clock_alone(vm):
    before = time.time() - int(vm.run(["date", "+%s"], check=True).stdout)
    vm.run(["systemctl", "reload", UNIT], check=True)  # look now, not within the minute
    said(vm, "status display: present (SSD1306 128x64)")  # (no display before i2c-stub)
    log = said(vm, "the display shows: ")
    bus = re.search(r"I2C bus: present \((/dev/i2c-\d+)\)", log)
    assert bus
    # udev gave the service's group the bus (it is not root).
    owner = vm.run(["stat", "-c", "%U:%G %a", bus.group(1)], check=True).stdout.split()
    assert owner == ["root:commonsbox-hw", "660"]
    assert "real-time clock: present (DS3231)" in log
    assert "system clock left as it is: the system clock" in log  # not behind the RTC
    assert "system clock set" not in log
    after = time.time() - int(vm.run(["date", "+%s"], check=True).stdout)
    assert abs(after - before) < 5  # the guest's clock did not move


def test_a_trusted_clock_ahead_of_an_unsynchronised_system_clock_sets_it(vm):
    """What a box that was off for a while does at boot, under the unit's sandbox
    (CAP_SYS_TIME, @clock): the clock set five minutes ahead, then put back."""
    in_guest(
        vm,
        """
        from datetime import UTC, datetime, timedelta
        from smbus2 import SMBus
        from hardware.boards import detect, i2c_bus_number
        from hardware.i2c.rtc import RealTimeClock
        rtc = RealTimeClock(SMBus(i2c_bus_number(detect())), kind="ds3231")
        rtc.set(datetime.now(UTC) + timedelta(minutes=5))
    """,
    )
    skew = time.time() - int(vm.run(["date", "+%s"], check=True).stdout)
    start = len(journal(vm))
    try:
        vm.run(["systemctl", "restart", UNIT], check=True, timeout=180)
        said(vm, "system clock set from the real-time clock", start)
        moved = skew - (time.time() - int(vm.run(["date", "+%s"], check=True).stdout))
        assert 200 <= moved <= 305  # five minutes, less the time until it was read
    finally:  # the guest's clock back where it was
        vm.run(["date", "-s", f"@{int(time.time() - skew)}"], check=True)
        in_guest(
            vm,
            """
            from smbus2 import SMBus
            from hardware.boards import detect, i2c_bus_number
            from hardware.i2c.rtc import RealTimeClock, from_system
            assert from_system(RealTimeClock(SMBus(i2c_bus_number(detect())), kind="ds3231")).applied
        """,
        )
    vm.wait_active(UNIT)


def test_the_service_survives_the_bus_going_away(vm):
    pid = show(vm, "MainPID")["MainPID"]
    # The service holds no bus open between uses: the adapter can be unloaded. It may
    # notice by itself before the reload (a redraw, the minute's clock check).
    start = len(journal(vm))
    assert vm.run(["modprobe", "-r", "i2c-stub"]).rc == 0
    vm.run(["systemctl", "reload", UNIT], check=True)
    said(vm, "status display: absent (no I2C bus)", start)
    unit = show(vm, "MainPID", "ActiveState", "NRestarts")
    assert (unit["MainPID"], unit["ActiveState"]) == (pid, "active")
    assert "Traceback" not in journal(vm)
    status = json.loads(vm.run(["commonsbox", "hardware", "status", "--json"], check=True).stdout)
    assert status["devices"]["i2c_bus"]["state"] == "absent"

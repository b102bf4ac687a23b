"""An A/B update on the qemu-arm64 test image, through its real bootloader (AAVMF + GRUB),
as tests/vm/test_update.py does on qemu-amd64: version N, with a device and a phone's
tunnel up, installs N+1 from a bundle served on this machine; the box restarts into
root B, the health gate keeps it, and the device list and the phone's tunnel are as
they were; then a broken N+2 (its agent cannot start) is given up by the gate and the box
comes back to N+1 by itself, and says so. Emulated arm64 is slow (minutes a boot):
`make test-slow` runs it."""

import time

import pytest

from .conftest import build_next, serving, sign_next
from .guest import after_restart, cli, fetch, phone_namespace, wait_for
from .test_arm64 import _build

pytestmark = [pytest.mark.vm, pytest.mark.slow]

BOARD = "qemu-arm64"
CARD_MIB = 4096
PHONE_NET = "10.254.79"
ARM64_TIMEOUT = 1500.0  # the agent's first answer under TCG, at worst; a boot takes minutes
GATE_MINUTES = 3  # the latest a broken version is given up after the gate starts


@pytest.fixture(scope="module")
def arm64_image(update_key):
    return _build(BOARD, test=True, update_cert=update_key[1])


@pytest.fixture(scope="module")
def arm64_next(arm64_image, update_key, tmp_path_factory):
    """N+1 and a broken N+2, as bundles served over HTTP on this machine:
    (the address, N+1's version, N+2's)."""
    next_image = build_next(BOARD, arm64_image, update_key, tmp_path_factory.mktemp("next-arm64"))
    folder, running, broken = sign_next(
        arm64_image, next_image, update_key, tmp_path_factory.mktemp("served-arm64")
    )
    with serving(folder) as url:
        yield url, running, broken


@pytest.fixture(scope="module")
def arm64_box(arm64_image, tmp_path_factory):
    from cbvm import VM

    vm = VM(arm64_image, tmp_path_factory.mktemp("vm-arm64-update"), card_mib=CARD_MIB)
    vm.start()
    try:
        vm.status = vm.wait_ready(ARM64_TIMEOUT)
        print(f"qemu-arm64: agent ready {vm.ready_after:.0f} s after QEMU started")
        vm.wait_active("commonsbox-webui", timeout=ARM64_TIMEOUT)
        yield vm
    finally:
        vm.stop()
        vm.cleanup()


@pytest.fixture
def phone_ns():
    with phone_namespace(PHONE_NET) as ns:
        yield ns


def test_an_arm64_box_updates_through_grub_and_keeps_the_household_s_tunnel(
    arm64_box, arm64_next, phone_ns, tmp_path
):
    from cblab.sandbox import Phone

    served, next_version, _ = arm64_next
    vm = arm64_box
    before = cli(vm, "update", "status")
    assert before["takes_updates"] and (before["booted"], before["primary"]) == ("A", "A")

    port = vm.wireguard_port
    vm.forward("udp", f"{PHONE_NET}.1", port, 51820)
    vm.run(["commonsbox", "vpn", "set", "--endpoint", f"{PHONE_NET}.1:{port}"], check=True)
    added = cli(vm, "vpn", "device", "add", "arm64-phone")
    config = vm.run(
        ["commonsbox", "vpn", "device", "show", str(added["device"]["id"])], check=True
    ).stdout
    phone = Phone(phone_ns, "cbarmwg0", tmp_path)
    phone.up(config)
    box_ip = vm.status["vpn"]["ipv4_subnet"].rsplit(".", 1)[0] + ".1"
    assert wait_for(lambda: phone_ns.ping(box_ip, count=1, timeout=3), 60)

    bundle = fetch(vm, f"{served}/next.raucb", "next.raucb")
    t0 = time.monotonic()
    done = cli(vm, "update", "install", bundle, timeout=1800)
    installed = time.monotonic()
    assert (done["version"], done["slot"], done["reboot"]) == (next_version, "B", True)

    status = after_restart(vm, next_version, timeout=2 * ARM64_TIMEOUT)
    kept = time.monotonic()
    print(
        f"ARM64 UPDATE: install {installed - t0:.1f} s, install -> kept {kept - t0:.1f} s "
        "(restart, AAVMF, GRUB, the boot, the gate) under TCG"
    )
    assert (status["booted"], status["primary"], status["in_trial"]) == ("B", "B", False)
    assert status["last"]["outcome"] == "committed"
    assert status["last"]["version"] == next_version
    cmdline = vm.run(["cat", "/proc/cmdline"], check=True).stdout.split()
    assert "rauc.slot=B" in cmdline, cmdline
    assert f"root=PARTUUID={vm.info['partitions']['rootB']}" in cmdline, cmdline
    assert [d["name"] for d in cli(vm, "vpn", "device", "list")] == ["arm64-phone"]
    assert wait_for(lambda: phone_ns.ping(box_ip, count=1, timeout=3), 120)


def test_a_broken_arm64_update_is_given_up_and_the_box_comes_back_by_itself(arm64_box, arm64_next):
    served, running, broken = arm64_next
    vm = arm64_box
    bundle = fetch(vm, f"{served}/broken.raucb", "broken.raucb")
    t0 = time.monotonic()
    done = cli(vm, "update", "install", bundle, "--gate-minutes", str(GATE_MINUTES), timeout=1800)
    assert (done["version"], done["slot"]) == (broken, "A")

    status = after_restart(vm, running, timeout=2 * ARM64_TIMEOUT)
    print(f"ARM64 ROLLBACK: install -> back on {running} {time.monotonic() - t0:.1f} s under TCG")
    assert (status["booted"], status["primary"], status["in_trial"]) == ("B", "B", False)
    last = status["last"]
    assert (last["version"], last["from"], last["outcome"]) == (broken, running, "rolled back")
    assert any(lost.startswith("the agent does not answer") for lost in last["lost"]), last
    assert "rauc.slot=B" in vm.run(["cat", "/proc/cmdline"], check=True).stdout.split()
    health = {(c["capability"], c["name"]): c for c in cli(vm, "status")["health"]}
    assert not health[("update", "last update")]["ok"]
    assert broken in health[("update", "last update")]["detail"]
    assert [d["name"] for d in cli(vm, "vpn", "device", "list")] == ["arm64-phone"]

"""Board detection from device-tree and DMI files laid out under a tmp root."""

import pytest

from hardware.boards import detect, i2c_bus_number


def tree(root, files):
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def test_pi4_from_device_tree(tmp_path):
    root = tree(
        tmp_path,
        {
            "proc/device-tree/compatible": b"raspberrypi,4-model-b\0brcm,bcm2711\0",
            "proc/device-tree/model": b"Raspberry Pi 4 Model B Rev 1.5\0",
        },
    )
    board = detect(root)
    assert board.id == "rpi4"
    assert board.model == "Raspberry Pi 4 Model B Rev 1.5"
    assert board.i2c_bus == 1 and i2c_bus_number(board, root) == 1
    assert board.gpio_chip == "pinctrl-bcm2711"
    assert (board.status_led_line, board.attention_led_line, board.button_line) == (17, 27, 22)
    assert board.watchdog_path == "/dev/watchdog"


def test_pi5_from_device_tree(tmp_path):
    root = tree(
        tmp_path,
        {
            "proc/device-tree/compatible": b"raspberrypi,5-model-b\0brcm,bcm2712\0",
            "proc/device-tree/model": b"Raspberry Pi 5 Model B Rev 1.0\0",
        },
    )
    board = detect(root)
    assert (board.id, board.model, board.i2c_bus) == ("rpi5", "Raspberry Pi 5 Model B Rev 1.0", 1)
    assert board.gpio_chip == "pinctrl-rp1"


@pytest.mark.parametrize(
    "compatible, board_id",
    [
        (b"raspberrypi,400\0brcm,bcm2711\0", "rpi4"),
        (b"raspberrypi,4-compute-module\0brcm,bcm2711\0", "rpi4"),
        (b"raspberrypi,5-compute-module\0brcm,bcm2712\0", "rpi5"),
        (b"raspberrypi,3-model-b\0brcm,bcm2837\0", "unknown"),  # not a supported box
    ],
)
def test_pi_family_from_the_soc(tmp_path, compatible, board_id):
    assert detect(tree(tmp_path, {"proc/device-tree/compatible": compatible})).id == board_id


def test_qemu_arm64_virt_device_tree(tmp_path):
    board = detect(tree(tmp_path, {"proc/device-tree/compatible": b"linux,dummy-virt\0"}))
    assert board.id == "qemu-arm64"
    assert not board.has_gpio and board.i2c_bus is None


def test_qemu_amd64_from_dmi(tmp_path):
    root = tree(
        tmp_path,
        {
            "sys/class/dmi/id/sys_vendor": "QEMU\n",
            "sys/class/dmi/id/product_name": "Standard PC (Q35 + ICH9, 2009)\n",
        },
    )
    board = detect(root, machine="x86_64")
    assert board.id == "qemu-amd64"
    assert board.model == "QEMU Standard PC (Q35 + ICH9, 2009)"


def test_qemu_arm64_booted_by_uefi_has_only_dmi(tmp_path):
    root = tree(
        tmp_path,
        {
            "sys/class/dmi/id/sys_vendor": "QEMU\n",
            "sys/class/dmi/id/product_name": "QEMU Virtual Machine\n",
        },
    )
    assert detect(root, machine="aarch64").id == "qemu-arm64"


def test_unknown_machine(tmp_path):
    root = tree(
        tmp_path,
        {"sys/class/dmi/id/sys_vendor": "LENOVO\n", "sys/class/dmi/id/product_name": "20XW\n"},
    )
    board = detect(root)
    assert (board.id, board.model, board.i2c_bus) == ("unknown", "LENOVO 20XW", None)
    assert i2c_bus_number(board, root) is None
    assert detect(tmp_path / "empty").id == "unknown"


def test_qemu_finds_the_i2c_stub_bus_by_name(tmp_path):
    root = tree(
        tmp_path,
        {
            "proc/device-tree/compatible": b"linux,dummy-virt\0",
            "sys/bus/i2c/devices/i2c-0/name": "i801 SMBus adapter\n",
            "sys/bus/i2c/devices/i2c-3/name": "SMBus stub driver\n",
        },
    )
    assert i2c_bus_number(detect(root), root) == 3
    (root / "sys/bus/i2c/devices/i2c-3/name").unlink()
    assert i2c_bus_number(detect(root), root) is None  # i2c-stub not loaded

"""The Raspberry Pi's A/B boot through the firmware's tryboot, against a fake device tree and
a fake common partition: the firmware here is a few lines that read autoboot.txt by its
documented rules, not our parser, so what we write is checked against what the Pi would do."""

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.update.boot import BootError, rauc_custom
from appliance.update.boot.tryboot import BOOT_PARTITIONS, TrybootBackend, render

FRESH = "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=2\n"


def firmware_picks(autoboot: str, tryboot: bool) -> int:
    """The partition the Pi firmware boots (raspberrypi/documentation config_txt/autoboot.adoc):
    lines under [all] apply always, under [tryboot] only when the tryboot flag is set, under
    [none] never; the last boot_partition read wins."""
    applies, partition = True, 0
    for line in autoboot.splitlines():
        line = line.strip()
        if line in ("[all]", "[tryboot]", "[none]"):
            applies = line == "[all]" or (line == "[tryboot]" and tryboot)
        elif applies and line.startswith("boot_partition="):
            partition = int(line.split("=", 1)[1])
    return partition


def cell(value: int) -> bytes:
    return struct.pack(">I", value)


class Pi:
    """A card and its firmware: boot() reads autoboot.txt as the firmware does and writes the
    /chosen/bootloader properties it would pass to Linux; reboot() records what was asked."""

    def __init__(self, tmp_path, autoboot=FRESH):
        self.dt = tmp_path / "device-tree" / "chosen" / "bootloader"
        self.common = tmp_path / "boot" / "common"
        self.dt.mkdir(parents=True)
        self.common.mkdir(parents=True)
        (self.common / "autoboot.txt").write_text(autoboot)
        self.reboots: list[str | None] = []
        self.box = TrybootBackend(
            device_tree=self.dt, common=self.common, reboot=self.reboots.append
        )
        self.boot(tryboot=False)

    @property
    def autoboot(self) -> str:
        return (self.common / "autoboot.txt").read_text()

    def boot(self, tryboot: bool):
        """A reset (power cut, panic, watchdog) when tryboot is False."""
        (self.dt / "tryboot").write_bytes(cell(int(tryboot)))
        (self.dt / "partition").write_bytes(cell(firmware_picks(self.autoboot, tryboot)))

    def reboot_as_asked(self):
        """The reboot the box asked for last: `reboot "0 tryboot"` sets the firmware's one-shot flag."""
        self.boot(tryboot="tryboot" in (self.reboots[-1] or ""))


@pytest.fixture
def pi(tmp_path):
    return Pi(tmp_path)


def update_to_b(pi):
    """What RAUC does installing into slot B, then the box's trial reboot."""
    pi.box.mark_bad("B")  # before writing the slot
    pi.box.set_primary("B")  # after writing it
    pi.box.reboot()
    pi.reboot_as_asked()


def test_a_fresh_box_runs_a_and_tries_nothing(pi):
    assert pi.box.booted() == "A"
    assert pi.box.primary() == "A"
    assert not pi.box.is_trial()
    assert pi.box.state("A") == "good"
    assert pi.box.state("B") == "bad"  # empty on a fresh card
    pi.box.reboot()
    assert pi.reboots == [None]  # a plain reboot: nothing to try
    pi.reboot_as_asked()
    assert pi.box.booted() == "A"


def test_the_autoboot_txt_written_is_exactly_the_documented_form():
    assert render(primary="A", trial="A") == FRESH
    assert render(primary="A", trial="B") == (
        "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n"
    )
    assert BOOT_PARTITIONS == {"A": 2, "B": 3}


def test_set_primary_arms_one_trial_and_the_trial_reboot_boots_it(pi):
    pi.box.mark_bad("B")
    pi.box.set_primary("B")
    assert pi.autoboot == "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n"
    assert pi.box.primary() == "A"  # a reset still boots A
    assert pi.box.state("B") == "good"  # written whole and may be tried
    assert not any(p.name.endswith(".new") for p in pi.common.iterdir())
    pi.box.reboot()
    assert pi.reboots == ["0 tryboot"]
    pi.reboot_as_asked()
    assert pi.box.booted() == "B"
    assert pi.box.is_trial()
    assert pi.box.primary() == "A"


def test_a_trial_not_marked_good_leaves_the_old_slot_primary(pi):
    update_to_b(pi)
    before = pi.autoboot
    assert pi.box.booted() == "B" and pi.box.is_trial()
    pi.boot(tryboot=False)  # B hangs or panics: the watchdog resets the board
    assert pi.box.booted() == "A"
    assert not pi.box.is_trial()
    assert pi.box.primary() == "A"
    assert pi.autoboot == before  # the firmware wrote nothing, nor did we


def test_marking_the_trial_good_commits_it(pi):
    update_to_b(pi)
    pi.box.mark_good("B")
    assert pi.autoboot == "[all]\ntryboot_a_b=1\nboot_partition=3\n[tryboot]\nboot_partition=3\n"
    assert pi.box.primary() == "B"
    pi.box.reboot()
    assert pi.reboots[-1] is None  # nothing left to try
    pi.reboot_as_asked()
    assert pi.box.booted() == "B" and not pi.box.is_trial()
    pi.boot(tryboot=False)  # and a power cut boots B too
    assert pi.box.booted() == "B"
    pi.box.mark_good("B")  # the gate runs on every boot: marking a committed slot is a no-op
    assert pi.box.primary() == "B"


def test_a_failed_health_gate_disarms_the_trial_and_reboots_into_the_old_slot(pi):
    update_to_b(pi)
    pi.box.mark_bad("B")
    assert pi.box.state("B") == "bad"
    assert pi.autoboot == FRESH
    pi.box.reboot()
    assert pi.reboots[-1] is None
    pi.reboot_as_asked()
    assert pi.box.booted() == "A" and pi.box.primary() == "A"


def test_the_next_update_after_a_commit_goes_into_a(pi):
    update_to_b(pi)
    pi.box.mark_good("B")
    pi.reboot_as_asked()
    pi.box.mark_bad("A")
    pi.box.set_primary("A")
    pi.box.reboot()
    pi.reboot_as_asked()
    assert (pi.box.booted(), pi.box.is_trial(), pi.box.primary()) == ("A", True, "B")
    pi.box.mark_good("A")
    assert pi.autoboot == FRESH


def test_installing_during_a_trial_would_mark_the_committed_slot_bad_and_is_refused(pi):
    update_to_b(pi)
    before = pi.autoboot
    with pytest.raises(BootError, match="slot A is what the box boots after a reset"):
        pi.box.mark_bad("A")  # RAUC's first step installing into the slot other than B
    assert pi.autoboot == before


def test_only_a_booted_slot_is_marked_good(pi):
    with pytest.raises(BootError, match="slot B has not booted"):
        pi.box.mark_good("B")
    assert pi.autoboot == FRESH


def test_set_primary_of_the_committed_slot_disarms_a_trial(pi):
    pi.box.set_primary("B")
    pi.box.set_primary("A")
    assert pi.autoboot == FRESH
    pi.box.reboot()
    assert pi.reboots == [None]


def test_a_bootloader_without_tryboot_a_b_is_refused_before_anything_is_armed(pi):
    # /chosen/bootloader/capabilities bit 2: TRYBOOT_A_B, bit 3: TRYBOOT (EEPROM from 2022-11-25)
    (pi.dt / "capabilities").write_bytes(cell(0b0011))
    with pytest.raises(BootError, match="bootloader is too old"):
        pi.box.set_primary("B")
    assert pi.autoboot == FRESH
    (pi.dt / "capabilities").write_bytes(cell(0b1111))
    pi.box.set_primary("B")
    assert pi.box.state("B") == "good"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "no boot_partition"),
        ("\x00\xff\x17garbage", "line 1"),
        ("[all]\ntryboot_a_b=1\nboot_partition=5\n", "partition 5, which is no slot"),
        ("[all]\ntryboot_a_b=1\nboot_partition=two\n", "line 3"),
        ("[all]\nboot_partition=2\n[tryboot]\nboot_partition=3\n", "tryboot_a_b=1"),
        ("[pi4]\ntryboot_a_b=1\nboot_partition=2\n", r"\[pi4\]"),
        ("[all]\ntryboot_a_b=1\nkernel=vmlinuz\nboot_partition=2\n", "kernel"),
        ("[all]\ntryboot_a_b=1\nboot_partition=2\n#" + "x" * 600 + "\n", "512 bytes"),
    ],
)
def test_a_corrupt_autoboot_txt_is_a_clear_error_and_nothing_is_written(pi, text, message):
    (pi.common / "autoboot.txt").write_text(text, errors="surrogateescape")
    with pytest.raises(BootError, match=message):
        pi.box.primary()
    with pytest.raises(BootError, match=message):
        pi.box.set_primary("B")
    assert (pi.common / "autoboot.txt").read_text(errors="surrogateescape") == text


def test_comments_and_blank_lines_are_what_the_firmware_ignores(pi):
    (pi.common / "autoboot.txt").write_text(
        "# hand-made\n\n[all]\ntryboot_a_b=1\nboot_partition=3\n[tryboot]\nboot_partition=2\n"
    )
    assert pi.box.primary() == "B"
    assert pi.box.state("A") == "good"  # armed for a trial


def test_a_missing_common_partition_is_a_clear_error(pi):
    (pi.common / "autoboot.txt").unlink()
    with pytest.raises(BootError, match="autoboot.txt.*common partition mounted"):
        pi.box.primary()


def test_a_leftover_from_an_interrupted_write_is_ignored_and_replaced(pi):
    (pi.common / "autoboot.txt.new").write_text("half a fi")
    assert pi.box.primary() == "A"
    pi.box.set_primary("B")
    assert not (pi.common / "autoboot.txt.new").exists()
    assert pi.box.state("B") == "good"


@pytest.mark.parametrize("node", ["tryboot", "partition"])
def test_a_missing_device_tree_node_is_a_clear_error(pi, node):
    (pi.dt / node).unlink()
    with pytest.raises(BootError, match=f"chosen/bootloader/{node}.*Raspberry Pi firmware"):
        pi.box.booted() if node == "partition" else pi.box.is_trial()


def test_a_malformed_device_tree_cell_is_a_clear_error(pi):
    (pi.dt / "tryboot").write_bytes(b"\x01")
    with pytest.raises(BootError, match="not a 32-bit cell"):
        pi.box.is_trial()
    (pi.dt / "partition").write_bytes(cell(7))
    with pytest.raises(BootError, match="partition 7"):
        pi.box.booted()


def test_the_trial_reboot_passes_its_argument_to_reboot2(monkeypatch):
    from appliance.update.boot import tryboot

    calls = []
    monkeypatch.setattr(tryboot.subprocess, "run", lambda argv, check: calls.append(argv))
    tryboot.systemctl_reboot("0 tryboot")
    tryboot.systemctl_reboot(None)
    assert calls == [
        ["systemctl", "reboot", "--reboot-argument=0 tryboot"],
        ["systemctl", "reboot"],
    ]


# RAUC's bootloader=custom calls its handler with these verbs (rauc src/bootloaders/custom.c):
# the answer on stdout, exit status 0 for success.


def rauc(pi, *argv, capsys):
    code = rauc_custom.main(list(argv), backend=pi.box)
    out, err = capsys.readouterr()
    return code, out, err


def test_rauc_get_verbs(pi, capsys):
    assert rauc(pi, "get-primary", capsys=capsys) == (0, "A\n", "")
    assert rauc(pi, "get-current", capsys=capsys) == (0, "A\n", "")
    assert rauc(pi, "get-state", "A", capsys=capsys) == (0, "good\n", "")
    assert rauc(pi, "get-state", "B", capsys=capsys) == (0, "bad\n", "")


def test_rauc_install_then_trial_then_mark_good(pi, capsys):
    assert rauc(pi, "set-state", "B", "bad", capsys=capsys) == (0, "", "")
    assert rauc(pi, "set-primary", "B", capsys=capsys) == (0, "", "")
    assert rauc(pi, "get-state", "B", capsys=capsys) == (0, "good\n", "")
    pi.box.reboot()
    pi.reboot_as_asked()
    assert rauc(pi, "get-current", capsys=capsys) == (0, "B\n", "")
    assert rauc(pi, "get-primary", capsys=capsys) == (0, "A\n", "")
    assert rauc(pi, "set-state", "B", "good", capsys=capsys) == (0, "", "")
    assert rauc(pi, "get-primary", capsys=capsys) == (0, "B\n", "")


def test_rauc_errors_are_one_line_on_stderr_and_exit_1(pi, capsys):
    pi.box.set_primary("B")
    pi.box.reboot()
    pi.reboot_as_asked()
    code, out, err = rauc(pi, "set-state", "A", "bad", capsys=capsys)
    assert (code, out) == (1, "")
    assert "slot A is what the box boots after a reset" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["get-primary", "A"],
        ["set-state", "B"],
        ["set-state", "B", "fine"],
        ["get-state", "C"],
        ["frob"],
    ],
)
def test_rauc_bad_calls_are_refused_with_usage(pi, capsys, argv):
    code, out, err = rauc(pi, *argv, capsys=capsys)
    assert code == 2 and out == "" and "usage" in err
    assert pi.autoboot == FRESH


def test_the_handler_runs_as_a_module_and_fails_cleanly_off_a_box(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    r = subprocess.run(
        [sys.executable, "-m", "appliance.update.boot.rauc_custom", "get-current"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 1 and r.stdout == ""
    assert "says nothing of its bootloader (/usr/lib/commonsbox/release.json)" in r.stderr
    assert "Traceback" not in r.stderr


# The image side: the common partition and one slot's boot partition, as the builder lays them.

VERSION = "6.12.99+deb13-arm64"


def unpacked_root(tmp_path, profile):
    """The few files of an unpacked root that a Pi's boot partition takes."""
    root = tmp_path / "root"
    for name in profile.boot["firmware"]:
        f = root / "usr/lib/raspi-firmware" / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"firmware " + name.encode())
    for dtb in profile.boot["device_trees"]:
        f = root / f"usr/lib/linux-image-{VERSION}" / dtb
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"dtb " + dtb.encode())
    work = tmp_path / "work"
    work.mkdir()
    (work / "vmlinuz").write_bytes(b"kernel")
    (work / "initrd.img").write_bytes(b"initrd")
    return root, work


@pytest.mark.parametrize("board", ["rpi4", "rpi5"])
@pytest.mark.parametrize("slot", ["A", "B"])
def test_each_slot_boot_partition_boots_its_own_root(tmp_path, board, slot):
    from cbimage import disk, raspi
    from cbimage.profile import load

    profile = load(board)
    root, work = unpacked_root(tmp_path, profile)
    puuid = raspi.partition_uuids(board)
    files = raspi.boot_files(
        profile, root, work, VERSION, work / "vmlinuz", work / "initrd.img", slot, puuid, 1700000000
    )
    firmware = set(profile.boot["firmware"])
    dtbs = {dtb.rsplit("/", 1)[1] for dtb in profile.boot["device_trees"]}
    assert set(files) == {"config.txt", "cmdline.txt", "vmlinuz", "initrd.img"} | firmware | dtbs
    assert files["config.txt"].read_text() == profile.boot["config_txt"]
    cmdline = files["cmdline.txt"].read_text()
    assert cmdline.endswith("\n") and cmdline.count("\n") == 1  # the firmware reads one line
    words = cmdline.split()
    assert f"root=PARTUUID={disk.partition_uuid(board, 'root' + slot)}" in words
    assert [w for w in words if w.startswith("root=")] == [words[0]]
    assert {"rw", "rootwait", "panic=10", f"console={profile.boot['console']},115200"} <= set(words)
    for name in firmware | dtbs:  # copies: the builder takes these directories out of the root
        assert not files[name].is_relative_to(root)
        assert files[name].read_bytes().endswith(name.encode())
    assert os.stat(files["cmdline.txt"]).st_mtime == 1700000000  # reproducible


def test_the_common_partition_holds_autoboot_txt_booting_a(tmp_path):
    from cbimage import raspi

    files = raspi.common_files(tmp_path, 1700000000)
    assert set(files) == {"autoboot.txt"}
    assert files["autoboot.txt"].read_text() == FRESH
    assert firmware_picks(FRESH, tryboot=False) == firmware_picks(FRESH, tryboot=True) == 2


def test_the_card_layout_numbers_the_boot_partitions_as_autoboot_txt_does(tmp_path):
    """p1 common, p2 boot A, p3 boot B, p4 root A, p5 data in the image; first boot's growth
    (appliance/storage/grow.py, unchanged) keeps them and makes root B p6 at the card's end."""
    import json

    from appliance.storage.grow import parse, plan
    from cbimage import disk, raspi

    image = tmp_path / "disk.img"
    disk.assemble(image, "rpi4", raspi.layout({"boot_mib": 8, "data_mib": 8}, 16, {}))
    with open(image, "r+b") as f:
        f.truncate(256 * 1024 * 1024)  # the card is bigger than the image

    def table():
        out = subprocess.run(
            ["sfdisk", "--json", image], capture_output=True, text=True, check=True
        )
        return parse(json.loads(out.stdout))

    before = table()
    names = {p.name: int(p.node.removeprefix(str(image))) for p in before.parts}
    assert names == {"common": 1, "bootA": 2, "bootB": 3, "rootA": 4, "data": 5}
    assert {slot: names["boot" + slot] for slot in ("A", "B")} == BOOT_PARTITIONS
    puuid = raspi.partition_uuids("rpi4")
    assert {p.name: p.uuid for p in before.parts} == {n: puuid[n] for n in names}
    boot_a, boot_b = before.find("bootA"), before.find("bootB")
    assert boot_a.size == boot_b.size  # RAUC writes either slot's image into either partition
    grown = plan(before, 256 * 2048, puuid["rootB"])
    subprocess.run(
        ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", image],
        input=grown.script(),
        text=True,
        check=True,
    )
    after = table()
    numbers = {p.name: int(p.node.removeprefix(str(image))) for p in after.parts}
    assert numbers == {**names, "rootB": 6}
    assert after.find("bootB") == boot_b


def test_the_builder_fat_tools_make_partitions_the_firmware_reads_back(tmp_path):
    """make_vfat (mkfs.vfat + mtools) holds the files byte for byte; read back with mtools."""
    from cbimage import disk, raspi
    from cbimage.profile import load

    profile = load("rpi4")
    root, work = unpacked_root(tmp_path, profile)
    puuid = raspi.partition_uuids("rpi4")
    common = tmp_path / "common.vfat"
    disk.make_vfat(
        common, raspi.COMMON_MIB, "CBCOMMON", raspi.common_files(work, 0), puuid["common"][:8], 0
    )
    boot = raspi.boot_files(
        profile, root, work, VERSION, work / "vmlinuz", work / "initrd.img", "B", puuid, 0
    )
    boot_b = tmp_path / "bootB.vfat"
    disk.make_vfat(boot_b, 8, "CBBOOTB", boot, puuid["bootB"][:8], 0)

    def read(image, name):
        return subprocess.run(
            ["mtype", "-i", image, f"::{name}"], capture_output=True, check=True
        ).stdout

    assert read(common, "autoboot.txt").decode() == FRESH
    for name, path in boot.items():
        assert read(boot_b, name) == path.read_bytes()
    assert f"root=PARTUUID={puuid['rootB']} ".encode() in read(boot_b, "cmdline.txt")

"""The GRUB backend (QEMU boards): PRIMARY boots, TRIAL is tried once, as grub.cfg reads them.

The "bootloader" here is a few lines that do what image/cbimage/grub.py's script does
with the environment block, written apart from the backend so that the two are checked
against each other."""

import contextlib
import subprocess

import pytest

from appliance.update.boot import BootError, grubenv
from appliance.update.boot.grub import ENV, GrubBackend


class Box:
    """An EFI system partition and a kernel command line in a temp dir, and GRUB."""

    def __init__(self, tmp_path):
        self.esp = tmp_path / "esp"
        (self.esp / ENV).parent.mkdir(parents=True)
        from cbimage import grub

        (self.esp / ENV).write_bytes(grub.environment())
        self.cmdline = tmp_path / "cmdline"
        self.reboots = 0
        self.backend = GrubBackend(
            esp=self.esp,
            cmdline=self.cmdline,
            reboot=self.count_reboot,
            mount=contextlib.nullcontext,
        )
        self.boot()

    def count_reboot(self):
        self.reboots += 1

    def boot(self) -> str:
        """What grub.cfg does: TRIAL once (cleared before it boots), else PRIMARY."""
        env = grubenv.read(self.esp / ENV)
        slot = env["PRIMARY"]
        if env.get("TRIAL") in ("A", "B"):
            slot = env["TRIAL"]
            grubenv.write(self.esp / ENV, {**env, "TRIAL": ""})
        self.cmdline.write_text(f"BOOT_IMAGE=/boot/vmlinuz root=PARTUUID=x rauc.slot={slot} rw\n")
        return slot


@pytest.fixture
def box(tmp_path):
    return Box(tmp_path)


def test_a_new_box_boots_a_and_tries_nothing(box):
    b = box.backend
    assert (b.booted(), b.primary(), b.is_trial()) == ("A", "A", False)
    assert (b.state("A"), b.state("B")) == ("good", "bad")


def test_a_trial_is_tried_once_and_a_reset_without_marking_it_good_boots_a_again(box):
    b = box.backend
    b.mark_bad("B")  # RAUC, before it writes the slot
    b.set_primary("B")  # RAUC, after it wrote it
    assert b.primary() == "A" and b.state("B") == "good"
    assert box.boot() == "B" and b.is_trial()
    assert box.boot() == "A"  # the trial panicked, hung or failed the gate: back by itself
    assert (b.booted(), b.primary(), b.is_trial()) == ("A", "A", False)


def test_marking_the_trial_good_makes_it_what_every_reset_boots(box):
    b = box.backend
    b.set_primary("B")
    box.boot()
    b.mark_good("B")
    assert (b.primary(), b.is_trial()) == ("B", False)
    assert box.boot() == "B" and box.boot() == "B"  # a power cut while it boots: B again
    b.set_primary("A")  # the next update goes into A
    assert box.boot() == "A" and b.is_trial()


def test_a_failed_gate_disarms_the_trial(box):
    b = box.backend
    b.set_primary("B")
    b.mark_bad("B")
    assert box.boot() == "A"


def test_what_would_lose_the_good_slot_is_refused_and_nothing_is_written(box):
    b = box.backend
    before = (box.esp / ENV).read_bytes()
    with pytest.raises(BootError, match="every reset boots"):
        b.mark_bad("A")
    with pytest.raises(BootError, match="not the one running"):
        b.mark_good("B")
    assert (box.esp / ENV).read_bytes() == before


@pytest.mark.parametrize(
    "block",
    [b"", b"# GRUB Environment Block\nPRIMARY=A\n", grubenv.render({"TRIAL": ""})],
    ids=["empty", "short", "no-primary"],
)
def test_a_broken_environment_is_a_clear_error(box, block):
    (box.esp / ENV).write_bytes(block)
    with pytest.raises(BootError, match="GRUB's environment"):
        box.backend.primary()


def test_the_block_is_grubs_1024_bytes_and_refuses_what_the_box_never_writes(tmp_path):
    block = grubenv.render({"PRIMARY": "B", "TRIAL": ""})
    assert len(block) == 1024 and grubenv.parse(block) == {"PRIMARY": "B", "TRIAL": ""}
    with pytest.raises(grubenv.BadEnv):
        grubenv.render({"PRIMARY": "B\nTRIAL=A"})
    path = tmp_path / "grubenv"
    grubenv.write(path, {"PRIMARY": "A"})
    if subprocess.run(["which", "grub-editenv"], capture_output=True).returncode == 0:
        listed = subprocess.run(["grub-editenv", path, "list"], capture_output=True, text=True)
        assert listed.stdout == "PRIMARY=A\n"


def test_grub_cfg_names_each_slot_its_own_root_and_tries_the_trial_once():
    from cbimage import grub

    cfg = grub.config({"A": "uuid-a", "B": "uuid-b"}, "rw console=ttyS0,115200")
    assert "load_env PRIMARY TRIAL" in cfg and "save_env TRIAL" in cfg
    assert cfg.index("set TRIAL=\n    save_env TRIAL") < cfg.index("menuentry")
    assert "root=PARTUUID=uuid-a rauc.slot=A rw" in cfg
    assert "($disk,gpt4)/boot/vmlinuz root=PARTUUID=uuid-b rauc.slot=B" in cfg

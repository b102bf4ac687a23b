"""The household's encrypted storage in the guest, whose kernel has device-mapper: a USB
disk plugged in through QMP becomes the storage, is locked and unlocked, keeps its data,
is pulled out while mail uses it, and opens after a reboot with a key on a USB stick."""

import json
import re
import shlex
import subprocess
import time

import pytest

from .guest import wait_for

pytestmark = pytest.mark.vm

PASSPHRASE = "our house, our keys 42"
PRIVATE = "/var/lib/commonsbox/private"


def cli(vm, *args, timeout=600):
    answer = vm.run(["commonsbox", *args, "--json"], timeout=timeout)
    return answer.rc, (json.loads(answer.stdout) if answer.rc == 0 else answer.stderr)


def put(vm, path, text):
    vm.run(["sh", "-c", f"umask 077; printf %s {shlex.quote(text)} > {path}"], check=True)


@pytest.fixture(scope="module")
def usb_image(tmp_path_factory):
    return tmp_path_factory.mktemp("usb") / "usb.img"


def test_a_usb_disk_becomes_the_encrypted_storage_and_keeps_the_data(vm, usb_image):
    image = usb_image
    with open(image, "wb") as f:
        f.truncate(256 * 1024 * 1024)
    vm.plug_usb_disk(image, "usbdisk")
    disk = wait_for(lambda: next((d for d in cli(vm, "storage", "disks")[1] if d["usb"]), None))
    assert disk["contents"] == "empty" and disk["size"] == 256 * 1024 * 1024 and not disk["system"]
    put(vm, "/run/pp", PASSPHRASE)

    rc, said = cli(
        vm,
        "storage",
        "format",
        disk["name"],
        "--confirm",
        "sda-please",
        "--passphrase-file",
        "/run/pp",
    )
    assert rc == 2 and "type its name exactly" in said, said
    assert cli(vm, "storage", "status")[1]["volume"] is None  # nothing happened

    # What the household kept unencrypted until now (and test_boot's mail and chat, if it ran).
    vm.run(["sh", "-c", f"mkdir -p {PRIVATE} && echo kept before > {PRIVATE}/before"], check=True)
    t0 = time.monotonic()
    rc, made = cli(
        vm,
        "storage",
        "format",
        disk["name"],
        "--confirm",
        disk["confirm_name"],
        "--passphrase-file",
        "/run/pp",
    )
    assert rc == 0, made
    print(f"formatted (argon2id, under TCG) in {time.monotonic() - t0:.1f} s")
    key, v = made["recovery_key"], made["status"]["volume"]
    assert v["cipher"] == "aes-xts" and v["mounted"] and v["present"]  # TCG's CPU has AES
    assert v["key_slots"] == {"passphrase": "argon2id", "recovery key": "argon2id"}
    assert vm.run(["findmnt", "-no", "SOURCE,FSTYPE", PRIVATE]).stdout.split() == [
        "/dev/mapper/cbprivate",
        "ext4",
    ]
    assert vm.run(["cat", f"{PRIVATE}/before"]).stdout == "kept before\n"  # moved onto it
    vm.run(["sh", "-c", f"echo family photos > {PRIVATE}/note; sync"], check=True)
    assert b"family photos" not in image.read_bytes(), "the disk holds only ciphertext"
    assert any(d["is_storage"] for d in cli(vm, "storage", "disks")[1])
    # At once, the services that keep data there may run (the agent plans from what it
    # read before the format only if told nothing changed behind it).
    rc, said = cli(vm, "files", "set", "on")
    assert rc == 0 and "start files" in {a for o in said["reconcile"] for a in o["actions"]}, said
    assert vm.run(["systemctl", "is-active", "commonsbox-files"]).stdout.strip() == "active"
    assert cli(vm, "files", "set", "off")[0] == 0
    # The configuration went with the data: the card keeps only the newest revision of
    # what opening the storage needs; the history and the relay's keys are on the volume
    # (test_boot turned mail on for box.test: its settings and DKIM key are history now;
    # run alone, turning the share on and off above made the history).
    history = cli(vm, "config", "history")[1]
    assert len(history) >= 3, history
    card = "/var/lib/commonsbox/state.db* /var/lib/commonsbox/secrets/secrets.db*"
    assert vm.run(["sh", "-c", f"grep -a -l -e box.test -e 'BEGIN PRIVATE KEY' {card}"]).rc == 1
    # Of the secrets only the VPN's, the accounts' and the installer's SSH host key (made
    # when test_boot turned SSH on): a locked box stays reachable.
    names = vm.run(
        [
            "python3",
            "-c",
            "import sqlite3\n"
            "db = 'file:/var/lib/commonsbox/secrets/secrets.db?mode=ro'\n"
            "for (name,) in sqlite3.connect(db, uri=True).execute('SELECT name FROM secrets'):\n"
            "    print(name)",
        ],
        check=True,
    ).stdout.split()
    assert names and all(n.startswith(("vpn/", "account/", "ssh/")) for n in names), names
    dkim = vm.run(["find", PRIVATE + "/keys", "/etc", "-name", "box.test.private"]).stdout
    assert dkim.split() in ([], [f"{PRIVATE}/keys/mail/dkim/box.test.private"]), dkim

    rc, locked = cli(vm, "storage", "lock")
    assert rc == 0 and not locked["status"]["volume"]["mounted"]
    assert vm.run(["ls", "-A", PRIVATE], check=True).stdout == ""  # none of it on the card
    rc, said = cli(vm, "config", "history")
    assert rc != 0 and "locked" in said, said  # the history is on the volume
    put(vm, "/run/bad", "not our passphrase")
    # Three wrong keys are free; then each waits 1 s, 2 s, 4 s ... after the last. Under
    # TCG the CLI alone takes seconds, so a few more go by before one is made to wait.
    said = [cli(vm, "storage", "unlock", "--key-file", "/run/bad")[1] for _ in range(3)]
    assert all("does not open" in s for s in said), said
    for _ in range(6):
        rc, said = cli(vm, "storage", "unlock", "--key-file", "/run/bad")
        if "too many wrong keys" in said:
            break
        assert rc != 0 and "does not open" in said, said
    else:
        raise AssertionError("wrong keys were never slowed down")
    time.sleep(float(re.search(r"try again in (\d+) s", said)[1]) + 1)
    put(vm, "/run/rk", key.lower().replace("-", " "))  # as someone types it from paper
    rc, opened = cli(vm, "storage", "unlock", "--key-file", "/run/rk")
    assert rc == 0 and opened["slot"] == 1, opened
    assert vm.run(["cat", f"{PRIVATE}/note"], check=True).stdout == "family photos\n"
    assert cli(vm, "config", "history")[1] == history


def test_mail_keeps_its_mailboxes_there_and_stops_when_the_disk_is_pulled(vm):
    if cli(vm, "storage", "status")[1]["volume"] is None:
        pytest.fail("needs the storage made by the test before")
    rc, said = cli(vm, "mail", "set", "on", "--domain", "box.test")
    assert rc == 0, said
    try:
        assert vm.run(["systemctl", "is-active", "postfix", "dovecot"]).stdout.split() == [
            "active",
            "active",
        ]
        assert (
            vm.run(["findmnt", "-no", "SOURCE", "-T", f"{PRIVATE}/mail"]).stdout.strip()
            == "/dev/mapper/cbprivate"
        )
        # Pulled in the middle of a write that would fill the disk.
        vm.run(
            [
                "sh",
                "-c",
                f"dd if=/dev/zero of={PRIVATE}/big bs=1M count=1000 conv=fsync >/dev/null 2>&1 &",
            ],
            check=True,
        )
        wait_for(lambda: int(vm.run(["stat", "-c", "%s", f"{PRIVATE}/big"]).stdout or 0) > 0)
        vm.unplug_usb_disk("usbdisk")
        # Under emulation, stopping five units (systemctl disable --now) takes minutes.
        status = wait_for(
            lambda: (v := cli(vm, "storage", "status")[1]["volume"]) and not v["mounted"] and v,
            timeout=600,
        )
        assert not status["present"]
        assert vm.run(["systemctl", "is-active", "postfix", "dovecot"]).stdout.split() == [
            "inactive",
            "inactive",
        ]
        # The box says why, and does not report mail running: mail's settings went with
        # the disk (appliance/configstore.py), so it is off until the storage is back.
        health = {(c["capability"], c["name"]): c for c in cli(vm, "status")[1]["health"]}
        assert not health[("storage", "encryption")]["ok"]
        assert "missing" in health[("storage", "encryption")]["detail"], health
        assert not any(c["ok"] for (cap, _), c in health.items() if cap == "mail"), health
        wait_for(lambda: vm.run(["pgrep", "-x", "dd"]).rc != 0, timeout=300)  # it got its error
        # Nothing reached the card in the storage's place, nor can anything now.
        assert vm.run(["ls", "-A", PRIVATE], check=True).stdout == ""
        assert vm.run(["sh", "-c", f"echo x > {PRIVATE}/after"]).rc != 0
    finally:
        cli(vm, "mail", "set", "off")  # refused while the disk is out: the next test does it


def key_stick(path) -> None:
    """A 64 MiB USB stick as shops sell them: a partition table, one FAT partition, and
    a file of the household's on it already."""
    with open(path, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    subprocess.run(["sfdisk", "-q", str(path)], input="start=2048, type=c\n", text=True, check=True)
    subprocess.run(
        ["mkfs.vfat", "-n", "KEYS", "--offset", "2048", str(path), "64512"],
        check=True,
        capture_output=True,
    )
    (path.parent / "holiday.txt").write_text("beach 2026\n")
    subprocess.run(
        ["mcopy", "-i", f"{path}@@1M", str(path.parent / "holiday.txt"), "::"], check=True
    )


def stick_files(path) -> str:
    return subprocess.run(
        ["mdir", "-/", "-b", "-i", f"{path}@@1M", "::"], capture_output=True, text=True, check=True
    ).stdout


def no_key_opened(vm) -> int:
    """How often the agent looked at the sticks plugged in and found no key that opens."""
    log = vm.run(["journalctl", "-b", "-u", "commonsbox-agent", "--no-pager"]).stdout
    return log.count("no USB key opened")


def volume(vm):
    return cli(vm, "storage", "status")[1]["volume"]


def test_after_a_reboot_a_usb_key_opens_the_storage_and_the_passphrase_still_does(
    vm, usb_image, tmp_path
):
    if not usb_image.exists() or cli(vm, "storage", "status")[1]["volume"] is None:
        pytest.fail("needs the storage made by the tests before")
    stick = tmp_path / "stick.img"
    key_stick(stick)
    if "usbdisk" not in vm.usb:  # the test before pulled it out
        vm.plug_usb_disk(usb_image, "usbdisk")
    wait_for(lambda: (v := volume(vm)) and v["present"])
    vm.plug_usb_disk(stick, "keystick")
    name = wait_for(
        lambda: next(
            (
                d["name"]
                for d in cli(vm, "storage", "disks")[1]
                if d["usb"] and d["contents"] == "partitions"
            ),
            None,
        )
    )
    put(vm, "/run/pp", PASSPHRASE)
    rc, said = cli(vm, "storage", "usb-key", "add", name, "--passphrase-file", "/run/pp")
    assert rc == 0, said
    assert "USB key" in said["status"]["volume"]["key_slots"]
    uuid = said["status"]["volume"]["uuid"]
    files = stick_files(stick)
    assert "::/holiday.txt" in files and f"::/commonsbox/{uuid}.key" in files, files

    # Power off and on with both plugged in: nobody types anything.
    t0 = time.monotonic()
    vm.reboot()
    wait_for(lambda: (v := volume(vm)) and v["mounted"] and v, timeout=300)
    print(f"reboot to storage unlocked by the USB key: {time.monotonic() - t0:.1f} s")
    assert vm.run(["cat", f"{PRIVATE}/note"], check=True).stdout == "family photos\n"
    log = vm.run(["journalctl", "-b", "-u", "commonsbox-agent", "--no-pager"]).stdout
    assert "unlocked with its USB key" in log
    assert PASSPHRASE not in log
    assert cli(vm, "mail", "set", "off")[0] == 0  # as the test before meant to leave it

    # Locked, the stick pulled and plugged in again: the agent opens it once more.
    assert cli(vm, "storage", "lock")[0] == 0
    vm.unplug_usb_disk("keystick")
    vm.plug_usb_disk(stick, "keystick")
    wait_for(lambda: volume(vm)["mounted"], timeout=300)

    # Without its USB key slot, the stick opens nothing; the passphrase still does.
    put(vm, "/run/pp", PASSPHRASE)
    rc, said = cli(vm, "storage", "usb-key", "remove", "--passphrase-file", "/run/pp")
    assert rc == 0 and "USB key" not in said["status"]["volume"]["key_slots"], said
    assert cli(vm, "storage", "lock")[0] == 0
    vm.unplug_usb_disk("keystick")
    tried = no_key_opened(vm)
    vm.plug_usb_disk(stick, "keystick")
    wait_for(lambda: no_key_opened(vm) > tried, timeout=300)
    assert not volume(vm)["unlocked"]
    rc, opened = cli(vm, "storage", "unlock", "--key-file", "/run/pp")
    assert rc == 0 and opened["slot"] == 0, opened
    assert vm.run(["cat", f"{PRIVATE}/note"], check=True).stdout == "family photos\n"
    vm.unplug_usb_disk("keystick")

    # Full: the box asks for attention (dashboard, LED); room made, all is well again.
    def space_ok():
        health = cli(vm, "status")[1]["health"]
        return next(c["ok"] for c in health if (c["capability"], c["name"]) == ("storage", "space"))

    assert space_ok()
    free = int(vm.run(["df", "--output=avail", "-B1", PRIVATE]).stdout.split()[1])
    vm.run(["fallocate", "-l", str(free - 2 * 2**20), f"{PRIVATE}/fill"], check=True)
    wait_for(lambda: not space_ok())
    vm.run(["rm", f"{PRIVATE}/fill"], check=True)
    wait_for(space_ok)

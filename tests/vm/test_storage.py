"""The household's encrypted storage in the guest, whose kernel has device-mapper: a USB
disk plugged in through QMP becomes the storage, is locked and unlocked, keeps its data,
and is pulled out while mail uses it."""

import json
import shlex
import time

import pytest

pytestmark = pytest.mark.vm

PASSPHRASE = "our house, our keys 42"
PRIVATE = "/var/lib/commonsbox/private"


def cli(vm, *args, timeout=600):
    answer = vm.run(["commonsbox", *args, "--json"], timeout=timeout)
    return answer.rc, (json.loads(answer.stdout) if answer.rc == 0 else answer.stderr)


def put(vm, path, text):
    vm.run(["sh", "-c", f"umask 077; printf %s {shlex.quote(text)} > {path}"], check=True)


def wait_for(what, timeout=90):
    deadline = time.monotonic() + timeout
    while not (found := what()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(1)
    return found


def test_a_usb_disk_becomes_the_encrypted_storage_and_keeps_the_data(vm, tmp_path):
    image = tmp_path / "usb.img"
    with open(image, "wb") as f:
        f.truncate(256 * 1024 * 1024)
    vm.plug_usb_disk(image, "usbdisk")
    disk = wait_for(lambda: next((d for d in cli(vm, "storage", "disks")[1] if d["usb"]), None))
    assert disk["contents"] == "empty" and disk["size"] == 256 * 1024 * 1024 and not disk["system"]
    put(vm, "/run/pp", PASSPHRASE)

    rc, said = cli(vm, "storage", "format", disk["name"], "--confirm", "sda-please",
                   "--passphrase-file", "/run/pp")
    assert rc == 2 and "type its name exactly" in said, said
    assert cli(vm, "storage", "status")[1]["volume"] is None  # nothing happened

    t0 = time.monotonic()
    rc, made = cli(vm, "storage", "format", disk["name"], "--confirm", disk["confirm_name"],
                   "--passphrase-file", "/run/pp")
    assert rc == 0, made
    print(f"formatted (argon2id, under TCG) in {time.monotonic() - t0:.1f} s")
    key, v = made["recovery_key"], made["status"]["volume"]
    assert v["cipher"] == "aes-xts" and v["mounted"] and v["present"]  # TCG's CPU has AES
    assert v["key_slots"] == {"passphrase": "argon2id", "recovery key": "argon2id"}
    assert vm.run(["findmnt", "-no", "SOURCE,FSTYPE", PRIVATE]).stdout.split() == \
        ["/dev/mapper/cbprivate", "ext4"]
    vm.run(["sh", "-c", f"echo family photos > {PRIVATE}/note; sync"], check=True)
    assert b"family photos" not in image.read_bytes(), "the disk holds only ciphertext"
    assert any(d["is_storage"] for d in cli(vm, "storage", "disks")[1])

    rc, locked = cli(vm, "storage", "lock")
    assert rc == 0 and not locked["status"]["volume"]["mounted"]
    assert vm.run(["test", "-e", f"{PRIVATE}/note"]).rc != 0
    put(vm, "/run/bad", "not our passphrase")
    rc, said = cli(vm, "storage", "unlock", "--key-file", "/run/bad")
    assert rc != 0 and "does not open" in said, said
    put(vm, "/run/rk", key.lower().replace("-", " "))  # as someone types it from paper
    rc, opened = cli(vm, "storage", "unlock", "--key-file", "/run/rk")
    assert rc == 0 and opened["slot"] == 1, opened
    assert vm.run(["cat", f"{PRIVATE}/note"], check=True).stdout == "family photos\n"


def test_mail_keeps_its_mailboxes_there_and_stops_when_the_disk_is_pulled(vm):
    if cli(vm, "storage", "status")[1]["volume"] is None:
        pytest.fail("needs the storage made by the test before")
    rc, said = cli(vm, "mail", "set", "on", "--domain", "box.test")
    assert rc == 0, said
    try:
        assert vm.run(["systemctl", "is-active", "postfix", "dovecot"]).stdout.split() == \
            ["active", "active"]
        assert vm.run(["findmnt", "-no", "SOURCE", "-T", f"{PRIVATE}/mail"]).stdout.strip() == \
            "/dev/mapper/cbprivate"
        vm.unplug_usb_disk("usbdisk")
        # Under emulation, stopping five units (systemctl disable --now) takes minutes.
        status = wait_for(lambda: (v := cli(vm, "storage", "status")[1]["volume"])
                          and not v["mounted"] and v, timeout=600)
        assert not status["present"]
        assert vm.run(["systemctl", "is-active", "postfix", "dovecot"]).stdout.split() == \
            ["inactive", "inactive"]
        health = {(c["capability"], c["name"]): c for c in cli(vm, "status")[1]["health"]}
        assert not health[("mail", "storage")]["ok"]
    finally:
        cli(vm, "mail", "set", "off")

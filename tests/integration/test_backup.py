"""A whole box backed up and brought back: a box with two members (ana, and bo who
leaves after the first backup), an installer handed over after it, their phones and a
file in the share backs up twice to a repository folder; the box's state is deleted; a fresh box restores the first backup
with only the repository and the backup key. What comes back: ana, her device with the
very same keys (her phone, with the config it was given before, connects and pings),
her file; not bo, who left after that backup, nor his device, nor the installer. The repository holds
no plaintext of the file."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.errors import NotFound
from cblab.sandbox import REPO

from .conftest import BOX_VPN_IP, PASS, as_webui, household_box

MARKER = "plain-words-only-the-household-may-read-7f3a"


@pytest.fixture
def world():
    with household_box("cbb", None) as w:
        w.work = w.box.paths.root.parent
        w.api.call("storage.settings.set", allow_unencrypted=True)  # no disks here
        try:
            yield w
        finally:
            print((w.work / "box/agent.log").read_text()[-4000:])  # shown if the test failed


def device_of(world, name: str, device: str) -> dict:
    """A device added by NAME on their own session, as the web UI adds it."""
    login, added = as_webui(
        world,
        f"""s = call("auth.login", name={name!r}, passphrase={PASS!r}, address="192.0.2.9")
call("vpn.device.add", session=s["session"], name={device!r})""",
    )
    assert "ok" in added[1], added
    return added[1]["ok"]["device"]


def cli(world, *args: str, stdin: str = ""):
    """`commonsbox ...` as root types it on the box."""
    return subprocess.run(
        [sys.executable, "-m", "appliance.cli", "--root", str(world.box.paths.root), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": os.environ["PATH"]},
        timeout=120,
    )


def restore(world, repository, key: str, archive: str | None = None):
    """`commonsbox backup restore` on the new box, the key typed on its standard input."""
    more = ["--archive", archive] if archive else []
    return cli(world, "backup", "restore", str(repository), *more, stdin=key + "\n")


def test_a_fresh_box_restores_the_household_from_the_repository_and_the_key(world):
    api = world.api
    api.call("users.add", name="bo", passphrase=PASS)
    api.call("users.add", name="ina", role="installer", passphrase=PASS)
    ana_phone = device_of(world, "ana", "ana's phone")
    bo_phone = device_of(world, "bo", "bo's phone")
    old_config = api.call("vpn.device.config", device=ana_phone["id"])["config"]
    share = world.box.paths.state_dir / "private/files/ana"
    share.mkdir(parents=True)
    (share / "notes.txt").write_text(MARKER * 100)
    usb = world.work / "usb"  # the disk's mount point
    with pytest.raises(NotFound):  # not mounted: never a repository on the card
        api.call("backup.setup", repository=str(world.work / "unplugged/commonsbox"))
    usb.mkdir()
    repository = usb / "commonsbox"
    api.call("backup.setup", repository=str(repository))
    started = time.monotonic()
    first = api.call("backup.now")
    took = time.monotonic() - started
    key = api.call("backup.key")["key"]
    # The key is the household's: the installer, who leaves at the handover, never sees it.
    asked = as_webui(
        world,
        f"""s = call("auth.login", name="ina", passphrase={PASS!r}, address="192.0.2.9")
call("backup.key", session=s["session"])
s = call("auth.login", name="ana", passphrase={PASS!r}, address="192.0.2.9")
call("backup.key", session=s["session"])""",
    )
    assert [answer for _, answer in asked[1::2]] == [{"error": "forbidden"}, {"ok": {"key": key}}]
    assert first["files"]["data/files"] == 1
    print(f"backup: {took:.2f} s; repository {du(repository)} bytes")

    api.call("users.handover")  # the installer's visit is over
    api.call("users.remove", name="bo")
    time.sleep(max(0.0, 1.05 - (time.monotonic() - started)))  # archives are named to the second
    second = api.call("backup.now")
    assert [a["name"] for a in api.call("backup.list")] == [first["archive"], second["archive"]]
    assert api.call("backup.status")["last_good"]["archive"] == second["archive"]
    assert api.call("backup.check") == {"ok": True}
    health = {(c["capability"], c["name"]): c["ok"] for c in api.call("status")["health"]}
    assert health[("backup", "last good backup")] is True
    shown = cli(world, "backup", "status").stdout
    assert f"backups go to {repository}" in shown and second["archive"] in shown
    # The nightly timer's call finds the backup made today good enough.
    assert api.call("backup.auto") == {"skipped": "the last good backup is less than a day old"}
    devices_before = api.call("vpn.device.list")

    # Encrypted: neither the file's words nor a device's private key are in it.
    private_key = next(
        line.split("=", 1)[1].strip()
        for line in old_config.splitlines()
        if line.startswith("PrivateKey")
    )
    for needle in (MARKER, private_key):
        found = subprocess.run(["grep", "-rlF", needle, str(repository)], capture_output=True)
        assert found.returncode == 1, found.stdout

    # A restore never replaces a household's box unless told to.
    world.api.close()
    world.box.stop()
    kept = restore(world, repository, key)
    assert kept.returncode == 2 and "belongs to a household" in kept.stderr, kept.stderr

    # The box is lost: its state goes; a fresh agent's root starts empty.
    shutil.rmtree(world.box.paths.root / "var")

    wrong = restore(world, repository, "AAAA-" * 7 + "AAAA")
    assert wrong.returncode == 1 and "does not open the repository" in wrong.stderr, wrong.stderr
    nowhere = restore(world, world.work / "no-such-disk", key)
    assert nowhere.returncode == 2 and "no backup repository" in nowhere.stderr, nowhere.stderr
    assert not (world.box.paths.root / "var/lib/commonsbox/state.db").exists()

    done = restore(world, repository, key.lower().replace("-", " "), archive=first["archive"])
    assert done.returncode == 0, done.stderr
    assert "not brought back (they left after it): bo, ina" in done.stdout

    world.box.start()
    world.api = api = world.box.client()
    assert [u["name"] for u in api.call("users.list")] == ["ana"]
    assert api.call("vpn.device.list") == devices_before  # ana's phone only, keys and all
    assert [d["id"] for d in devices_before] == [ana_phone["id"]] != [bo_phone["id"]]
    assert api.call("vpn.device.config", device=ana_phone["id"])["config"] == old_config
    assert (world.box.paths.state_dir / "private/files/ana/notes.txt").read_text() == MARKER * 100

    # Ana's phone, with the config it was given before the box was lost, connects.
    phone = world.phone(0, f"{world.prefix}p0", ana_phone["id"], config=old_config)
    assert world.phone_ns[0].ping(BOX_VPN_IP, timeout=3)
    assert phone.latest_handshake() > 0


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

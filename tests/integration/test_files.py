"""The household's file share, with the OpenSSH the box ships (Debian 13's, from the image
recipe's root file system): a phone connected through WireGuard uses it with the sftp
client a household's computer has; the network around the box cannot reach it."""

import os
import subprocess

import pytest

from appliance.errors import ApplianceError
from cblab.sandbox import World

from .conftest import SUBNET4, SUBNET6

BOX_VPN_IP = str(next(__import__("ipaddress").ip_network(SUBNET4).hosts()))


@pytest.fixture(scope="module")
def share(tmp_path_factory):
    tag = os.getpid() % 10000
    world = World(f"cbf{tag}", tmp_path_factory.mktemp("files"), phones=2, relay_name="files.test")
    try:
        api = world.api
        api.call(
            "vpn.settings.set", endpoint=World.ENDPOINT, ipv4_subnet=SUBNET4, ipv6_subnet=SUBNET6
        )
        api.call("storage.settings.set", allow_unencrypted=True)  # no disks in a namespace
        for name in ("alice", "bob"):
            api.call(
                "users.add", name=name, role="member", passphrase="correct horse battery staple 7"
            )
        device = api.call("vpn.device.add", name="laptop")["device"]
        world.phone(0, f"cbf{tag}p0", device["id"])
        said = api.call("files.settings.set", enabled=True)
        assert said["applied"], said
        yield world
    finally:
        world.close()


def sftp(
    world, tmp_path, user: str, password: str, commands: str, host=BOX_VPN_IP, phone: int = 0
) -> subprocess.CompletedProcess:
    """Debian's sftp client in the phone's namespace, the password typed by an askpass."""
    askpass = tmp_path / "askpass"
    askpass.write_text(f"#!/bin/sh\necho '{password}'\n")
    askpass.chmod(0o700)
    known = tmp_path / "known_hosts"
    return world.phone_ns[phone].run(
        [
            "env",
            f"SSH_ASKPASS={askpass}",
            "SSH_ASKPASS_REQUIRE=force",
            "setsid",
            "-w",
            "sftp",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            f"UserKnownHostsFile={known}",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "NumberOfPasswordPrompts=1",
            f"{user}@{host}",
        ],
        input=commands,
        check=False,
        timeout=60,
    )


def test_a_member_puts_files_in_their_folder_and_shared_and_cannot_read_anothers(share, tmp_path):
    api = share.api
    alice = api.call("files.password", owner="alice")
    bob = api.call("files.password", owner="bob")
    assert alice["url"] == f"sftp://alice@{BOX_VPN_IP}/" and alice["host_key"].startswith("SHA256:")
    assert len(alice["password"]) == 24 and alice["has_password"]
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(os.urandom(300_000))

    done = sftp(
        share,
        tmp_path,
        "alice",
        alice["password"],
        f"put {photo}\ncd /shared\nput {photo} family.jpg\npwd\nls /\n",
    )
    assert done.returncode == 0, done.stderr
    assert "Remote working directory: /shared" in done.stdout
    # The app is shown the box's key once; it is the one the web UI and CLI name.
    listed = subprocess.run(
        ["ssh-keygen", "-lf", tmp_path / "known_hosts"], text=True, capture_output=True, check=True
    ).stdout
    assert alice["host_key"] in listed

    box_files = share.box_root.system().path("/var/lib/commonsbox/private/files")
    assert (box_files / "alice" / "photo.jpg").read_bytes() == photo.read_bytes()
    assert (box_files / "shared" / "family.jpg").stat().st_mode & 0o047 == 0o040  # for all

    got = tmp_path / "got.jpg"
    done = sftp(share, tmp_path, "bob", bob["password"], f"get /shared/family.jpg {got}\n")
    assert done.returncode == 0 and got.read_bytes() == photo.read_bytes(), done.stderr
    done = sftp(share, tmp_path, "bob", bob["password"], "ls /alice\n")
    assert "permission denied" in (done.stdout + done.stderr).lower()


def test_no_shell_no_forwarding_and_a_wrong_password_is_refused(share, tmp_path):
    api = share.api
    alice = api.call("files.password", owner="alice")
    done = sftp(share, tmp_path, "alice", "not-the-password", "ls\n")
    assert done.returncode != 0 and "Permission denied" in done.stderr
    askpass = tmp_path / "askpass"
    askpass.write_text(f"#!/bin/sh\necho '{alice['password']}'\n")
    askpass.chmod(0o700)
    shell = share.phone_ns[0].run(
        [
            "env",
            f"SSH_ASKPASS={askpass}",
            "SSH_ASKPASS_REQUIRE=force",
            "setsid",
            "-w",
            "ssh",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-L",
            "9999:127.0.0.1:80",
            f"alice@{BOX_VPN_IP}",
            "id",
        ],
        check=False,
        timeout=60,
    )
    assert "uid=" not in shell.stdout  # ForceCommand: SFTP, whatever was asked
    assert "This service allows sftp connections only" in shell.stdout + shell.stderr


def test_the_share_is_not_reachable_from_the_network_around_the_box(share, tmp_path):
    alice = share.api.call("files.password", owner="alice")
    # Phone 1 is on the box's LAN, without the VPN: neither the box's public address
    # nor (routed by hand) its VPN address answer on port 22.
    share.phone_ns[1].run(["ip", "route", "add", SUBNET4, "via", "100.64.1.1"], check=False)
    for host in ("192.0.2.1", BOX_VPN_IP):
        done = sftp(share, tmp_path, "alice", alice["password"], "ls\n", host=host, phone=1)
        assert done.returncode != 0 and ("timed out" in done.stderr or "refused" in done.stderr), (
            done.stderr
        )


def test_a_member_removed_loses_their_account_and_the_share_off_gives_no_passwords(share, tmp_path):
    api = share.api
    api.call("users.add", name="carol", role="member", passphrase="correct horse battery staple 7")
    carol = api.call("files.password", owner="carol")
    api.call("users.remove", name="carol")
    done = sftp(share, tmp_path, "carol", carol["password"], "ls\n")
    assert done.returncode != 0 and "Permission denied" in done.stderr
    passwd = share.box_root.system().read("/etc/passwd").decode()
    assert "\ncarol:" not in passwd and "\nalice:" in passwd

    alice = api.call("files.password", owner="alice")
    api.call("files.settings.set", enabled=False)
    try:
        with pytest.raises(ApplianceError, match="the file share is off"):
            api.call("files.password", owner="alice")
        done = sftp(share, tmp_path, "alice", alice["password"], "ls\n")
        assert done.returncode != 0 and "refused" in done.stderr, done.stderr
    finally:
        api.call("files.settings.set", enabled=True)


def test_a_departed_members_folder_is_archived_and_nobody_inherits_it(share, tmp_path):
    api, system = share.api, share.box_root.system()
    box_files = system.path("/var/lib/commonsbox/private/files")
    archive = system.path("/var/lib/commonsbox/private/files-archive")
    phrase = "correct horse battery staple 7"
    api.call("users.add", name="dana", role="member", passphrase=phrase)
    dana = api.call("files.password", owner="dana")
    note = tmp_path / "note.txt"
    note.write_text("dana's own words")
    done = sftp(share, tmp_path, "dana", dana["password"], f"put {note}\n")
    assert done.returncode == 0, done.stderr
    dana_uid = (box_files / "dana").stat().st_uid

    api.call("users.remove", name="dana")
    assert not (box_files / "dana").exists()
    [kept] = [p for p in archive.iterdir() if p.name.startswith("dana-")]
    assert (kept / "note.txt").read_text() == "dana's own words"
    for where in (archive, kept):
        info = where.stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (0, 0, 0o700)

    # The next member gets a uid of their own and sees nothing of Dana's.
    api.call("users.add", name="erin", role="member", passphrase=phrase)
    erin = api.call("files.password", owner="erin")
    assert (box_files / "erin").stat().st_uid != dana_uid
    got = tmp_path / "got.txt"
    done = sftp(share, tmp_path, "erin", erin["password"], f"ls /\nget /dana/note.txt {got}\n")
    listing = done.stdout.split("sftp> get")[0]  # the client echoes each command
    assert "erin" in listing and "dana" not in listing and not got.exists()

    # A folder already there under a new member's name, not theirs, is not handed over.
    planted = box_files / "frank"
    planted.mkdir()
    (planted / "left.txt").write_text("someone else's")
    os.chown(planted, dana_uid, 0)
    api.call("users.add", name="frank", role="member", passphrase=phrase)
    fresh = (box_files / "frank").stat()
    assert fresh.st_uid not in (dana_uid, 0) and os.listdir(box_files / "frank") == []
    assert any((p / "left.txt").exists() for p in archive.iterdir() if p.name.startswith("frank-"))


def test_the_household_may_delete_a_departed_members_folder_instead(share, tmp_path):
    api, system = share.api, share.box_root.system()
    box_files = system.path("/var/lib/commonsbox/private/files")
    archive = system.path("/var/lib/commonsbox/private/files-archive")
    api.call("files.settings.set", enabled=True, departed="delete")
    try:
        api.call("users.add", name="gus", role="member", passphrase="correct horse battery 8")
        assert (box_files / "gus").is_dir()
        (box_files / "gus" / "x.txt").write_text("x")
        api.call("users.remove", name="gus")
        assert not (box_files / "gus").exists()
        assert not archive.exists() or not any(p.name.startswith("gus-") for p in archive.iterdir())
    finally:
        api.call("files.settings.set", enabled=True, departed="archive")

"""Who leaves takes what they held with them, and a restore never brings it back: on a
box running the real agent and the box's own Dovecot and OpenSSH, with a phone on a real
WireGuard tunnel. A member (bo, an admin) with a phone, an app password and an SSH key
is removed, or the installer is handed over; a revision from before is restored; the
agent restarts (it must load what was stored) and none of their credentials work."""

import imaplib
import subprocess
import time

import pytest

from cblab.relaylab import app_tls, in_netns

from .conftest import PASS, SUBNET4, as_webui, household_box
from .test_ssh import keypair, ssh

BOX_VPN_IP = str(next(__import__("ipaddress").ip_network(SUBNET4).hosts()))
DOMAIN = "leave.test"
LEAVER = "quiet river under old bridges"


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    with household_box("cbd", DOMAIN) as world:
        world.api.call("storage.settings.set", allow_unencrypted=True)  # no disks here
        world.api.call("mail.settings.set", enabled=True, domain=DOMAIN)
        # ana's own laptop: the way to test SSH over the VPN once the leaver's is gone.
        world.laptop = world.api.call("vpn.device.add", name="ana's laptop")["device"]
        # ana's SSH key keeps SSH on: a leaver's key is then refused, not unanswered.
        _, pub = keypair(tmp_path_factory.mktemp("ana"), "ana")
        world.api.call("ssh.key.add", key=pub)
        yield world


def session(world, name, passphrase=PASS):
    [(_, answer)] = as_webui(
        world,
        f'call("auth.login", name={name!r}, passphrase={passphrase!r}, address="192.0.2.9")',
    )
    return answer["ok"]["session"]


def imap_login(world, address, password) -> str:
    """What a mail app on the phone's network hears when it logs in (connecting again
    while Dovecot reloads, as an app does)."""
    for attempt in range(20):
        try:
            with in_netns(world.phone_ns[0].name):
                imap = imaplib.IMAP4_SSL("192.0.2.1", ssl_context=app_tls(), timeout=30)
            break
        except ConnectionError:
            if attempt == 19:
                raise
            time.sleep(0.5)
    try:
        return imap.login(address, password)[0]
    except imaplib.IMAP4.error as err:
        return str(err)
    finally:
        imap.logout()


def tunnel_works(world, config: str) -> bool:
    """Whether the phone, brought up with CONFIG, reaches the box through the tunnel."""
    phone = world.phone(0, f"{world.prefix}p0", None, config)
    try:
        done = world.phone_ns[0].run(
            ["ping", "-c", "1", "-W", "3", BOX_VPN_IP], check=False, timeout=30
        )
        return done.returncode == 0
    finally:
        phone.down()


def ssh_as(world, key: str) -> subprocess.CompletedProcess:
    """KEY's login to root over SSH, from ana's laptop on the VPN."""
    laptop = world.api.call("vpn.device.config", device=world.laptop["id"])["config"]
    phone = world.phone(0, f"{world.prefix}p0", None, laptop)
    try:
        return ssh(world, key, "id -u")
    finally:
        phone.down()


def restart(world) -> None:
    world.api.close()
    world.box.stop()
    world.box.start()
    world.api = world.box.client()


def holdings(world, admin_session, name, tmp_path) -> dict:
    """NAME (logged in) makes a phone, an app password for their mail app and adds an
    SSH key, as they would through the web UI. Returns what a thief would need."""
    key, pub = keypair(tmp_path, name)
    me = session(world, name, LEAVER)
    results = as_webui(
        world,
        f"""
call("vpn.device.add", {me!r}, name="{name}'s phone", preshared_key=True)
call("mail.password.add", {me!r}, label="{name}'s mail app")
call("ssh.key.add", {me!r}, key={pub!r})
""",
    )
    assert [list(r) for _, r in results] == [["ok"]] * 3, results
    device, app = results[0][1]["ok"]["device"], results[1][1]["ok"]
    config = world.api.call("vpn.device.config", device=device["id"])["config"]
    held = {"config": config, "address": app["address"], "password": app["password"], "key": key}
    assert tunnel_works(world, held["config"])
    assert imap_login(world, held["address"], held["password"]) == "OK"
    assert ssh_as(world, key).stdout.strip() == "0"
    return held


def nothing_works(world, held) -> None:
    assert not tunnel_works(world, held["config"]), "the leaver's phone still reaches the box"
    assert "AUTHENTICATIONFAILED" in imap_login(world, held["address"], held["password"])
    refused = ssh_as(world, held["key"])
    assert refused.returncode == 255 and "Permission denied" in refused.stderr, refused.stderr


def restore_and_restart(world, admin, revision) -> None:
    name = world.api.call("status")["box"]["name"]
    world.api.call("box.settings.set", name="Renamed since")  # so the restore changes this
    [(_, answer)] = as_webui(world, f'call("config.rollback", {admin!r}, revision={revision})')
    assert "ok" in answer, answer
    restart(world)  # the agent loads what the restore stored, or the box stays down
    status = world.api.call("status")
    assert status["revision"]["why"] == f"restore revision {revision}"
    assert status["box"]["name"] == name


def test_a_removed_member_stays_gone_after_a_restore_and_a_restart(box, tmp_path):
    ana = session(box, "ana")
    box.api.call("users.add", name="bo", role="admin", passphrase=LEAVER)
    held = holdings(box, ana, "bo", tmp_path)
    before = box.api.call("config.history", limit=1)[0]["revision"]

    [(_, removed)] = as_webui(box, f'call("users.remove", {ana!r}, name="bo")')
    assert removed["ok"]["ended"]["devices"] == ["bo's phone"], removed
    nothing_works(box, held)

    restore_and_restart(box, ana, before)
    assert [d["name"] for d in box.api.call("vpn.device.list")] == ["ana's laptop"]
    assert box.api.call("mail.password.list") == []
    assert [k["name"] for k in box.api.call("ssh.access")["keys"]] == ["ana@laptop"]
    nothing_works(box, held)


def test_the_installers_key_stays_gone_after_the_handover_and_a_restore(box, tmp_path):
    ana = session(box, "ana")
    box.api.call("users.add", name="ines", role="installer", passphrase=LEAVER)
    held = holdings(box, ana, "ines", tmp_path)
    before = box.api.call("config.history", limit=1)[0]["revision"]

    [(_, handed)] = as_webui(box, f'call("users.handover", {ana!r})')
    assert handed["ok"]["removed"] == ["ines"], handed
    nothing_works(box, held)

    restore_and_restart(box, ana, before)
    assert [k["name"] for k in box.api.call("ssh.access")["keys"]] == ["ana@laptop"]
    nothing_works(box, held)

"""The installer's SSH, with the OpenSSH the box ships (Debian 13's, from the image
recipe's root file system): off until a key is added; then root logs in with that key,
from the VPN, and with nothing else; the Internet around the box cannot reach it."""

import subprocess

import pytest

from appliance.errors import ApplianceError

from .conftest import SUBNET4, as_webui, household_box

BOX_VPN_IP = str(next(__import__("ipaddress").ip_network(SUBNET4).hosts()))
PORT = 2222


@pytest.fixture(scope="module")
def box():
    with household_box("cbs", "ssh.test", claimed=False) as world:  # claimed by a test
        device = world.api.call("vpn.device.add", name="installer's laptop")["device"]
        world.phone(0, f"{world.prefix}p0", device["id"])
        yield world


def keypair(tmp_path, name: str, kind: str = "ed25519") -> tuple[str, str]:
    path = tmp_path / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"{name}@laptop", "-f", path], check=True
    )
    return str(path), (tmp_path / f"{name}.pub").read_text()


def ssh(
    world, key: str, command: str, host=BOX_VPN_IP, ns=None, known="/dev/null", *options: str
) -> subprocess.CompletedProcess:
    """Debian's ssh client in the phone's namespace (or NS), with KEY only."""
    return (ns or world.phone_ns[0]).run(
        [
            "ssh",
            "-p",
            str(PORT),
            "-i",
            key,
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            f"UserKnownHostsFile={known}",
            "-o",
            "ConnectTimeout=5",
            *options,
            f"root@{host}",
            command,
        ],
        check=False,
        timeout=60,
    )


def test_ssh_is_off_until_a_key_is_added_then_root_logs_in_with_it_only(box, tmp_path):
    api = box.api
    ana, ana_pub = keypair(tmp_path, "ana")
    other, _ = keypair(tmp_path, "other")
    assert api.call("ssh.access")["enabled"] is False
    assert api.call("ssh.access")["host_key"] is None  # none made while SSH is off
    off = ssh(box, ana, "true")
    assert off.returncode == 255 and "refused" in off.stderr, off.stderr

    said = api.call("ssh.key.add", key=ana_pub)
    assert said["applied"], said
    access = said["ssh"]
    assert [k["name"] for k in access["keys"]] == ["ana@laptop"]
    listed = subprocess.run(
        ["ssh-keygen", "-lf", f"{ana}.pub"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert access["keys"][0]["fingerprint"] == listed

    known = tmp_path / "known_hosts"
    done = ssh(box, ana, "id -u; hostname", known=str(known))
    assert done.returncode == 0 and done.stdout.split()[0] == "0", done.stderr
    # The host key the box shows its installer is the one the client was given.
    seen = subprocess.run(
        ["ssh-keygen", "-lf", known], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert seen == access["host_key"]

    refused = ssh(box, other, "id -u")
    assert refused.returncode == 255 and "Permission denied" in refused.stderr
    # No password is asked for, whatever the client offers.
    assert "password" not in refused.stderr.split("Permission denied")[1]
    forward = ssh(
        box,
        ana,
        "true",
        BOX_VPN_IP,
        None,
        "/dev/null",
        "-o",
        "ExitOnForwardFailure=yes",
        "-R",
        "9999:127.0.0.1:22",
    )
    assert forward.returncode == 255 and "forwarding failed" in forward.stderr, forward.stderr


def test_bad_keys_are_refused_and_nothing_changes(box, tmp_path):
    api = box.api
    _, pub = keypair(tmp_path, "bad")
    before = api.call("ssh.access")
    kind, blob, _ = pub.split(" ", 2)
    for line, why in (
        (f'command="sh" {pub}', "key type"),
        (f"{pub}\n{pub}", "one line"),
        (f"{kind} {blob[:-8]} x", "damaged"),
        (f"ssh-rsa {blob} x", "not a ssh-rsa key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "private key"),
    ):
        with pytest.raises(ApplianceError, match=why):
            api.call("ssh.key.add", key=line, name="x")
    assert api.call("ssh.access") == before


def test_the_internet_around_the_box_cannot_reach_it(box, tmp_path):
    key, pub = keypair(tmp_path, "far")
    api = box.api
    api.call("ssh.key.add", key=pub, name="far away")
    try:
        done = ssh(box, key, "true", host="203.0.113.1", ns=box.inet)
        assert done.returncode == 255 and "timed out" in done.stderr, done.stderr
    finally:
        fingerprint = next(
            k["fingerprint"] for k in api.call("ssh.access")["keys"] if k["name"] == "far away"
        )
        api.call("ssh.key.remove", fingerprint=fingerprint)


def test_managers_add_keys_members_cannot_and_the_installers_go_at_handover(box, tmp_path):
    keys = {who: keypair(tmp_path, who)[1] for who in ("ines", "amina", "baraka")}
    code = box.api.call("setup.code")["code"]
    results = as_webui(
        box,
        f"""
admin = call("setup.claim", code={code!r}, address="192.0.2.9", language="en",
             box_name="Home", admin_name="amina", passphrase="three unrelated words",
             timezone="UTC")["session"]
call("users.add", admin, name="ines", role="installer", passphrase="installer visit phrase")
call("users.add", admin, name="baraka", role="member", passphrase="kilima cha mvua njema")
installer = call("auth.login", name="ines", passphrase="installer visit phrase",
                 address="192.0.2.11")["session"]
member = call("auth.login", name="baraka", passphrase="kilima cha mvua njema",
              address="192.0.2.10")["session"]
call("ssh.key.add", installer, key={keys["ines"]!r})
call("ssh.key.add", admin, key={keys["amina"]!r}, name="Amina's laptop")
call("ssh.key.add", member, key={keys["baraka"]!r})
call("ssh.access", member)
call("users.handover", admin)
call("ssh.access", admin)
""",
    )
    assert [r.get("error", "ok") for _, r in results] == [
        "ok",
        "ok",
        "ok",
        "ok",
        "ok",
        "ok",
        "ok",
        "forbidden",
        "forbidden",  # a member neither adds a key nor sees them
        "ok",
        "ok",
    ], results
    added = results[6][1]["ok"]["ssh"]["keys"]
    assert [(k["name"], k["owner"]) for k in added] == [
        ("ana@laptop", None),
        ("ines@laptop", "ines"),
        ("Amina's laptop", "amina"),
    ]
    after = results[-1][1]["ok"]  # the key root added on the box stays too
    assert [k["name"] for k in after["keys"]] == ["ana@laptop", "Amina's laptop"]


def test_the_last_key_removed_turns_ssh_off(box, tmp_path):
    api = box.api
    for k in api.call("ssh.access")["keys"]:
        api.call("ssh.key.remove", fingerprint=k["fingerprint"])
    access = api.call("ssh.access")
    assert access["enabled"] is False and access["keys"] == []
    key, _ = keypair(tmp_path, "late")
    done = ssh(box, key, "true")
    assert done.returncode == 255 and "refused" in done.stderr, done.stderr

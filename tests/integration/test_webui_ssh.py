"""The web UI's SSH page, against the real agent in its namespace running the box's own
root (cblab.boxroot), so SSH is the box's OpenSSH: a manager pastes a public key,
the page says SSH is on and how to connect, and that command works from a laptop
connected through WireGuard with the host key the page showed; bad keys are refused
beside the field; removing the last key turns SSH off again.

The web UI connects to the agent as its own user (nobody), as when served.
"""

import re
import subprocess
from pathlib import Path

import pytest

from .conftest import BASE, PASS, household_box, logged_in, post, text
from .test_ssh import BOX_VPN_IP, keypair, ssh

OFF = "Off: nobody can log in to the box's system."


@pytest.fixture(scope="module")
def box():
    with household_box("cbw", "ssh.test") as world:
        world.api.call("users.add", name="ines", role="installer", passphrase=PASS)
        world.api.call("users.add", name="maria", role="member", passphrase=PASS)
        device = world.api.call("vpn.device.add", name="Ines's laptop")["device"]
        world.phone(0, f"{world.prefix}p0", device["id"])
        yield world


@pytest.fixture(autouse=True)
def no_keys(box):
    yield
    for key in box.api.call("ssh.access")["keys"]:
        box.api.call("ssh.key.remove", fingerprint=key["fingerprint"])


def page(web) -> str:
    return " ".join(text(web.get("/ssh", base_url=BASE)).split())


def fingerprint_of(pub_path: str) -> str:
    return subprocess.run(
        ["ssh-keygen", "-lf", pub_path], capture_output=True, text=True, check=True
    ).stdout.split()[1]


def test_ssh_is_off_until_a_key_is_pasted_then_the_page_says_how_to_connect(app, box, tmp_path):
    ines = logged_in(app, "ines")
    assert 'href="/ssh"' in text(ines.get("/", base_url=BASE))
    before = page(ines)
    assert OFF in before and "An installer who needs to can add their public key here." in before
    assert "ssh -p" not in before and "No keys." in before

    private, pub = keypair(tmp_path, "ines")
    added = post(ines, "/ssh/keys", {"key": pub, "name": ""}, "/ssh")
    assert added.status_code == 302 and added.location.endswith("/ssh?done=added")
    body = " ".join(text(ines.get(added.location, base_url=BASE)).split())
    assert '<p role="status">Key added. SSH is on.</p>' in body
    assert OFF not in body and "On: whoever has the private key" in body
    assert 'class="error"' not in body
    command = f"ssh -p 2222 root@{BOX_VPN_IP}"
    assert command in body
    host_key = box.api.call("ssh.access")["host_key"]
    assert host_key.startswith("SHA256:") and host_key in body
    assert "ines@laptop" in body and "ssh-ed25519" in body
    assert fingerprint_of(f"{private}.pub") in body
    assert "Remove the key <bdi>ines@laptop</bdi>" in body
    latest = box.api.call("config.history", limit=1)[0]
    assert latest["who"].startswith("ines") and "ines@laptop" in latest["why"]

    # what the page says works: from the laptop, through WireGuard, with the key shown
    known = tmp_path / "known_hosts"
    done = ssh(box, private, "id -u", known=str(known))
    assert done.returncode == 0 and done.stdout.strip() == "0", done.stderr
    assert fingerprint_of(str(known)) == host_key

    ana = logged_in(app, "ana")
    named = post(
        ana, "/ssh/keys", {"key": keypair(tmp_path, "ana")[1], "name": "Ana's laptop"}, "/ssh"
    )
    assert named.status_code == 302
    listed = text(ana.get("/ssh", base_url=BASE))
    rows = re.findall(r"<tr><td><bdi>([^<]+)</bdi></td>.*?<td><bdi>(\w+)</bdi></td>", listed, re.S)
    assert rows == [("ines@laptop", "ines"), ("Ana's laptop", "ana")]


def test_bad_keys_are_refused_beside_the_field_and_nothing_changes(app, box, tmp_path):
    ana = logged_in(app, "ana")
    private, pub = keypair(tmp_path, "bad")
    before = box.api.call("ssh.access")
    with_options = f'command="/bin/sh" {pub}'
    for key, name, field, says in (
        (with_options, "x", "key", "That is not a public key the box accepts."),
        (f"{pub}\n{pub}", "x", "key", "Paste the one line of your .pub file"),
        (Path(private).read_text(), "x", "key", "That is a private key"),
        (" ".join(pub.split()[:2]), "", "name", "Give the key a name"),
        (pub, "bad\x01name", "name", "without line breaks or control characters"),
    ):
        answer = post(ana, "/ssh/keys", {"key": key, "name": name}, "/ssh")
        body = text(answer)
        assert answer.status_code == 400, key
        note = re.search(rf'<p class="error" id="{field}-note">([^<]+)</p>', body)
        assert note and says in note.group(1), (key, body)
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', body, re.S), key
        assert "PRIVATE KEY" not in body  # a private key pasted by mistake is not shown back
        assert OFF in " ".join(body.split())
    answer = post(ana, "/ssh/keys", {"key": with_options, "name": "x"}, "/ssh")
    assert with_options in text(answer)  # a public key refused stays to be corrected
    assert box.api.call("ssh.access") == before

    assert post(ana, "/ssh/keys", {"key": pub, "name": ""}, "/ssh").status_code == 302
    twice = post(ana, "/ssh/keys", {"key": pub, "name": "again"}, "/ssh")
    assert twice.status_code == 400 and "That key is already on the list." in text(twice)
    assert len(box.api.call("ssh.access")["keys"]) == 1


def test_a_key_beyond_the_most_the_box_keeps_is_refused_with_that_number(app, box, tmp_path):
    for i in range(8):
        box.api.call("ssh.key.add", key=keypair(tmp_path, f"k{i}")[1])
    ana = logged_in(app, "ana")
    answer = post(ana, "/ssh/keys", {"key": keypair(tmp_path, "ninth")[1], "name": ""}, "/ssh")
    assert answer.status_code == 400
    assert (
        '<p class="error" id="key-note">The box keeps at most 8 keys: remove one that is '
        "no longer needed first.</p>"
    ) in text(answer)
    assert len(box.api.call("ssh.access")["keys"]) == 8


def test_removing_the_last_key_turns_ssh_off(app, box, tmp_path):
    ana = logged_in(app, "ana")
    for name in ("one", "two"):
        post(ana, "/ssh/keys", {"key": keypair(tmp_path, name)[1], "name": ""}, "/ssh")
    keys = box.api.call("ssh.access")["keys"]
    first = post(ana, "/ssh/keys/remove", {"fingerprint": keys[0]["fingerprint"]}, "/ssh")
    assert first.status_code == 302 and first.location.endswith("/ssh?done=removed")
    body = " ".join(text(ana.get(first.location, base_url=BASE)).split())
    assert '<p role="status">Key removed.</p>' in body
    assert "one@laptop" not in body and "two@laptop" in body and "ssh -p 2222" in body

    last = post(ana, "/ssh/keys/remove", {"fingerprint": keys[1]["fingerprint"]}, "/ssh")
    assert last.location.endswith("/ssh?done=off")
    body = " ".join(text(ana.get(last.location, base_url=BASE)).split())
    assert "Key removed. SSH is off" in body and OFF in body and "ssh -p" not in body
    assert box.api.call("ssh.access")["enabled"] is False
    gone = post(ana, "/ssh/keys/remove", {"fingerprint": keys[1]["fingerprint"]}, "/ssh")
    assert gone.status_code == 400
    assert '<p class="error" role="alert">That no longer exists.</p>' in text(gone)


def test_members_cannot_see_or_change_ssh(app, box, tmp_path):
    maria = logged_in(app, "maria")
    assert 'href="/ssh"' not in text(maria.get("/", base_url=BASE))
    answer = maria.get("/ssh", base_url=BASE)
    assert answer.status_code == 403 and "You are not allowed to do that." in text(answer)
    added = post(maria, "/ssh/keys", {"key": keypair(tmp_path, "maria")[1], "name": ""}, "/")
    assert added.status_code == 403
    assert box.api.call("ssh.access")["enabled"] is False


def test_forms_without_the_pages_token_are_refused(app, box, tmp_path):
    ana = logged_in(app, "ana")
    _, pub = keypair(tmp_path, "forged")
    ana.get("/ssh", base_url=BASE)
    for data in ({"key": pub}, {"key": pub, "csrf_token": "forged"}):
        answer = ana.post("/ssh/keys", data=data, base_url=BASE)
        assert answer.status_code == 400 and "This form has expired." in text(answer)
    assert box.api.call("ssh.access")["enabled"] is False

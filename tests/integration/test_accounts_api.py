"""Claiming the box and who may do what, through the real agent, calling as the web
UI's own unprivileged user (here: nobody), the way the web UI will."""

import ipaddress
import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from .conftest import Lab, as_webui


@pytest.fixture
def webui_box(tmp_path):
    root = Path(tempfile.mkdtemp(prefix="cbt-acct-"))
    os.chmod(root, 0o755)
    lab = Lab(tmp_path, phones=0, root=root, webui_user="nobody")
    yield lab
    lab.close()
    subprocess.run(["rm", "-rf", str(root)])


def codes(results):
    return [r.get("error", "ok") for _, r in results]


def test_an_unclaimed_box_accepts_only_the_claim(webui_box):
    lab = webui_box
    results = as_webui(
        lab,
        """
call("setup.status")
call("vpn.device.list")
call("auth.login", name="ana", passphrase="three unrelated words", address="192.0.2.9")
call("setup.code")
call("setup.claim", code="WRNG-CODE-XXXX", address="192.0.2.9", language="en",
     box_name="Home", admin_name="ana", passphrase="three unrelated words", timezone="UTC")
""",
    )
    assert codes(results) == ["ok", "forbidden", "forbidden", "forbidden", "unauthorized"]
    assert results[0][1]["ok"]["claimed"] is False
    assert lab.api.call("config.history", limit=1)[0]["why"] != "claim the box"


def test_claim_then_roles_then_handover(webui_box):
    lab = webui_box
    code = lab.api.call("setup.code")["code"]
    results = as_webui(
        lab,
        f"""
claim = call("setup.claim", code={code!r}, address="192.0.2.9", language="sw",
             box_name="Nyumbani", admin_name="amina", passphrase="three unrelated words",
             timezone="Africa/Nairobi", endpoint={{"host": "home.example.org", "port": 51820}})
admin = claim["session"]
call("setup.claim", code={code!r}, address="192.0.2.9", language="sw", box_name="x",
     admin_name="eve", passphrase="another strong phrase", timezone="UTC")
call("users.add", admin, name="baraka", role="member", passphrase="kilima cha mvua njema")
call("users.add", admin, name="ines", role="installer", passphrase="installer visit phrase")
call("vpn.device.add", admin, name="Amina's laptop")
member = call("auth.login", name="baraka", passphrase="kilima cha mvua njema",
              address="192.0.2.10")["session"]
call("vpn.device.add", member, name="Baraka's phone")
call("vpn.device.list", member)
call("vpn.device.get", member, device="Amina's laptop")
call("vpn.device.remove", member, device="Amina's laptop")
call("vpn.settings.set", member, listen_port=51999)
call("config.history", member)
call("users.list", member)
call("status", member)
installer = call("auth.login", name="ines", passphrase="installer visit phrase",
                 address="192.0.2.11")["session"]
call("vpn.settings.set", installer, listen_port=51821)
call("users.handover", admin)
call("vpn.device.list", installer)
call("auth.logout", member, token=member)
call("vpn.device.list", member)
call("vpn.device.list", admin)
""",
    )
    assert codes(results) == [
        "ok",  # claim
        "forbidden",  # claim again
        "ok",
        "ok",  # add a member and an installer
        "ok",  # admin's own device
        "ok",
        "ok",  # the member logs in, adds a phone
        "ok",  # and sees...
        "not_found",
        "not_found",  # ...only their own devices
        "forbidden",
        "forbidden",
        "forbidden",  # box settings, history, users: admins only
        "ok",  # status, filtered
        "ok",
        "ok",  # the installer logs in and sets the box up
        "ok",  # handover
        "unauthorized",  # the installer's session died with the account
        "ok",
        "unauthorized",  # logout kills the session
        "ok",
    ], results
    assert [d["name"] for d in results[7][1]["ok"]] == ["Baraka's phone"]
    assert [d["name"] for d in results[13][1]["ok"]["vpn"]["devices"]] == ["Baraka's phone"]
    assert results[16][1]["ok"]["removed"] == ["ines"]
    history = lab.api.call("config.history", limit=20)
    whos = {h["who"] for h in history}
    assert {"amina (claim)", "amina (admin)", "baraka (member)", "ines (installer)"} <= whos
    with pytest.raises(Exception, match="already claimed"):
        lab.api.call("setup.code")
    box = lab.api.call("status")["box"]
    assert (box["name"], box["language"], box["timezone"], box["claimed"]) == (
        "Nyumbani",
        "sw",
        "Africa/Nairobi",
        True,
    )


def test_restoring_an_old_version_keeps_the_accounts_and_the_claim(webui_box):
    lab = webui_box
    first = lab.api.call("config.history")[-1]["revision"]
    code = lab.api.call("setup.code")["code"]
    results = as_webui(
        lab,
        f"""
s = call("setup.claim", code={code!r}, address="192.0.2.9", language="en", box_name="Home",
         admin_name="ana", passphrase="three unrelated words", timezone="UTC")["session"]
call("users.add", s, name="bo", role="member", passphrase="kilima cha mvua njema")
bo = call("auth.login", name="bo", passphrase="kilima cha mvua njema", address="192.0.2.3")["session"]
call("vpn.device.add", bo, name="bo's phone")
call("users.remove", s, name="bo")
call("vpn.device.list", s)
call("config.rollback", s, revision={first})
call("vpn.device.list", s)
call("users.list", s)
""",
    )
    assert codes(results) == ["ok"] * 9, results
    assert results[5][1]["ok"] == []  # bo left, and his phone's tunnel with him
    devices, users = results[7][1]["ok"], results[8][1]["ok"]
    assert devices == []  # revision 1 had no devices
    assert [u["name"] for u in users] == ["ana"]  # still claimed, ana still admin
    assert lab.api.call("setup.status")["claimed"] is True


def test_an_invitation_lets_a_new_member_choose_their_passphrase_once(webui_box):
    lab = webui_box
    code = lab.api.call("setup.code")["code"]
    results = as_webui(
        lab,
        f"""
admin = call("setup.claim", code={code!r}, address="192.0.2.9", language="en",
             box_name="Home", admin_name="amina", passphrase="three unrelated words",
             timezone="UTC")["session"]
member = None
call("users.add", admin, name="baraka", role="member", passphrase="kilima cha mvua njema")
member = call("auth.login", name="baraka", passphrase="kilima cha mvua njema",
              address="192.0.2.10")["session"]
call("users.invite", member, name="eve")
invite = call("users.invite", admin, name="zawadi")
call("users.invite", admin, name="baraka")
call("users.invite", admin, name="Bad\\nName")
call("users.invitation", token=invite["token"])
call("users.join", token=invite["token"], passphrase="short")
call("users.join", token=invite["token"], passphrase="mwezi mpya wa tatu", language="sw")
call("users.join", token=invite["token"], passphrase="mwezi mpya wa tatu")
call("users.invitation", token=invite["token"])
call("auth.login", name="zawadi", passphrase="mwezi mpya wa tatu", address="192.0.2.12")
""",
    )
    assert codes(results) == [
        "ok",
        "ok",
        "ok",  # claim, a member added, who logs in
        "forbidden",  # members do not invite
        "ok",  # the admin invites zawadi
        "conflict",  # a name already taken
        "invalid",  # a name with a line break
        "ok",  # the invitation page knows the name
        "invalid",  # a weak passphrase: refused, the invitation still good...
        "ok",  # ...and used
        "not_found",
        "not_found",  # once only
        "ok",  # zawadi logs in with the passphrase she chose
    ], results
    assert results[7][1]["ok"] == {"name": "zawadi", "role": "member", "box": "Home"}
    users = {u["name"]: u for u in lab.api.call("users.list")}
    assert users["zawadi"]["role"] == "member" and users["zawadi"]["language"] == "sw"


def test_failures_from_the_internet_do_not_lock_the_household_out(webui_box):
    """Someone on the Internet fails against the admin's account: the Internet waits,
    the home network and the VPN log in."""
    lab = webui_box
    code = lab.api.call("setup.code")["code"]
    settings = lab.api.call("vpn.settings.get")
    vpn_address = str(ipaddress.ip_network(settings["ipv4_subnet"])[9])
    attack = "".join(
        f'call("auth.login", name="ana", passphrase="wrong guess {i}", address="{address}")\n'
        for i, address in enumerate(["198.51.100.7", "2001:db8:9::1", "2001:db8:9::2", "8.8.8.8"])
    )
    results = as_webui(
        lab,
        f"""
call("setup.claim", code={code!r}, address="192.168.1.20", language="en", box_name="Home",
     admin_name="ana", passphrase="three unrelated words", timezone="UTC")
{attack}
call("auth.login", name="ana", passphrase="three unrelated words", address="203.0.113.9")
call("auth.login", name="ana", passphrase="three unrelated words", address="192.168.1.20")
call("auth.login", name="ana", passphrase="three unrelated words", address="{vpn_address}")
call("auth.login", name="ana", passphrase="three unrelated words", address="::ffff:192.168.1.21")
""",
    )
    assert codes(results) == [
        "ok",  # the claim
        "unauthorized",
        "unauthorized",
        "unauthorized",  # three free mistakes, from three addresses
        "rate_limited",  # then the account waits, from the Internet
        "rate_limited",  # even with the right passphrase
        "ok",  # from home
        "ok",  # through the VPN
        "ok",  # from home, through an IPv6 socket
    ], results


def test_the_handover_ends_the_installers_invitations_and_links(webui_box):
    lab = webui_box
    code = lab.api.call("setup.code")["code"]
    results = as_webui(
        lab,
        f"""
admin = call("setup.claim", code={code!r}, address="192.0.2.9", language="en",
             box_name="Home", admin_name="amina", passphrase="three unrelated words",
             timezone="UTC")["session"]
call("users.add", admin, name="ines", role="installer", passphrase="installer visit phrase")
ines = call("auth.login", name="ines", passphrase="installer visit phrase",
            address="192.0.2.11")["session"]
invite = call("users.invite", ines, name="eve", role="admin")
call("vpn.device.add", ines, name="Amina's phone")
link = call("vpn.device.link", ines, device="Amina's phone")
call("users.add", ines, name="baraka", role="member", passphrase="kilima cha mvua njema")
handed = call("users.handover", admin)
call("users.invitation", token=invite["token"])
call("users.join", token=invite["token"], passphrase="eve would be an admin now")
call("vpn.device.redeem", token=link["token"])
call("users.list", admin)
""",
    )
    assert codes(results) == [
        "ok",  # claim
        "ok",
        "ok",  # an installer, who logs in
        "ok",  # invites an admin
        "ok",
        "ok",  # sets up a phone and makes a one-time link for it
        "ok",  # and makes an account
        "ok",  # handover
        "not_found",  # the installer's invitation ended with the installer
        "not_found",  # nobody joins with it
        "not_found",  # nor fetches the phone's config with the link
        "ok",
    ], results
    handed = results[7][1]["ok"]
    assert handed["ended"]["invitations"] == 1 and handed["ended"]["links"] == 1
    assert handed["created"] == ["baraka"]  # listed for the household to confirm
    users = {u["name"]: u for u in results[11][1]["ok"]}
    assert sorted(users) == ["amina", "baraka"] and users["baraka"]["created_by"] == "ines"


def test_a_members_status_shows_only_what_is_theirs(webui_box):
    lab = webui_box
    code = lab.api.call("setup.code")["code"]
    results = as_webui(
        lab,
        f"""
admin = call("setup.claim", code={code!r}, address="192.0.2.9", language="en",
             box_name="Home", admin_name="amina", passphrase="three unrelated words",
             timezone="UTC")["session"]
call("users.add", admin, name="baraka", role="member", passphrase="kilima cha mvua njema")
member = call("auth.login", name="baraka", passphrase="kilima cha mvua njema",
              address="192.0.2.10")["session"]
call("vpn.device.add", member, name="Baraka's phone")
call("status", member)
call("vpn.device.add", admin, name="Amina's diary tablet")
call("status", member)
call("status", admin)
""",
    )
    assert codes(results) == ["ok"] * 8, results
    own, other, managed = (results[i][1]["ok"] for i in (4, 6, 7))
    assert own["revision"]["why"] == "add device “Baraka's phone”"  # their own change
    assert "Amina's diary tablet" not in json.dumps(other, ensure_ascii=False)
    assert other["revision"]["who"] is None and other["revision"]["why"] is None
    assert other["last_reconcile"] == []
    assert managed["revision"]["why"] == "add device “Amina's diary tablet”"

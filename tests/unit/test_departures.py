"""What a person holds, and what becomes of it when they leave: removal, the installer's
handover and a restore of an older revision all go one way (Desired.without_member), and
no revision is stored that would not load again.

On a real Box (real stores, accounts, VPN, mail and SSH services) whose system commands
are recorded, as in test_reset.py."""

import time
from dataclasses import replace
from types import SimpleNamespace

import pytest

from appliance.accounts.schema import User
from appliance.accounts.service import ROOT, Caller
from appliance.api.methods import call
from appliance.box import Box
from appliance.errors import Conflict, Invalid, NotFound
from appliance.mail.schema import AppPassword, password_secret
from appliance.paths import Paths
from appliance.schema import Desired
from appliance.ssh.openssh import public_key
from appliance.ssh.schema import SshKey
from appliance.vpn import keys
from appliance.vpn.schema import device_key_name, psk_name

from .test_reset import RecordingSystem

PASS = "correct horse battery staple"
BO_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHBgbOlUD2rIbcs0z1ZP2Ut1xK2uXQ+WTnkK8U0aVVaC"
ANA, BO = Caller("ana", "admin"), Caller("bo", "admin")


@pytest.fixture
def box(tmp_path):
    box = Box(Paths(tmp_path), backend=None, system=RecordingSystem(root=tmp_path))
    # Not the VPN's nor the firewall's: they would change this machine's interfaces.
    box.capabilities = [c for c in box.capabilities if c.name not in ("vpn", "firewall")]
    yield box
    box.close()


def household(box) -> dict:
    """ana (admin) and bo (admin), each with a phone; bo with an app password and an SSH
    key; mail on. Returns bo's things."""
    d = box.head()[1]
    d = box.accounts.claim(d, "ana", PASS, "en")
    d = box.accounts.add_user(d, "bo", "admin", "another long passphrase here")
    d = box.vpn.change_settings(d, endpoint={"host": "home.example", "port": 51820})
    d, _ = box.vpn.add_device(d, "ana's phone", owner="ana")
    box.store.commit(d, "ana (admin)", "ana's phone")  # device ids count what is stored
    d, phone = box.vpn.add_device(d, "bo's phone", owner="bo", preshared_key=True)
    d = box.mail.change_settings(d, enabled=True, domain="home.example")
    d, (app, _) = box.mail.add_password(d, "bo", "bo's mail app")
    d = d.replace(ssh=d.ssh.with_key(SshKey(public_key(BO_KEY), "bo's laptop", "bo")))
    d = box.storage.change_settings(d, allow_unencrypted=True)
    revision = box.store.commit(d, "ana (admin)", "the household moves in")
    return {"revision": revision.n, "phone": phone, "app": app}


def test_the_store_refuses_a_document_that_would_not_load_and_keeps_the_head(box):
    household(box)
    before = box.head()
    orphan = AppPassword(id=99, owner="nobody-here", label="stray", slot=1)
    broken = before[1].replace(mail=before[1].mail.with_password(orphan))
    with pytest.raises(Invalid, match="would not load"):
        box.store.commit(broken, "test", "a document with an app password nobody owns")
    assert box.head() == before
    assert box.store.history(1)[0].n == before[0].n


def test_without_member_drops_everything_the_member_held_and_nothing_else():
    d = Desired.new()
    for name in ("ana", "bo"):
        d = d.replace(accounts=d.accounts.with_user(User(name, "admin")))
    d = d.replace(ssh=d.ssh.with_key(SshKey(public_key(BO_KEY), "bo's laptop", "bo")))
    mail = replace(d.mail, enabled=True, domain="home.example")
    mail = mail.with_password(AppPassword(1, "bo", "bo's app", 1))
    mail = mail.with_password(AppPassword(2, "ana", "made for ana by bo", 1, made_by="bo"))
    mail = mail.with_password(AppPassword(3, "ana", "ana's own", 2))
    d = d.replace(mail=mail)
    gone = d.without_member("bo")
    assert [u.name for u in gone.accounts.users] == ["ana"]
    assert gone.ssh.keys == ()
    assert [p.id for p in gone.mail.app_passwords] == [3]  # bo knew the one bo made
    assert Desired.from_json(gone.to_json()) == gone
    assert d.owners() == {"ana", "bo"} and gone.owners() == {"ana"}


def test_a_restore_from_before_a_member_left_loads_and_brings_back_nothing_of_theirs(box):
    made = household(box)
    call(box, ANA, "users.remove", {"name": "bo"})
    assert [d.name for d in box.head()[1].vpn.devices] == ["ana's phone"]
    for secret in (
        device_key_name(made["phone"].id),
        psk_name(made["phone"].id),
        password_secret("bo", made["app"].slot),
        "account/bo/password",
    ):
        assert box.secrets.get(secret) is None, secret

    call(box, ANA, "config.rollback", {"revision": made["revision"]})
    head, restored = box.head()
    # The stored document loads again, as the agent does at its next start.
    assert Desired.from_json(box.store.document(head.n)) == restored
    assert [d.name for d in restored.vpn.devices] == ["ana's phone"]
    assert restored.mail.app_passwords == ()
    assert restored.ssh.keys == ()
    assert [u.name for u in restored.accounts.users] == ["ana"]


def test_a_restore_keeps_the_boxs_own_devices_and_drops_one_without_its_secret(box):
    made = household(box)
    d = box.head()[1]
    d, kept = box.vpn.add_device(d, "the printer")  # owner None: the box's
    box.store.commit(d, "ana (admin)", "the printer")
    d, lost = box.vpn.add_device(d, "old tablet", preshared_key=True)
    box.store.commit(d, "ana (admin)", "two devices of the box's")
    before = box.head()[0].n
    box.secrets.delete(psk_name(lost.id))  # as if its secret were gone
    call(box, ANA, "vpn.device.remove", {"device": kept.id})
    call(box, ANA, "vpn.device.remove", {"device": lost.id})
    call(box, ANA, "config.rollback", {"revision": before})
    names = [d.name for d in box.head()[1].vpn.devices]
    assert "the printer" in names and "old tablet" not in names
    assert made["phone"].name in names  # bo is still a member: his phone is his


def test_the_handover_ends_what_the_installer_made(box):
    household(box)
    d = box.accounts.add_user(box.head()[1], "ines", "installer", "installer visit phrase")
    box.store.commit(d, "ana (admin)", "the installer comes")
    ines = Caller("ines", "installer")
    invite = call(box, ines, "users.invite", {"name": "carl", "role": "admin"})
    call(box, ines, "users.add", {"name": "dee", "passphrase": "a member the installer made"})
    made = call(box, ines, "mail.password.add", {"label": "ana's tablet", "owner": "ana"})
    link = call(box, ines, "vpn.device.link", {"device": "ana's phone"})
    answer = call(box, ANA, "users.handover", {})
    assert answer["removed"] == ["ines"]
    assert answer["ended"]["invitations"] == 1 and answer["ended"]["links"] == 1
    assert answer["ended"]["app_passwords"] == ["ana's tablet"]
    assert answer["created"] == ["dee"]  # for the household to confirm, not removed
    with pytest.raises(NotFound):
        call(box, ROOT, "users.invitation", {"token": invite["token"]})
    with pytest.raises(NotFound):
        call(box, ROOT, "vpn.device.redeem", {"token": link["token"]})
    assert made["app_password"]["id"] not in [p.id for p in box.head()[1].mail.app_passwords]
    assert box.head()[1].accounts.user("dee") is not None


def test_a_member_sees_only_their_own_revisions_in_status(box):
    household(box)
    box.backend = SimpleNamespace(kind="userspace")  # status names it; no VPN here
    d = box.accounts.add_user(box.head()[1], "kid", "member", "a member of the household")
    box.store.commit(d, "ana (admin)", "add user kid")
    call(box, BO, "vpn.device.add", {"name": "bo's secret laptop"})
    seen = call(box, Caller("kid", "member"), "status", {})
    assert "bo's secret laptop" not in str(seen)
    assert seen["revision"]["who"] is None and seen["revision"]["why"] is None
    assert seen["last_reconcile"] == []
    managed = call(box, ANA, "status", {})
    assert managed["revision"]["why"] == "add device “bo's secret laptop”"


def test_rekeyed_devices_get_new_keys_and_a_restore_keeps_the_new_ones(box):
    household(box)
    d = box.accounts.add_user(box.head()[1], "ines", "installer", "installer visit phrase")
    box.store.commit(d, "ana (admin)", "the installer comes")
    before = box.head()[0].n
    old = {d.id: d.public_key for d in box.head()[1].vpn.devices}
    answer = call(box, ANA, "users.handover", {"rekey_devices": True})
    assert sorted(r["name"] for r in answer["rekeyed"]) == ["ana's phone", "bo's phone"]
    new = {d.id: d.public_key for d in box.head()[1].vpn.devices}
    assert all(new[i] != old[i] for i in old)
    call(box, ANA, "config.rollback", {"revision": before})
    for device in box.head()[1].vpn.devices:  # the key the box hands out is the one it knows
        private = box.secrets.get(device_key_name(device.id))
        assert keys.public_key(private) == device.public_key == new[device.id]


def test_a_new_member_with_a_leavers_name_does_not_get_back_what_the_leaver_held(box):
    made = household(box)
    call(box, ANA, "users.remove", {"name": "bo"})
    box.runtime.clock = lambda: time.time() + 5  # bo the second joins later
    call(box, ANA, "users.add", {"name": "bo", "passphrase": "a different person here"})
    call(box, ANA, "config.rollback", {"revision": made["revision"]})
    restored = box.head()[1]
    assert restored.ssh.keys == ()  # the first bo's key: no secret behind it, still not back
    assert [d.name for d in restored.vpn.devices] == ["ana's phone"]


def test_a_runtime_store_from_before_records_who_makes_invitations_and_links(tmp_path):
    import sqlite3

    from appliance.accounts.sessions import RuntimeStore

    old = sqlite3.connect(tmp_path / "runtime.db")
    old.executescript(
        "CREATE TABLE links (token_sha256 TEXT PRIMARY KEY, device_id INTEGER NOT NULL,"
        " expires REAL NOT NULL);"
        "CREATE TABLE invites (token_sha256 TEXT PRIMARY KEY, user TEXT NOT NULL,"
        " role TEXT NOT NULL, expires REAL NOT NULL);"
        "INSERT INTO invites VALUES ('x', 'carol', 'member', 9e9);"
    )
    old.commit()
    old.close()
    runtime = RuntimeStore(tmp_path / "runtime.db")
    try:
        token, _ = runtime.open_invite("eve", "admin", made_by="ines")
        runtime.open_link(3, made_by="ines")
        assert runtime.invite(token) == ("eve", "admin", "ines")
        assert runtime.end_made_by("ines") == (1, 1)
        assert runtime.invite(token) is None
    finally:
        runtime.close()


def test_a_handover_whose_storage_step_is_refused_ends_nothing(box):
    household(box)
    d = box.accounts.add_user(box.head()[1], "ines", "installer", "installer visit phrase")
    box.store.commit(d, "ana (admin)", "the installer comes")
    with pytest.raises(Invalid):  # a new recovery key needs the storage's passphrase
        call(box, ANA, "users.handover", {"new_recovery_key": True})
    with pytest.raises(Conflict):  # and a storage (this box has none)
        call(box, ANA, "users.handover", {"new_recovery_key": True, "storage_passphrase": "x"})
    with pytest.raises(Conflict):  # the installer cannot hand over to themselves
        call(box, Caller("ines", "installer"), "users.handover", {})
    assert box.head()[1].accounts.user("ines") is not None

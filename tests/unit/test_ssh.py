"""The installer's SSH as data: which public keys are taken and which refused, the
sshd_config and authorized_keys it is given, the firewall's rule, and where it lives."""

import base64
import subprocess
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from appliance.configstore import ConfigStore
from appliance.daemonconfig import Facts
from appliance.errors import Conflict, Invalid
from appliance.files.capability import FilesCapability
from appliance.files.schema import FilesSettings
from appliance.firewall import ruleset
from appliance.paths import Paths
from appliance.schema import Desired
from appliance.secrets import Secret
from appliance.ssh.capability import SshCapability, authorized_keys, sshd_config
from appliance.ssh.openssh import fingerprint, public_key
from appliance.ssh.schema import MAX_KEYS, SshKey, SshSettings, key_comment
from appliance.storage.schema import StorageSettings, Volume
from appliance.system import System


def openssh(private) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


ED = openssh(ed25519.Ed25519PrivateKey.generate())
EC = openssh(ec.generate_private_key(ec.SECP384R1()))
RSA = openssh(rsa.generate_private_key(65537, 3072))
RSA_SHORT = openssh(rsa.generate_private_key(65537, 1024))
HOST_KEY = "-----BEGIN OPENSSH PRIVATE KEY----- the box's"


def blob_of(fields: list[bytes]) -> str:
    return base64.b64encode(b"".join(len(f).to_bytes(4, "big") + f for f in fields)).decode()


def with_keys(*lines: str, owner=None) -> Desired:
    return Desired.new().replace(
        ssh=SshSettings(
            tuple(SshKey(public_key(line), f"key {i}", owner) for i, line in enumerate(lines))
        )
    )


def test_the_kinds_openssh_makes_are_taken_in_their_canonical_form():
    for line in (ED, EC, RSA):
        assert public_key(f"  {line} ana@laptop\n") == line
    kind, blob = ED.split()
    assert public_key(f"{kind}\t{blob}") == ED  # a tab between the fields is fine
    # Security keys (FIDO): the key, then the application it is bound to.
    point = base64.b64decode(openssh(ec.generate_private_key(ec.SECP256R1())).split()[1])
    sk = "sk-ecdsa-sha2-nistp256@openssh.com"
    fields = [sk.encode(), b"nistp256", point[-65:], b"ssh:"]
    assert public_key(f"{sk} {blob_of(fields)} yubikey") == f"{sk} {blob_of(fields)}"
    with pytest.raises(Invalid, match="not a sk-ecdsa"):
        public_key(f"{sk} {blob_of([sk.encode(), b'nistp384', point[-65:], b'ssh:'])}")
    assert key_comment(f"{ED} Ana's laptop (home)") == "Ana's laptop (home)"
    assert key_comment(f"{ED} {'a' * 63} bc") == "a" * 63
    with pytest.raises(Invalid, match="name the key"):
        key_comment(ED)


@pytest.mark.parametrize(
    "line, why",
    [
        (f'command="rm -rf /" {ED}', "with no options before it"),
        (f"restrict {ED}", "with no options before it"),
        (f"{ED} a\n{ED} b", "one line"),
        (f"{ED} ana\r", None),  # a trailing line break is stripped: still one key
        (f"{ED} evil\x1b[2J", "one line"),
        (ED.split()[0], "must start with a key type"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "must start with a key type"),
        (ED[:-4], "damaged"),
        (ED.split()[0] + " !!!!", "damaged"),
        (f"ssh-rsa {ED.split()[1]}", "not a ssh-rsa key"),
        (f"ssh-ed25519 {blob_of([b'ssh-ed25519', bytes(31)])}", "not a ssh-ed25519 key"),
        (f"ssh-ed25519 {blob_of([b'ssh-ed25519', bytes(32), b'more'])}", "not a ssh-ed25519 key"),
        (f"ecdsa-sha2-nistp256 {EC.split()[1]}", "not a ecdsa-sha2-nistp256 key"),
        (RSA_SHORT, "at least 2048 bits"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=", "private key"),
        (f"{ED} {'x' * 9000}", "too long"),
        (42, "must be text"),
    ],
)
def test_anything_but_one_public_key_is_refused_with_a_reason(line, why):
    if why is None:
        assert public_key(line) == ED
        return
    with pytest.raises(Invalid, match=why):
        public_key(line)


def test_the_fingerprint_is_what_ssh_keygen_shows(tmp_path):
    (tmp_path / "k.pub").write_text(f"{RSA} x\n")
    shown = subprocess.run(
        ["ssh-keygen", "-lf", tmp_path / "k.pub"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert fingerprint(RSA) == shown


def test_the_slice_refuses_duplicates_too_many_keys_and_owners_who_are_not_users():
    entry = {"key": ED, "name": "Ana's laptop"}
    with pytest.raises(Invalid, match="already there"):
        SshSettings.from_json({"keys": [entry, {**entry, "name": "again"}]})
    many = [
        {"key": openssh(ed25519.Ed25519PrivateKey.generate()), "name": f"k{i}"}
        for i in range(MAX_KEYS + 1)
    ]
    with pytest.raises(Invalid, match="too many"):
        SshSettings.from_json({"keys": many})
    with pytest.raises(Invalid, match="control character"):
        SshSettings.from_json({"keys": [{**entry, "name": "a\u202eb"}]})
    doc = Desired.new().to_json() | {"ssh": {"keys": [{**entry, "owner": "ghost"}]}}
    with pytest.raises(Invalid, match="not a user"):
        Desired.from_json(doc)
    d = with_keys(ED, EC)
    assert Desired.from_json(d.to_json()) == d  # a round trip loses nothing
    with pytest.raises(Conflict, match="already there") as said:
        d.ssh.with_key(SshKey(ED, "again"))
    assert said.value.field == "key"  # the web UI shows it beside the key's field
    full = SshSettings.from_json({"keys": many[:MAX_KEYS]})
    with pytest.raises(Conflict, match="remove one first"):
        full.with_key(SshKey(ED, "one more"))


def test_root_only_by_key_nothing_forwarded_and_each_key_restricted():
    config = dict(
        line.split(" ", 1)
        for line in sshd_config().decode().splitlines()
        if line and not line.startswith("#") and not line.startswith("ListenAddress")
    )
    assert config["AllowUsers"] == "root" and config["PermitRootLogin"] == "prohibit-password"
    assert config["PasswordAuthentication"] == config["KbdInteractiveAuthentication"] == "no"
    for forwarding in (
        "AllowTcpForwarding",
        "AllowStreamLocalForwarding",
        "AllowAgentForwarding",
        "X11Forwarding",
        "PermitTunnel",
    ):
        assert config[forwarding] == "no", forwarding
    assert (
        authorized_keys(with_keys(ED, RSA)).decode() == f"restrict,pty {ED}\nrestrict,pty {RSA}\n"
    )


def test_the_firewall_opens_its_port_to_home_networks_only_while_a_key_is_set():
    assert ruleset.home_ports(Desired.new()) == frozenset()
    assert "2222" not in ruleset.wanted(Desired.new()).structure
    d = with_keys(ED)
    assert ruleset.home_ports(d) == {("tcp", 2222)} and ("tcp", 2222) not in ruleset.open_ports(d)
    rules = [r.strip() for r in ruleset.wanted(d).structure.splitlines() if "2222" in r]
    assert rules == [
        "ip saddr { 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 169.254.0.0/16 } "
        "tcp dport { 2222 } accept",
        "ip6 saddr { fc00::/7, fe80::/10 } tcp dport { 2222 } accept",
    ]


def test_a_locked_storage_neither_hides_the_keys_nor_stops_ssh(tmp_path):
    """An installer must reach a box whose storage did not unlock after a power cut."""
    paths, mounted = Paths(tmp_path), [True]
    store = ConfigStore(paths, lambda: mounted[0])
    volume = Volume(uuid="2f0c6f55-6a53-4c3b-9d2e-8c1f0e3a9b41", cipher="aes-xts", disk="usb")
    store.commit(with_keys(ED).replace(storage=StorageSettings(volume)), "ana", "disk and key")
    store.secrets.put("ssh/host_key", Secret(HOST_KEY))
    store.close()
    mounted[0] = False
    locked = ConfigStore(paths, lambda: mounted[0])
    try:
        desired = locked.head()[1]
        assert locked.locked and desired.ssh == with_keys(ED).ssh
        assert locked.secrets.get("ssh/host_key").reveal() == HOST_KEY
    finally:
        locked.close()
    # The data services wait for the storage; the installer's SSH is written and started.
    box = System(tmp_path / "box")  # no /proc/1/mountinfo: nothing mounted, locked
    box.write("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    box.write("/etc/group", b"root:x:0:\n")
    cap = SshCapability(box, {"ssh/host_key": Secret(HOST_KEY)})
    facts = Facts(files={}, running={"ssh": False}, ready=True, private=None)
    assert [str(a) for a in cap.plan(facts, desired)] == [
        "write 3 file(s): /etc/commonsbox/ssh/sshd_config, /var/lib/commonsbox/ssh/"
        "authorized_keys, /var/lib/commonsbox/ssh/host_ed25519",
        "start ssh",
    ]
    files = FilesCapability(box, {"files.host_key": Secret(HOST_KEY)})
    assert (
        files.plan(
            replace(facts, running={"files": False}), desired.replace(files=FilesSettings(True))
        )
        == []
    )

"""The factory reset on a real Box (real SQLite stores, real accounts, VPN, mail and
storage services) whose system commands are recorded instead of run: this machine has
no device-mapper, and nothing here may touch its daemons or its firewall. The storage
is told apart by its settings and by the commands the reset ran."""

import stat
import subprocess
from dataclasses import dataclass, field

import pytest

from appliance.box import Box
from appliance.errors import NotFound, Unauthorized
from appliance.paths import Paths
from appliance.reset import RESET_WHO, RESET_WHY, factory_reset, resume
from appliance.schema import Desired
from appliance.ssh.capability import AUTHORIZED_KEYS
from appliance.ssh.openssh import public_key
from appliance.ssh.schema import SshKey, SshSettings
from appliance.storage.place import KEYS, MAPPED, PRIVATE
from appliance.storage.schema import StorageSettings, Volume
from appliance.system import System
from appliance.vpn.capability import BOX_KEY

PASSPHRASE = "correct horse battery staple"
INSTALLER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHBgbOlUD2rIbcs0z1ZP2Ut1xK2uXQ+WTnkK8U0aVVaC"
UUID = "0b7a1c2e-4f3d-4a5b-8c9d-112233445566"
# Commands that would change what a disk holds: the reset may run none of them.
DESTRUCTIVE = (
    "luksFormat",
    "luksErase",
    "luksKillSlot",
    "luksRemoveKey",
    "erase",
    "wipefs",
    "mkfs",
    "mkfs.ext4",
    "dd",
    "sfdisk",
    "blkdiscard",
    "shred",
)


@dataclass(frozen=True)
class RecordingSystem(System):
    """The box's system in a directory: files are real, commands are recorded. `kill`,
    `umount` and `cryptsetup close` do to the directory what they would do to a box."""

    commands: list = field(default_factory=list, compare=False)

    def run(self, cmd, check=True, input=None, timeout=60, daemon=False, pass_fds=()):
        cmd = list(cmd)
        self.commands.append(cmd)
        rc = 0
        if cmd[:2] == ["kill", "-0"]:
            rc = 1 if ["kill", cmd[2]] in self.commands else 0
        elif cmd[0] == "umount":
            mountinfo = self.path("/proc/1/mountinfo")
            mountinfo.write_text(
                "".join(
                    line
                    for line in mountinfo.read_text().splitlines(True)
                    if f" {cmd[-1]} " not in line
                )
            )
        elif cmd[:2] == ["cryptsetup", "close"]:
            self.path(f"/dev/mapper/{cmd[2]}").unlink(missing_ok=True)
        return subprocess.CompletedProcess(cmd, rc, "", "")


@pytest.fixture
def box(tmp_path):
    system = RecordingSystem(root=tmp_path)
    box = Box(Paths(tmp_path), backend=None, system=system)
    # Only what acts through the recorded system: the VPN's and the firewall's
    # capabilities would change this machine's interfaces and nftables.
    box.capabilities = [c for c in box.capabilities if c.name not in ("vpn", "firewall")]
    yield box
    box.close()


def household(box: Box, *, encrypted: bool = True) -> dict:
    """A claimed box as a family leaves it: two members, phones, mail with an app
    password, sessions, a one-time link, an invitation, the storage."""
    d = box.head()[1]
    d = box.accounts.claim(d, "alice", PASSPHRASE, "en")
    d = box.accounts.add_user(d, "bob", "member", "another long passphrase here")
    d, phone = box.vpn.add_device(d, "Alice's phone", owner="alice", preshared_key=True)
    box.store.commit(d, "alice (admin)", "Alice's phone")  # ids count what is stored
    d, _ = box.vpn.add_device(d, "Bob's laptop", owner="bob")
    d = box.mail.change_settings(d, enabled=True, domain="smith.example")
    d, (entry, _) = box.mail.add_password(d, "alice", "Thunderbird")
    d = d.replace(ssh=SshSettings((SshKey(public_key(INSTALLER_KEY), "Ines's laptop", "alice"),)))
    volume = Volume(UUID, "adiantum", "SanDisk Extreme") if encrypted else None
    d = d.replace(storage=StorageSettings(volume, allow_unencrypted=not encrypted))
    if encrypted:
        unlocked(box)  # the configuration moves onto the volume (appliance/configstore.py)
    box.store.commit(d, "alice (admin)", "the household moves in")
    token, _ = box.accounts.login(box.head()[1], "alice", PASSPHRASE, "192.168.1.50")
    link, _ = box.runtime.open_link(phone.id)
    invite, _ = box.runtime.open_invite("carol", "member")
    # The relay's and the installer's SSH's files as the agent wrote them, and the
    # relay's daemons running.
    for cap in (*box.data_services, box.ssh):
        if cap.enabled(d):
            for path, f in cap.files(d).items():
                box.system.path(path).parent.mkdir(parents=True, exist_ok=True)
                box.system.path(path).write_bytes(f.data)
    for pidfile, pid in (
        ("/run/dovecot/master.pid", "4242"),
        ("/var/spool/postfix/pid/master.pid", "4343"),
    ):
        box.system.path(pidfile).parent.mkdir(parents=True, exist_ok=True)
        box.system.path(pidfile).write_text(pid)
    return {
        "token": token,
        "link": link,
        "invite": invite,
        "code": box.runtime.setup_code()[0],
        "box_key": box.secrets.get(BOX_KEY).reveal(),
        "public": box.vpn.box_public_key(),
        "revision": box.head()[0].n,
        "desired": d,
    }


def unlocked(box: Box) -> None:
    """The storage as `storage unlock` leaves it: mapped and mounted where data lives."""
    box.system.path(MAPPED).parent.mkdir(parents=True)
    box.system.path(MAPPED).write_text("")
    box.system.path("/proc/1").mkdir(parents=True)
    box.system.path("/proc/1/mountinfo").write_text(
        f"36 25 254:0 / {PRIVATE} rw,nodev,nosuid,noexec - ext4 {MAPPED} rw\n"
    )
    box.system.path(PRIVATE).mkdir(parents=True, exist_ok=True)


def test_after_a_reset_the_box_is_unclaimed_and_knows_nobody(box):
    before = household(box)
    factory_reset(box)

    revision, desired = box.head()
    assert not desired.box.claimed and desired.accounts.users == ()
    assert desired.vpn.devices == () and not desired.mail.enabled
    assert desired.mail.app_passwords == () and desired.storage == StorageSettings()
    assert desired.ssh.keys == ()  # nobody's SSH key, nor the box's SSH host key (below)
    assert desired.vpn.ipv4_subnet != before["desired"].vpn.ipv4_subnet  # a fresh box's
    # The history: the reset's one revision, nothing before it.
    assert [r.n for r in box.store.history()] == [revision.n]
    assert (revision.who, revision.why) == (RESET_WHO, RESET_WHY)
    with pytest.raises(NotFound):
        box.store.document(before["revision"])
    # Secrets: only the new WireGuard key the box made for itself.
    assert set(box.secrets.get_many("")) == {"vpn/box", "vpn/box.public"}
    assert box.vpn.box_public_key() != before["public"]
    # Sessions, links, invitations, the old setup code: gone; a new code to claim it.
    assert box.accounts.caller(desired, before["token"]).role == "anonymous"
    assert box.runtime.session(before["token"]) is None
    assert box.runtime.redeem_link(before["link"]) is None
    assert box.runtime.invite(before["invite"]) is None
    code = box.runtime.live_setup_code()
    assert code is not None and code != before["code"]
    assert code in (box.paths.root / "run/issue.d/commonsbox.issue").read_text()
    with pytest.raises(Unauthorized):
        box.accounts.login(desired, "alice", PASSPHRASE, "192.168.1.50")


def test_the_storage_is_locked_and_forgotten_but_never_erased(box):
    household(box)
    factory_reset(box)
    commands = box.system.commands
    ran = [" ".join(c) for c in commands]
    assert f"umount {PRIVATE}" in ran and "cryptsetup close cbprivate" in ran
    assert not any(word in c for c in commands for word in DESTRUCTIVE), ran
    # The relay's daemons stopped before their data's disk was locked.
    first_close = ran.index("cryptsetup close cbprivate")
    assert ran.index("kill 4242") < first_close and ran.index("kill 4343") < first_close
    assert not box.system.path(MAPPED).exists()
    assert box.head()[1].storage.volume is None


def test_the_relays_files_and_every_secret_are_gone_from_the_files_too(box):
    before = household(box)
    rendered = [
        p
        for cap in (*box.data_services, box.ssh)
        if cap.enabled(before["desired"])
        for p in cap.files(before["desired"])
    ]
    assert f"{KEYS}/mail/passwords/1" in rendered and AUTHORIZED_KEYS in rendered
    factory_reset(box)
    assert not [p for p in rendered if box.system.path(p).exists()]
    # secure_delete and an emptied write-ahead log: the old key is not in the files.
    stored = b"".join(
        p.read_bytes()
        for p in box.paths.secrets_db.parent.iterdir()
        if p.name.startswith("secrets.db")
    )
    assert before["box_key"].encode() not in stored
    history = b"".join(
        p.read_bytes() for p in box.paths.state_dir.iterdir() if p.name.startswith("state.db")
    )
    assert b"smith.example" not in history and b"Alice's phone" not in history


def test_a_capability_that_keeps_something_of_its_own_is_told_to_forget_it(box):
    household(box)
    told = []
    box.files.forget = lambda: told.append(box.head()[1].box.claimed)
    factory_reset(box)
    assert told == [False]  # after the box is unclaimed, so a cut reset is finished again


def test_data_kept_unencrypted_on_the_card_is_set_aside_not_erased(box):
    household(box, encrypted=False)
    mail = box.system.path(f"{PRIVATE}/mail/smith.example/alice/Maildir/cur/1.eml")
    mail.parent.mkdir(parents=True)
    mail.write_text("Subject: hello\n\nfrom the old household\n")
    factory_reset(box)
    revision = box.head()[0].n
    kept = box.system.path(f"{PRIVATE}.before-reset-{revision}")
    assert (
        (kept / "mail/smith.example/alice/Maildir/cur/1.eml")
        .read_text()
        .endswith("from the old household\n")
    )
    assert stat.S_IMODE(kept.stat().st_mode) == 0o700
    assert not box.system.path(PRIVATE).exists()  # the new household starts empty


def test_a_reset_cut_short_after_its_first_step_is_finished_at_the_next_start(box):
    before = household(box, encrypted=False)
    # The power went as the reset's first commit had landed: the box is unclaimed,
    # the rest is still there.
    box.store.commit(Desired.new(), RESET_WHO, RESET_WHY)
    assert len(box.store.history()) > 1 and box.secrets.get("mail/dkim") is not None
    assert resume(box) is True
    assert len(box.store.history()) == 1
    assert set(box.secrets.get_many("")) == {"vpn/box", "vpn/box.public"}
    assert box.runtime.session(before["token"]) is None
    assert resume(box) is False  # done: a restart changes nothing


def test_resume_leaves_a_normal_box_alone(box):
    household(box)
    n = len(box.store.history())
    # A household's own change may give any reason: only the reset's "who" counts.
    box.store.commit(box.head()[1], "alice (admin)", RESET_WHY)
    assert resume(box) is False
    assert len(box.store.history()) == n + 1 and box.secrets.get("mail/dkim") is not None


def test_a_reset_of_a_fresh_box_is_harmless(box):
    factory_reset(box)
    factory_reset(box)
    assert len(box.store.history()) == 1 and not box.head()[1].box.claimed
    assert box.runtime.live_setup_code() is not None
    assert not [
        c for c in box.system.commands if c[:2] == ["cryptsetup", "close"] and c[2] != "cbprivate"
    ]
    assert not any(word in c for c in box.system.commands for word in DESTRUCTIVE)


def test_the_copies_an_update_kept_of_the_stores_are_forgotten_too(box):
    """A snapshot taken before an update migrated the stores holds every secret of
    the card (appliance/update/snapshot.py): a reset must not leave it behind."""
    from appliance.update import snapshot
    from appliance.update.stores import card, known, versions

    before = household(box)
    place = card(box.paths)
    taken = snapshot.take(place, versions(place), known(place))
    assert before["box_key"].encode() in (taken / "secrets.db").read_bytes()
    factory_reset(box)
    assert not place.snapshots.exists()
    left = b"".join(p.read_bytes() for p in place.dir.rglob("*") if p.is_file())
    assert before["box_key"].encode() not in left

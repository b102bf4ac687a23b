"""The backups' pure parts as data: which repository paths are taken, what borg's
errors mean, the archives' names and retention, when the health check fails, the key as
typed from paper; and the copies: a SQLite store with what is still in its write-ahead
log, a file written to while it is copied, the key never in borg's argv or environment."""

import os
import sqlite3
import stat
from datetime import datetime
from pathlib import Path

import pytest

from appliance.backup import borg, record, snapshot
from appliance.backup.borg import Borg, Failure, error_of, parse_log
from appliance.backup.capability import BackupCapability
from appliance.backup.schema import BackupSettings, repository
from appliance.backup.service import new_key, typed_key
from appliance.errors import Conflict, DiskFull, Invalid, NotFound, SystemFailure, WrongKey
from appliance.paths import Paths
from appliance.schema import Desired
from appliance.secrets import Secret
from appliance.sqlite import open_private


@pytest.mark.parametrize(
    "given, taken",
    [
        ("/media/usb/commonsbox", "/media/usb/commonsbox"),
        ("/srv/backup/", "/srv/backup"),
        ("", None),
        (None, None),
    ],
)
def test_a_repository_is_a_plain_absolute_path(given, taken):
    assert repository(given) == taken


@pytest.mark.parametrize(
    "given",
    [
        "relative/path",
        "/",
        "/media/../etc",
        "/media//usb",
        "/media/usb::archive",  # borg would read an archive's name
        "/media/usb stick",
        "/media/usb;rm -rf /",
        "-/x",
        " /media/usb",
        "/media/usb\n",
        "/" + "a" * 300,
        "ssh://buddy/repo",  # the buddies come later
    ],
)
def test_anything_else_is_refused_before_borg_sees_it(given):
    with pytest.raises(Invalid) as refused:
        repository(given)
    assert refused.value.field == "repository"


def test_the_slice_reads_what_it_writes_and_a_new_box_has_no_backups():
    assert BackupSettings.new().repository is None
    s = BackupSettings.from_json({"repository": "/media/usb/cb"})
    assert BackupSettings.from_json(s.to_json()) == s
    with pytest.raises(Invalid):
        BackupSettings.from_json({"repository": "/x", "password": "no"})


# What borg 1.2 prints with --log-json, as seen on this machine (the messages shortened).
WRONG = '{"type": "log_message", "levelname": "ERROR", "name": "borg.archiver", "msgid": "PassphraseWrong", "message": "passphrase supplied in BORG_PASSPHRASE, by BORG_PASSCOMMAND or via BORG_PASSPHRASE_FD is incorrect."}'
MISSING = '{"type": "log_message", "levelname": "ERROR", "name": "borg.archiver", "msgid": "Repository.DoesNotExist", "message": "Repository /tmp/borgt/nothere does not exist."}'
FULL = '{"type": "log_message", "levelname": "WARNING", "name": "borg.repository", "message": "No space left on device, cleaning up partial transaction to free space."}\n{"type": "log_message", "levelname": "ERROR", "name": "borg.archiver", "msgid": "Exception", "message": "Local Exception"}\n{"type": "log_message", "levelname": "ERROR", "name": "borg.archiver", "message": "Traceback (most recent call last):\\nOSError: [Errno 28] No space left on device\\n"}'
TWICE = '{"type": "log_message", "levelname": "ERROR", "name": "borg.archiver", "msgid": "Archive.AlreadyExists", "message": "Archive box-2026-12-07T13:40:01 already exists"}'
OTHER = '{"type": "log_message", "levelname": "ERROR", "name": "borg.archiver", "msgid": "LockTimeout", "message": "Failed to create/acquire the lock /r/lock.exclusive (timeout)."}'


@pytest.mark.parametrize(
    "stderr, kind, field",
    [
        (WRONG, WrongKey, "key"),
        (MISSING, NotFound, "repository"),
        (FULL, DiskFull, "repository"),
        (TWICE, Conflict, None),
        (OTHER, SystemFailure, None),
        ("not json at all", SystemFailure, None),
    ],
)
def test_what_borgs_errors_mean(stderr, kind, field):
    error = error_of(parse_log(stderr), "/media/usb/cb")
    assert type(error) is kind and error.field == field


def test_a_failure_names_what_borg_said_and_only_that():
    error = error_of(parse_log(OTHER), "/r")
    assert error.message.startswith("borg failed: Failed to create/acquire the lock")
    assert parse_log(WRONG) == Failure(
        frozenset({"PassphraseWrong"}), (parse_log(WRONG).messages[0],)
    )


def test_archives_are_named_by_time_and_only_those_are_pruned():
    name = borg.archive_name(datetime(2026, 12, 7, 3, 0, 5))
    assert name == "box-2026-12-07T03:00:05" and borg.is_archive_name(name)
    for other in ("box-yesterday", "photos-2026-12-07T03:00:05", "box-2026-12-07T03:00:05;x"):
        assert not borg.is_archive_name(other)
    assert borg.prune_args() == [
        "--glob-archives",
        "box-*",
        "--keep-daily=7",
        "--keep-weekly=4",
        "--keep-monthly=12",
    ]


DAY = 86400.0


@pytest.mark.parametrize(
    "data, age_days, fails",
    [
        ({}, 10, False),  # never set up
        ({"setup": {"at": 0}}, 2.9, False),  # set up, the first backup not due yet
        ({"setup": {"at": 0}}, 3.1, True),
        ({"setup": {"at": 0}, "last_good": {"at": 0}}, 3.0, False),
        ({"setup": {"at": 0}, "last_good": {"at": 0}}, 4, True),
        (
            {"setup": {"at": -9 * DAY}, "last_good": {"at": 0}, "last_failure": {"at": DAY}},
            1,
            False,
        ),
    ],
)
def test_three_days_without_a_good_backup_fail(data, age_days, fails):
    assert (record.overdue(data, age_days * DAY) is not None) == fails


def test_the_health_check_only_once_backups_are_set_up(tmp_path):
    cap = BackupCapability(Paths(tmp_path))
    d = Desired.new()
    assert cap.health({"setup": {"at": 0}}, d) == []
    d = d.replace(backup=BackupSettings("/media/usb/cb"))
    [check] = cap.health({"setup": {"at": 0}}, d)
    assert not check.ok and "no backup has worked" in check.detail
    record.note(Paths(tmp_path), setup={"repository": "/media/usb/cb"}, last_good={"archive": "a"})
    [check] = cap.health(cap.read_facts(d), d)
    assert check.ok


def test_the_key_is_typed_back_from_paper_in_any_case_and_spacing():
    key = new_key()
    text = key.reveal()
    assert len(text) == 39 and text.count("-") == 7
    assert typed_key(text.lower().replace("-", " ")) == key
    assert typed_key(f"  {text.replace('-', '')}  ") == key
    assert new_key() != key
    for wrong in ("", text[:-1], text.replace(text[0], "1"), text + "A"):
        with pytest.raises(Invalid):
            typed_key(wrong)


def test_a_store_is_copied_with_what_its_write_ahead_log_still_holds(tmp_path):
    db = open_private(tmp_path / "live.db")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("CREATE TABLE t (x)")
    db.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    assert (tmp_path / "live.db-wal").stat().st_size > 0  # not in the main file yet
    snapshot.copy_store(tmp_path / "live.db", tmp_path / "snap/copy.db")
    db.close()
    assert stat.S_IMODE((tmp_path / "snap/copy.db").stat().st_mode) == 0o600
    copy = sqlite3.connect(tmp_path / "snap/copy.db")
    assert copy.execute("SELECT count(*) FROM t").fetchone() == (100,)
    copy.close()


def test_a_file_written_to_while_it_is_copied_is_copied_again(tmp_path, monkeypatch):
    source, target = tmp_path / "archive.list", tmp_path / "copy"
    source.write_text("line 1\n")
    real = snapshot.shutil.copyfile
    writes = iter(["line 2\n", "line 3\n"])  # Prosody appends twice during the first copies

    def copy_while_appended(src, dst, **kw):
        real(src, dst, **kw)
        line = next(writes, None)
        if line:
            with open(src, "a") as f:
                f.write(line)

    monkeypatch.setattr(snapshot.shutil, "copyfile", copy_while_appended)
    assert snapshot.copy_file(source, target)
    assert target.read_text() == source.read_text() == "line 1\nline 2\nline 3\n"


def test_a_file_that_never_stops_changing_fails_the_backup_rather_than_tear(tmp_path, monkeypatch):
    source = tmp_path / "busy"
    source.write_text("x")
    real = snapshot.shutil.copyfile

    def always_appended(src, dst, **kw):
        real(src, dst, **kw)
        with open(src, "a") as f:
            f.write("x")

    monkeypatch.setattr(snapshot.shutil, "copyfile", always_appended)
    with pytest.raises(SystemFailure):
        snapshot.copy_file(source, tmp_path / "copy")


def test_a_message_renamed_during_the_walk_is_copied_under_its_new_name(tmp_path, monkeypatch):
    maildir = tmp_path / "mail/ana"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new/1.box").write_text("hello")
    (maildir / "cur/0.box:2,S").write_text("older")
    (maildir / "dovecot.index.cache").write_text("rebuilt by Dovecot")
    real = snapshot.link_file
    moved = []

    def read_as_the_app_reads(src, dst):
        if not moved and src.name == "0.box:2,S":  # the app reads the new one meanwhile
            os.rename(maildir / "new/1.box", maildir / "cur/1.box:2,S")
            moved.append(True)
        return real(src, dst)

    monkeypatch.setattr(snapshot, "link_file", read_as_the_app_reads)
    assert snapshot.copy_tree(tmp_path / "mail", tmp_path / "snap", lambda path: True) == 2
    assert sorted(p.name for p in (tmp_path / "snap/ana").rglob("*") if p.is_file()) == [
        "0.box:2,S",
        "1.box:2,S",
    ]
    # Linked, not copied: the snapshot costs no room.
    linked = (tmp_path / "snap/ana/cur/0.box:2,S").stat()
    assert linked.st_ino == (maildir / "cur/0.box:2,S").stat().st_ino


def test_the_key_reaches_borg_on_a_pipe_never_in_its_arguments_or_environment(
    tmp_path, monkeypatch
):
    fake = tmp_path / "bin/borg"  # stands in for borg: says what it was given
    fake.parent.mkdir()
    out = tmp_path / "said"
    out.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > {out}/argv\n'
        f"env > {out}/env\n"
        f'cat "/dev/fd/$BORG_PASSPHRASE_FD" > {out}/fd\n'
        "echo '{\"archives\": []}'\n"
    )
    fake.chmod(0o755)
    key = Secret("ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567")
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    assert Borg("/media/usb/cb", key, tmp_path / "base").archives() == []
    assert (out / "fd").read_text() == key.reveal()
    for where in ("argv", "env"):
        assert key.reveal() not in (out / where).read_text()
    assert (out / "argv").read_text().split() == [
        "list",
        "--json",
        "/media/usb/cb",
        "--log-json",
    ]
    assert stat.S_IMODE((tmp_path / "base").stat().st_mode) == 0o700


def test_a_restore_puts_each_part_where_the_agent_finds_it(tmp_path):
    from appliance.system import System

    extracted, root = tmp_path / "x", tmp_path / "box"
    for name in ("stores/card/state.db", "stores/card/secrets.db", "tls/webui.crt",
                 "data/files/ana/notes.txt"):  # fmt: skip
        (extracted / name).parent.mkdir(parents=True, exist_ok=True)
        (extracted / name).write_text(name)
    paths = Paths(root)
    stale = paths.state_db.with_name("state.db-wal")
    stale.parent.mkdir(parents=True)
    stale.write_text("a fresh box's log, which must not be replayed over the restored store")
    placed = snapshot.place(extracted, paths, System(root))
    assert placed == [
        "stores/card/state.db",
        "stores/card/secrets.db",
        "tls/webui.crt",
        "data/files",
    ]
    assert paths.state_db.read_text() == "stores/card/state.db" and not stale.exists()
    assert Path(root, "var/lib/commonsbox/private/files/ana/notes.txt").is_file()


def test_a_factory_reset_forgets_the_record_and_what_borg_knew(tmp_path):
    paths = Paths(tmp_path)
    record.note(paths, setup={"repository": "/media/usb/cb"})
    (paths.state_dir / "backup/borg/security").mkdir(parents=True)
    BackupCapability(paths).forget()
    assert not (paths.state_dir / "backup").exists()
    assert record.read(paths) == {}


C_LINES = "\n".join(
    [
        '{"type": "file_status", "status": "C", "path": "data/files/ana/report.odt"}',
        '{"type": "file_status", "status": "A", "path": "data/files/ana/new.txt"}',
        '{"type": "log_message", "levelname": "WARNING", "message": "file changed while we backed it up"}',
        "not json",
    ]
)


def test_borg_names_the_files_that_changed_while_it_read_them():
    assert borg.changed_while_read(C_LINES) == ["data/files/ana/report.odt"]


class BorgThatSees:
    """A repository whose first archive finds a file changed while read (what borg
    reports): the test of what the backup does then, not of borg."""

    def __init__(self, changed: list[list[str]]):
        self.changed, self.calls = changed, []

    def create(self, name, where):
        self.calls.append(("create", name))
        return {}, self.changed.pop(0) if self.changed else []

    def delete(self, name):
        self.calls.append(("delete", name))


def test_a_file_written_in_place_during_the_archive_is_copied_and_the_archive_made_again(
    tmp_path,
):
    from appliance.backup.service import _archive
    from appliance.system import System

    system = System(tmp_path / "box")
    share = system.path("/var/lib/commonsbox/private/files/ana")
    share.mkdir(parents=True)
    (share / "report.odt").write_text("the whole report")
    snap = tmp_path / "snap"
    snapshot.take_data(system, snap)
    linked = snap / "data/files/ana/report.odt"
    assert linked.stat().st_ino == (share / "report.odt").stat().st_ino
    repo = BorgThatSees([["data/files/ana/report.odt"]])
    assert _archive(repo, system, snap, "box-2026-12-07T03:00:00") == "box-2026-12-07T03:00:00"
    assert repo.calls == [
        ("create", "box-2026-12-07T03:00:00"),
        ("delete", "box-2026-12-07T03:00:00"),
        ("create", "box-2026-12-07T03:00:00"),
    ]
    assert linked.stat().st_ino != (share / "report.odt").stat().st_ino  # a copy now
    assert linked.read_text() == "the whole report"
    # One that changes at every archive fails the backup rather than keep it torn.
    always = BorgThatSees([["data/files/ana/report.odt"]] * snapshot.TRIES)
    with pytest.raises(SystemFailure):
        _archive(always, system, snap, "box-2026-12-07T03:00:00")
    # And a name borg says that the snapshot does not hold is refused, not copied.
    with pytest.raises(SystemFailure):
        snapshot.recopy(system, snap, ["data/files/../../../../etc/shadow"])


def test_a_box_with_encrypted_storage_comes_back_on_a_new_box_without_a_disk_yet(tmp_path):
    """Its history and every secret land where a box without a disk keeps them, and its
    data is kept unencrypted until the household sets a new disk up."""
    from appliance.backup.service import _onto_the_card
    from appliance.configstore import card_copy
    from appliance.secrets import SecretStore
    from appliance.storage.schema import StorageSettings, Volume
    from appliance.store import StateStore
    from appliance.system import System

    extracted, root = tmp_path / "x", tmp_path / "box"
    volume = StateStore(extracted / "stores/volume/state.db")
    d = Desired.new().replace(
        storage=StorageSettings(
            Volume("0b7a1c2e-4f3d-4a5b-8c9d-112233445566", "adiantum", "SanDisk")
        )
    )
    volume.commit(d, "ana (admin)", "the disk")
    revision = volume.commit(d.replace(backup=BackupSettings("/media/usb/cb")), "ana", "backups")
    card = StateStore(extracted / "stores/card/state.db")
    card_copy(card, revision, volume.head()[1])
    for store in (volume, card):
        store.close()
    for where, name in (("volume", "mail/dkim"), ("card", "vpn/box")):
        secrets = SecretStore(extracted / f"stores/{where}/secrets.db")
        secrets.put(name, Secret(f"{name} key"))
        secrets.close()

    paths = Paths(root)
    snapshot.place(extracted, paths, System(root))
    _onto_the_card(paths)

    assert not paths.volume_state_db.exists() and not paths.volume_secrets_db.exists()
    store = StateStore(paths.state_db)
    head, history = store.head(), store.history()
    store.close()
    assert head[1].storage == StorageSettings(None, allow_unencrypted=True)
    assert head[1].backup.repository == "/media/usb/cb"  # every other setting as it was
    assert [r.why for r in history][1:] == ["backups", "the disk"]  # the whole history
    secrets = SecretStore(paths.secrets_db)
    assert {n: s.reveal() for n, s in secrets.get_many("").items()} == {
        "mail/dkim": "mail/dkim key",
        "vpn/box": "vpn/box key",
    }
    secrets.close()

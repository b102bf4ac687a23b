"""The household's state across versions (appliance/update/state.py): a snapshot of every
store before an agent first migrates them, and, when an older agent finds stores newer
than it knows, that snapshot put back and what the trial changed named.

Real SQLite stores in a directory; the next version is made up by adding a migration to
a store's list, as a real next version would."""

import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

import appliance.accounts.sessions as sessions_module
import appliance.store as store_module
import appliance.update.fallback as fallback_module
from appliance.accounts.sessions import RuntimeStore
from appliance.configstore import ConfigStore
from appliance.mail.schema import MailSettings
from appliance.paths import Paths
from appliance.schema import Desired
from appliance.secrets import Secret, SecretStore
from appliance.storage.schema import StorageSettings, Volume
from appliance.store import StateStore
from appliance.storeversion import NewerStore
from appliance.update import snapshot, state
from appliance.update.stores import card, known, versions

REPO = Path(__file__).resolve().parents[2]


def next_layout(db: sqlite3.Connection) -> None:
    """A made-up version 2 of the state store: revisions get a column, and a table."""
    db.execute("ALTER TABLE revisions ADD COLUMN signed_by TEXT")
    db.execute("CREATE TABLE notes (text TEXT NOT NULL)")


def third_layout(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE more_notes (text TEXT NOT NULL)")


@pytest.fixture
def version_2(monkeypatch):
    """Turn this process into the next version's agent, and back (returns undo)."""
    today = store_module.MIGRATIONS

    def become(*more):
        monkeypatch.setattr(store_module, "MIGRATIONS", [*today, *(more or (next_layout,))])

    def back():
        monkeypatch.setattr(store_module, "MIGRATIONS", today)

    return become, back


def household(paths: Paths) -> dict:
    """A box as version 1 leaves it: a few revisions by ana, a key, a session."""
    store = StateStore(paths.state_db)
    secrets = SecretStore(paths.secrets_db)
    runtime = RuntimeStore(paths.runtime_db)
    desired = Desired.new()
    store.commit(desired, "agent", "first start")
    desired = desired.with_box(replace(desired.box, name="Casa Garcia"))
    store.commit(desired, "ana", "rename the box")
    secrets.put("vpn/box", Secret("the box's private key"))
    runtime.set_language("ana", "pt")
    runtime.open_session("ana", "192.0.2.9")
    before = {
        "head": store.head()[0].n,
        "history": [(r.n, r.who, r.why) for r in store.history()],
        "name": store.head()[1].box.name,
    }
    for s in (store, secrets, runtime):
        s.close()
    return before


def trial(paths: Paths) -> list[int]:
    """What the household does while the next version is tried: two changes, a new
    secret, a language and a sign-in. Returns the revisions' numbers."""
    store = StateStore(paths.state_db)
    secrets = SecretStore(paths.secrets_db)
    runtime = RuntimeStore(paths.runtime_db)
    _, desired = store.head()
    one = store.commit(
        desired.with_box(replace(desired.box, timezone="Europe/Lisbon")), "ana", "set the time zone"
    )
    two = store.commit(
        store.head()[1].with_box(replace(store.head()[1].box, name="Casa")), "bo", "rename the box"
    )
    secrets.put("account/bo/password", Secret("$argon2id$bo"))
    runtime.set_language("bo", "sw")
    for s in (store, secrets, runtime):
        s.close()
    return [one.n, two.n]


def user_version(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


def newest_revision(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("SELECT max(n) FROM revisions").fetchone()[0] or 0
    finally:
        db.close()


def snapshots(paths: Paths) -> list[Path]:
    where = paths.state_dir / "update/snapshots"
    return sorted(where.iterdir()) if where.exists() else []


# -- when a snapshot is taken ---------------------------------------------------------


def test_a_fresh_box_or_the_same_version_takes_no_snapshot(tmp_path):
    paths = Paths(tmp_path)
    assert state.at_start(paths) is None  # nothing on the card yet
    household(paths)
    assert state.at_start(paths) is None
    assert snapshots(paths) == []


def test_before_migrating_the_agent_copies_every_store_and_then_migrates(tmp_path, version_2):
    paths = Paths(tmp_path)
    before = household(paths)
    become, _ = version_2
    become()
    assert state.at_start(paths) is None
    [taken] = snapshots(paths)
    assert taken.name == "state1-secrets1-runtime1-to-state2-secrets1-runtime1"
    assert sorted(p.name for p in taken.iterdir()) == [
        "manifest.json",
        "runtime.db",
        "secrets.db",
        "state.db",
    ]
    assert taken.stat().st_mode & 0o777 == 0o700
    for p in taken.iterdir():
        assert p.stat().st_mode & 0o777 == 0o600, p
    manifest = json.loads((taken / "manifest.json").read_text())
    assert manifest["from"] == {"state": 1, "secrets": 1, "runtime": 1}
    assert manifest["to"] == {"state": 2, "secrets": 1, "runtime": 1}
    assert manifest["head"] == before["head"]
    # The copy is version 1 and holds the household's state; the live store migrated.
    assert user_version(taken / "state.db") == 1
    assert user_version(paths.state_db) == 2
    copy = sqlite3.connect(taken / "state.db")
    assert [
        tuple(r) for r in copy.execute("SELECT n, who, why FROM revisions ORDER BY n DESC")
    ] == [tuple(h) for h in before["history"]]
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one file
    copy.close()
    with sqlite3.connect(taken / "secrets.db") as copy:
        assert copy.execute("SELECT value FROM secrets").fetchall() == [("the box's private key",)]
    assert not [p for p in taken.parent.iterdir() if p.name.startswith(".")]  # no temp left
    # Started again, the same version takes no second snapshot.
    assert state.at_start(paths) is None and snapshots(paths) == [taken]


def test_only_the_latest_snapshot_is_kept(tmp_path, version_2):
    paths = Paths(tmp_path)
    household(paths)
    become, _ = version_2
    become()
    state.at_start(paths)
    become(next_layout, third_layout)
    state.at_start(paths)
    assert [p.name for p in snapshots(paths)] == [
        "state2-secrets1-runtime1-to-state3-secrets1-runtime1"
    ]


WRITER = """
import sys
from dataclasses import replace
from pathlib import Path
from appliance.store import StateStore
from tests.unit.test_store_retention import with_devices
store = StateStore(Path(sys.argv[1]))
store._db.execute("PRAGMA wal_autocheckpoint=1")  # the file itself changes at every commit
stop = Path(sys.argv[2])
d = with_devices(store.head()[1], 300)
i = 0
while not stop.exists():
    i += 1
    devices = list(d.vpn.devices)
    devices[i % 300] = replace(devices[i % 300], name=f"renamed {i}")
    d = d.replace(vpn=replace(d.vpn, devices=tuple(devices)))
    store.commit(d, "writer", f"change {i}")
print(i)
"""


def whole(copy: Path) -> int:
    """Check a copy of the state store as the agent would need it: the file sound, the
    revisions numbered without a gap, every part of every revision there, the newest
    one loading. Its newest revision's number."""
    db = sqlite3.connect(copy)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        blobs = {h for (h,) in db.execute("SELECT hash FROM blobs")}
        kept = db.execute("SELECT n, manifest FROM revisions ORDER BY n DESC").fetchall()
        newest = kept[0][0]
        assert [n for n, _ in kept] == list(range(newest, max(newest - 500, 0), -1))
        for n, manifest in kept:
            m = json.loads(manifest)
            missing = {*m["slices"].values(), *m["devices"]} - blobs
            assert not missing, f"revision {n} lost its parts {missing}"
    finally:
        db.close()
    store = StateStore(copy)
    try:
        assert store.head()[0].n == newest
    finally:
        store.close()
    return newest


def test_a_snapshot_is_consistent_while_another_process_writes(tmp_path):
    """SQLite's backup API, not a copy of the files: each snapshot is one moment of the
    store, while another process commits as fast as it can and the file itself changes
    at every commit (a copy of the file and its log, tried in its place, lost a
    revision's parts or tore the file in three runs of six)."""
    paths = Paths(tmp_path)
    household(paths)
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(paths.state_db), str(stop)],
        env={"PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    place = card(paths)
    heads = []
    try:
        deadline = time.monotonic() + 30
        while newest_revision(paths.state_db) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)  # the writer is writing
        for _ in range(12):
            heads.append(whole(snapshot.take(place, versions(place), known(place)) / "state.db"))
    finally:
        stop.touch()
        out, _ = writer.communicate(timeout=30)
    assert writer.returncode == 0 and int(out) > 20, "the writer did not write meanwhile"
    assert heads == sorted(heads) and heads[-1] > heads[0]


# -- falling back ---------------------------------------------------------------------


def test_an_old_agent_refuses_newer_stores_when_there_is_no_snapshot(tmp_path, version_2):
    paths = Paths(tmp_path)
    household(paths)
    become, back = version_2
    become()
    state.at_start(paths)
    for p in snapshots(paths):
        snapshot.remove(p)
    back()
    with pytest.raises(NewerStore) as refused:
        state.at_start(paths)
    assert "state" in refused.value.message and "version 2" in refused.value.message
    assert "1" in refused.value.message and "snapshot" in refused.value.message
    assert user_version(paths.state_db) == 2  # not touched


def test_the_old_agent_puts_the_snapshot_back_and_names_what_the_trial_changed(tmp_path, version_2):
    paths = Paths(tmp_path)
    before = household(paths)
    become, back = version_2
    become()
    state.at_start(paths)
    made = trial(paths)

    back()  # the trial failed: the old slot's agent starts
    report = state.at_start(paths)
    assert report is not None
    assert report["reason"] == "newer_stores"
    assert report["place"] == "card"
    assert report["found"] == {"state": 2, "secrets": 1, "runtime": 1}
    assert report["restored"] == {"state": 1, "secrets": 1, "runtime": 1}
    lost = report["lost_revisions"]
    assert [(r["revision"], r["who"], r["why"]) for r in lost] == [
        (made[0], "ana", "set the time zone"),
        (made[1], "bo", "rename the box"),
    ]
    assert all(isinstance(r["at"], float) for r in lost)
    assert report["changed"] == {"runtime": ["languages"], "secrets": ["secrets"]}
    assert report["kept"] == "update/trial"
    # The report is kept where the dashboard reads it, as plain JSON.
    assert state.reports(paths) == [report]
    assert json.loads((paths.state_dir / "update/fallback.json").read_text()) == report

    # The household's state is as it was before the update, and the old agent opens it.
    store = StateStore(paths.state_db)
    assert store.head()[0].n == before["head"]
    assert [(r.n, r.who, r.why) for r in store.history()] == [tuple(h) for h in before["history"]]
    assert store.head()[1].box.name == "Casa Garcia"
    store.close()
    secrets = SecretStore(paths.secrets_db)
    assert secrets.get("account/bo/password") is None
    assert secrets.get("vpn/box").reveal() == "the box's private key"
    secrets.close()
    runtime = RuntimeStore(paths.runtime_db)
    assert runtime.language("ana") == "pt" and runtime.language("bo") is None
    assert len(runtime.sessions_of("ana")) == 1
    runtime.close()
    for path in (paths.state_db, paths.secrets_db, paths.runtime_db):
        assert path.stat().st_mode & 0o777 == 0o600
    # The trial's own stores are set aside, not deleted, and private.
    kept = paths.state_dir / "update/trial"
    assert kept.stat().st_mode & 0o777 == 0o700
    assert user_version(kept / "state.db") == 2
    assert (kept / "secrets.db").stat().st_mode & 0o777 == 0o600
    # Started again: nothing more to do.
    assert state.at_start(paths) is None


class PowerCut(BaseException):
    pass


def cutting_after(n: int, real_replace):
    """os.replace, but the power goes right after the Nth rename."""
    calls = 0

    def replace_then_cut(src, dst):
        nonlocal calls
        real_replace(src, dst)
        calls += 1
        if calls == n:
            raise PowerCut

    return replace_then_cut


def test_a_power_cut_anywhere_in_the_fallback_is_finished_at_the_next_start(
    tmp_path, version_2, monkeypatch
):
    """Cut after each rename the fallback makes: the next start finishes it, and every
    store is the snapshot's, never half the trial's."""
    real_replace = os.replace
    cut_at = 0
    while True:
        cut_at += 1
        paths = Paths(tmp_path / f"cut{cut_at}")
        before = household(paths)
        become, back = version_2
        become()
        state.at_start(paths)
        trial(paths)
        back()
        monkeypatch.setattr(fallback_module.os, "replace", cutting_after(cut_at, real_replace))
        try:
            state.at_start(paths)
            finished = True
        except PowerCut:
            finished = False
        monkeypatch.setattr(fallback_module.os, "replace", real_replace)
        if not finished:
            state.at_start(paths)  # the next start
        assert all(user_version(p) == 1 for p in (paths.state_db, paths.runtime_db))
        store = StateStore(paths.state_db)
        assert store.head()[0].n == before["head"], f"cut after rename {cut_at}"
        store.close()
        [report] = state.reports(paths)
        assert [r["who"] for r in report["lost_revisions"]] == ["ana", "bo"]
        assert not (paths.state_dir / "update/restoring").exists()
        if finished:
            break
    assert cut_at > 5  # every store's files and the trial's were renamed one by one


def test_told_the_trial_failed_before_it_migrated_nothing_is_undone(tmp_path):
    paths = Paths(tmp_path)
    before = household(paths)
    assert state.fall_back(paths, state.TRIAL_FAILED) is None
    store = StateStore(paths.state_db)
    assert store.head()[0].n == before["head"]
    store.close()


def test_told_the_trial_failed_after_it_migrated_the_snapshot_goes_back(tmp_path, version_2):
    paths = Paths(tmp_path)
    household(paths)
    become, back = version_2
    become()
    state.at_start(paths)
    trial(paths)
    back()
    report = state.fall_back(paths, state.TRIAL_FAILED)
    assert report["reason"] == "trial_failed" and len(report["lost_revisions"]) == 2
    assert user_version(paths.state_db) == 1


def test_a_snapshot_of_other_versions_is_not_put_back(tmp_path, version_2):
    """A snapshot from 2 to 3 cannot help an agent that knows only 1."""
    paths = Paths(tmp_path)
    household(paths)
    become, back = version_2
    become()
    state.at_start(paths)
    become(next_layout, third_layout)
    state.at_start(paths)
    back()
    with pytest.raises(NewerStore, match="version 3"):
        state.at_start(paths)
    assert user_version(paths.state_db) == 3


# -- the encrypted volume's stores ------------------------------------------------------

VOLUME = Volume(uuid="2f0c6f55-6a53-4c3b-9d2e-8c1f0e3a9b41", cipher="aes-xts", disk="SanDisk Ultra")
DOMAIN = "garcia-family.example"


class Mount:
    def __init__(self):
        self.on = True

    def __call__(self):
        return self.on


def test_the_volumes_stores_are_snapshotted_on_the_volume_and_put_back_at_unlock(
    tmp_path, version_2
):
    paths, mount = Paths(tmp_path), Mount()
    store = ConfigStore(paths, mount)
    store.commit(Desired.new(), "agent", "first start")
    store.secrets.put("mail/dkim", Secret("dkim of the garcias"))
    store.commit(
        Desired.new().replace(mail=MailSettings(enabled=True, domain=DOMAIN)), "ana", "mail"
    )
    _, desired = store.head()
    made = store.commit(desired.replace(storage=StorageSettings(VOLUME)), "ana", "a new disk")
    store.close()

    become, back = version_2
    become()
    state.at_start(paths)  # the card's stores
    mount.on = False
    store = ConfigStore(paths, mount)  # locked at start
    mount.on = True
    store.follow_storage()  # unlocked: the volume's stores are snapshotted, then migrated
    [taken] = (paths.state_dir / "private/agent/update/snapshots").iterdir()
    assert taken.name == "state1-secrets1-to-state2-secrets1"
    card_files = b"".join(
        p.read_bytes()
        for p in paths.state_dir.rglob("*")
        if p.is_file() and "private" not in p.parts
    )
    assert DOMAIN.encode() not in card_files  # the volume's copies stayed on the volume
    _, desired = store.head()
    store.commit(desired.replace(mail=replace(desired.mail, enabled=False)), "bo", "mail off")
    store.close()

    back()
    card_report = state.at_start(paths)
    assert card_report is not None and card_report["place"] == "card"
    mount.on = False
    store = ConfigStore(paths, mount)
    mount.on = True
    store.follow_storage()  # the unlock puts the volume's snapshot back
    try:
        assert store.head()[0].n == made.n and store.head()[1].mail.enabled
        assert store.secrets.get("mail/dkim").reveal() == "dkim of the garcias"
        volume_report = json.loads(
            (paths.state_dir / "private/agent/update/fallback.json").read_text()
        )
        assert volume_report["place"] == "volume"
        assert [(r["who"], r["why"]) for r in volume_report["lost_revisions"]] == [
            ("bo", "mail off")
        ]
        assert [r["place"] for r in state.reports(paths)] == ["card", "volume"]
    finally:
        store.close()


def test_a_factory_reset_forgets_the_snapshots_and_the_trial(tmp_path, version_2):
    paths = Paths(tmp_path)
    household(paths)
    become, back = version_2
    become()
    state.at_start(paths)
    trial(paths)
    back()
    state.at_start(paths)
    taken = snapshots(paths)
    assert taken and (paths.state_dir / "update/trial").exists()
    state.forget(paths)
    assert not (paths.state_dir / "update/snapshots").exists()
    assert not (paths.state_dir / "update/trial").exists()
    assert state.reports(paths) == []


def test_the_runtime_stores_version_is_part_of_the_snapshots_name(tmp_path, monkeypatch):
    paths = Paths(tmp_path)
    household(paths)

    def runtime_2(db):
        db.execute("CREATE TABLE notes (text TEXT)")

    monkeypatch.setattr(sessions_module, "MIGRATIONS", [*sessions_module.MIGRATIONS, runtime_2])
    state.at_start(paths)
    assert [p.name for p in snapshots(paths)] == [
        "state1-secrets1-runtime1-to-state1-secrets1-runtime2"
    ]

"""Every store carries the version of its layout and migrates forward, once, in one
transaction; a store newer than the agent knows is refused, never written
(appliance/storeversion.py). The desired-state documents carry their own format, and an
old revision is upgraded as it is read (appliance/schema.py)."""

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import appliance.accounts.sessions as sessions_module
import appliance.schema as schema_module
import appliance.secrets as secrets_module
import appliance.store as store_module
from appliance.accounts.sessions import RuntimeStore
from appliance.errors import Invalid
from appliance.schema import Desired
from appliance.secrets import Secret, SecretStore
from appliance.store import StateStore
from appliance.storeversion import NewerStore

REPO = Path(__file__).resolve().parents[2]
STORES = {  # kind -> (its module, how the agent opens it, where it lives under a root)
    "state": (store_module, StateStore, "state.db"),
    "secrets": (secrets_module, SecretStore, "secrets/secrets.db"),
    "runtime": (sessions_module, RuntimeStore, "secrets/runtime.db"),
}


def user_version(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


def columns(path: Path, table: str) -> set[str]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    finally:
        db.close()


def fingerprint(path: Path) -> str:
    """What the file holds, page for page (its WAL emptied first)."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def version_2(calls: list):
    """A made-up next layout of any store: a new table, and a note in it."""

    def migrate(db: sqlite3.Connection) -> None:
        calls.append(db.in_transaction)
        db.execute("CREATE TABLE notes (text TEXT NOT NULL)")
        db.execute("INSERT INTO notes VALUES ('made by version 2')")

    return migrate


def made(kind: str, root: Path) -> Path:
    """A store of today's layout with something in it, closed."""
    _, opener, where = STORES[kind]
    path = root / where
    store = opener(path)
    if kind == "state":
        store.commit(Desired.new(), "ana", "first start")
    elif kind == "secrets":
        store.put("vpn/box", Secret("a private key"))
    else:
        store.open_session("ana", "192.0.2.9")
    store.close()
    return path


# -- the version -------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(STORES))
def test_every_store_says_the_version_of_its_layout(tmp_path, kind):
    module, _, _ = STORES[kind]
    path = made(kind, tmp_path)
    assert len(module.MIGRATIONS) >= 1
    assert user_version(path) == len(module.MIGRATIONS)


def test_a_store_made_before_versions_is_stamped_and_keeps_everything(tmp_path):
    """A card written by the agent before stores had versions (user_version 0, today's
    tables) opens as version 1 with its history whole."""
    path = made("state", tmp_path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 0")
    db.commit()
    db.close()
    store = StateStore(path)
    assert [r.why for r in store.history()] == ["first start"]
    store.close()
    assert user_version(path) == 1


# -- migrating forward -------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(STORES))
def test_a_next_version_migrates_once_in_a_transaction(tmp_path, monkeypatch, kind):
    module, opener, _ = STORES[kind]
    path = made(kind, tmp_path)
    calls: list = []
    monkeypatch.setattr(module, "MIGRATIONS", [*module.MIGRATIONS, version_2(calls)])
    opener(path).close()
    opener(path).close()  # and again: nothing left to do
    assert calls == [True]  # once, inside a transaction
    assert user_version(path) == 2
    assert columns(path, "notes") == {"text"}


CRASH = """
import os, sys
import {module} as module
from {module} import {opener}

def half_done(db):
    db.execute("CREATE TABLE notes (text TEXT NOT NULL)")
    db.execute("INSERT INTO notes VALUES ('half')")
    os._exit(9)  # the power goes: no rollback, no close, no atexit

module.MIGRATIONS = [*module.MIGRATIONS, half_done]
{opener}(__import__("pathlib").Path(sys.argv[1]))
"""


@pytest.mark.parametrize("kind", sorted(STORES))
def test_a_crash_in_the_middle_of_a_migration_leaves_version_1_whole(tmp_path, monkeypatch, kind):
    module, opener, _ = STORES[kind]
    path = made(kind, tmp_path)
    before = fingerprint(path)
    crashed = subprocess.run(
        [
            sys.executable,
            "-c",
            CRASH.format(module=module.__name__, opener=opener.__name__),
            str(path),
        ],
        env={"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert crashed.returncode == 9, crashed.stderr
    assert user_version(path) == 1
    assert "notes" not in {row for row in sqlite_tables(path)}
    assert fingerprint(path) == before  # not a byte of the half-done migration
    # Version 1's agent reads it as it was; version 2's migrates it, once.
    opener(path).close()
    calls: list = []
    monkeypatch.setattr(module, "MIGRATIONS", [*module.MIGRATIONS, version_2(calls)])
    opener(path).close()
    assert calls == [True] and user_version(path) == 2


def sqlite_tables(path: Path) -> set[str]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        db.close()


def test_a_migration_that_fails_is_undone_and_said(tmp_path, monkeypatch):
    path = made("state", tmp_path)

    def broken(db):
        db.execute("CREATE TABLE notes (text TEXT)")
        raise sqlite3.OperationalError("no such column: colour")

    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, broken])
    with pytest.raises(sqlite3.OperationalError, match="colour"):
        StateStore(path)
    assert user_version(path) == 1 and "notes" not in sqlite_tables(path)


def test_a_migration_may_not_end_its_own_transaction(tmp_path, monkeypatch):
    """A migration that commits would leave a half-migrated store behind a crash."""
    path = made("secrets", tmp_path)

    def commits(db):
        db.execute("CREATE TABLE notes (text TEXT)")
        db.execute("COMMIT")

    monkeypatch.setattr(secrets_module, "MIGRATIONS", [*secrets_module.MIGRATIONS, commits])
    with pytest.raises(RuntimeError, match="transaction"):
        SecretStore(path)


# -- a store newer than the agent ----------------------------------------------------


@pytest.mark.parametrize("kind", sorted(STORES))
def test_a_store_newer_than_the_agent_is_refused_and_left_alone(tmp_path, monkeypatch, kind):
    module, opener, _ = STORES[kind]
    path = made(kind, tmp_path)
    today = module.MIGRATIONS
    monkeypatch.setattr(module, "MIGRATIONS", [*today, version_2([])])
    opener(path).close()
    before = fingerprint(path)
    monkeypatch.setattr(module, "MIGRATIONS", today)  # the old slot's agent
    with pytest.raises(NewerStore) as refused:
        opener(path)
    message = refused.value.message
    assert kind in message and "version 2" in message and "1" in message, message
    assert (refused.value.store, refused.value.found, refused.value.known) == (kind, 2, 1)
    assert user_version(path) == 2 and fingerprint(path) == before


# -- the documents' own format ------------------------------------------------------


def test_an_old_revision_is_upgraded_as_it_is_read_and_a_newer_one_refused(tmp_path, monkeypatch):
    path = made("state", tmp_path)  # a revision of format 1
    store = StateStore(path)
    store.commit(Desired.new().replace(box=Desired.new().box), "ana", "same")
    store.close()

    def format_2(doc: dict) -> dict:  # made up: format 2 names the box differently
        return {**doc, "box": {**doc["box"], "name": doc["box"]["name"] + " (2)"}}

    monkeypatch.setattr(schema_module, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(schema_module, "DOCUMENT_UPGRADES", [format_2])
    # Without a migration saying the store may now hold format 2, the agent will not run.
    with pytest.raises(RuntimeError, match="format 2"):
        StateStore(path)
    monkeypatch.setattr(
        store_module, "MIGRATIONS", [*store_module.MIGRATIONS, store_module.documents(2)]
    )
    store = StateStore(path)
    name = Desired.new().box.name
    assert store.head()[1].box.name == f"{name} (2)"  # upgraded as read
    assert store.document(1)["schema"] == 2  # handed out in the agent's own format
    assert Desired.from_json(store.document(1)).box.name == f"{name} (2)"
    store.commit(store.head()[1], "bo", "written as format 2")
    assert store.document(3)["schema"] == 2
    newest = store.document(3)
    store.close()

    monkeypatch.undo()  # the agent that reads only format 1
    with pytest.raises(NewerStore):
        StateStore(path)
    with pytest.raises(Invalid, match="format 2.*1"):
        Desired.from_json(newest)


def test_files_keep_their_permissions_after_a_migration(tmp_path, monkeypatch):
    path = made("secrets", tmp_path)
    monkeypatch.setattr(secrets_module, "MIGRATIONS", [*secrets_module.MIGRATIONS, version_2([])])
    SecretStore(path).close()
    assert os.stat(path).st_mode & 0o777 == 0o600

"""Retention, pins, the revision layout, address reuse and the per-member device limit,
over real SQLite stores (finding 5 of issue 15)."""

import base64
import json
import os
import sqlite3
from dataclasses import replace

import pytest

from appliance.accounts.schema import Accounts
from appliance.errors import Invalid, NotFound, PoolExhausted
from appliance.schema import Desired
from appliance.store import StateStore
from appliance.vpn.schema import Device

from .conftest import commit, head


def KEY(i: int) -> str:
    return base64.b64encode(i.to_bytes(32, "big")).decode()


def with_devices(desired: Desired, n: int, subnet4="10.128.0.0/16") -> Desired:
    import ipaddress

    v4, v6 = ipaddress.ip_network(subnet4), ipaddress.ip_network("fd00:128::/64")
    devices = tuple(
        Device(i, f"device {i}", KEY(i), str(v4[i + 1]), str(v6[i + 1]), key_holder="device")
        for i in range(1, n + 1)
    )
    return desired.replace(
        vpn=replace(desired.vpn, ipv4_subnet=v4, ipv6_subnet=v6, devices=devices)
    )


def written(store: StateStore, change) -> int:
    """Bytes this process hands to write() while ``change`` runs (SQLite's file and WAL)."""

    def wchar():
        for line in open("/proc/self/io"):
            if line.startswith("wchar:"):
                return int(line.split()[1])
        raise AssertionError("no wchar")

    before = wchar()
    change()
    return wchar() - before


# -- retention and pins, as data ----------------------------------------------------

RETENTION = [
    # (keep, commits, pinned, kept)
    (10, 12, (), list(range(3, 13))),
    (10, 12, (1,), [1, *range(3, 13)]),
    (10, 10, (), list(range(1, 11))),
    (10, 25, (2, 5), [2, 5, *range(16, 26)]),
]


@pytest.mark.parametrize("keep, commits, pinned, kept", RETENTION)
def test_the_newest_revisions_and_the_pinned_ones_are_kept(tmp_path, keep, commits, pinned, kept):
    store = StateStore(tmp_path / "state.db")
    store.set_keep(keep)
    base = Desired.new()
    for i in range(1, commits + 1):
        store.commit(base.replace(box=replace(base.box, name=f"box {i}")), "test", f"change {i}")
        if i in pinned:
            store.pin(i)
    assert sorted(r.n for r in store.history(limit=1000)) == kept
    for n in kept:  # every revision kept loads again, as it was stored
        assert Desired.from_json(store.document(n)).box.name == f"box {n}"
    store.sweep()
    for n in kept:
        assert Desired.from_json(store.document(n)).box.name == f"box {n}"
    assert {r.n for r in store.history(limit=1000) if r.pinned} == set(pinned)


def test_unpinning_lets_an_old_revision_go_and_the_count_is_checked(tmp_path):
    store = StateStore(tmp_path / "state.db")
    store.set_keep(10)
    first = store.commit(Desired.new(), "test", "first")
    store.pin(first.n)
    for i in range(12):
        store.commit(Desired.new(), "test", f"change {i}")
    assert store.revision(first.n).pinned
    store.pin(first.n, False)
    with pytest.raises(NotFound):
        store.document(first.n)
    with pytest.raises(Invalid):
        store.set_keep(0)
    with pytest.raises(NotFound):
        store.pin(999)
    assert store.keep == 10


# -- the layout: a change costs what it changed ------------------------------------


def test_a_change_at_ten_thousand_devices_writes_kilobytes_not_the_document(tmp_path):
    store = StateStore(tmp_path / "state.db")
    big = with_devices(Desired.new(), 10_000)
    store.commit(big, "test", "seed")
    one_more = Device(
        10_001, "new", KEY(10_001), "10.128.39.18", "fd00:128::2712", key_holder="device"
    )
    grown = big.replace(vpn=big.vpn.with_devices(big.vpn.devices + (one_more,)))
    cost = written(store, lambda: store.commit(grown, "test", "add one"))
    whole = len(json.dumps(grown.to_json()))
    assert whole > 2_000_000
    assert cost < 100_000, f"{cost} bytes written for one device ({whole} in the document)"
    assert store.document(2) == grown.to_json()
    assert StateStore(tmp_path / "state.db").head()[1] == grown


OLD_SCHEMA = """
CREATE TABLE revisions (n INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL,
    who TEXT NOT NULL, why TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE handed_out (address TEXT PRIMARY KEY, device_id INTEGER NOT NULL);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def test_a_store_of_the_first_layout_opens_and_every_revision_loads(tmp_path):
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    docs = [with_devices(Desired.new(), n).to_json() for n in (0, 40, 39)]
    for i, doc in enumerate(docs):
        old.execute(
            "INSERT INTO revisions (at, who, why, doc) VALUES (?, 'installer', ?, ?)",
            (1000.0 + i, f"change {i}", json.dumps(doc)),
        )
    old.executemany(
        "INSERT INTO handed_out VALUES (?, ?)",
        [(a, d["id"]) for d in docs[1]["vpn"]["devices"] for a in (d["ipv4"], d["ipv6"])],
    )
    old.execute("INSERT INTO counters VALUES ('device_id', 40)")
    old.commit()
    old.close()
    os.chmod(path, 0o600)

    store = StateStore(path)
    assert [r.why for r in store.history()] == ["change 2", "change 1", "change 0"]
    for n, doc in enumerate(docs, 1):
        assert store.document(n) == doc
    assert store.head()[1] == Desired.from_json(docs[2])
    assert store.last_device_id == 40 and store.was_handed_out("10.128.0.41")
    store.commit(with_devices(Desired.new(), 41), "test", "after")  # and it goes on
    assert len(StateStore(path).head()[1].vpn.devices) == 41


# -- addresses: reused once no kept revision holds them ----------------------------


def test_a_full_pool_takes_new_devices_again_once_retention_lets_go(vpn):
    vpn.store.set_keep(10)
    for i in range(5):  # a /29 holds the box and five devices
        commit(vpn, vpn.add_device(head(vpn), f"device {i}"))
    gone = head(vpn).vpn.device("device 0")
    commit(vpn, vpn.remove_device(head(vpn), gone.id))
    with pytest.raises(PoolExhausted):  # kept revisions still hold its address
        vpn.add_device(head(vpn), "too soon")
    kept = head(vpn).vpn.device("device 1").id
    for i in range(10):  # ten more changes: the revisions holding it are all old
        commit(vpn, vpn.update_device(head(vpn), kept, name=f"renamed {i}"))
    # (no sweep is due yet: a full pool makes the store sweep before it gives up)
    _, reused = commit(vpn, vpn.add_device(head(vpn), "at last"))
    assert (reused.ipv4, reused.ipv6) == (gone.ipv4, gone.ipv6) and reused.id != gone.id


def test_an_address_a_pinned_revision_holds_is_never_handed_out_again(vpn):
    vpn.store.set_keep(10)
    for i in range(5):
        commit(vpn, vpn.add_device(head(vpn), f"device {i}"))
    vpn.store.pin(vpn.store.head()[0].n)
    commit(vpn, vpn.remove_device(head(vpn), "device 0"))
    kept = head(vpn).vpn.device("device 1").id
    for i in range(12):
        commit(vpn, vpn.update_device(head(vpn), kept, name=f"renamed {i}"))
    vpn.store.sweep()
    with pytest.raises(PoolExhausted):
        vpn.add_device(head(vpn), "no")


def test_sweeping_keeps_every_kept_revision_loadable_at_scale(tmp_path):
    store = StateStore(tmp_path / "state.db")
    store.set_keep(10)
    desired = with_devices(Desired.new(), 300)
    for i in range(40):
        devices = tuple(d for d in desired.vpn.devices if d.id != i + 1)
        desired = desired.replace(vpn=replace(desired.vpn, devices=devices))
        store.commit(desired, "test", f"remove {i + 1}")
    freed = store.sweep()
    assert freed == set(range(2, 32))  # kept: revisions 31 to 40 (device 1 never stored)
    for r in store.history(limit=100):
        Desired.from_json(store.document(r.n))
    assert not store.was_handed_out("10.128.0.2") and store.was_handed_out("10.128.0.40")


# -- one member cannot take the whole pool ------------------------------------------


def member_box(vpn, limit=None):
    desired = head(vpn)
    accounts = Accounts.from_json(
        {"users": [{"name": "ana", "role": "member"}, {"name": "root", "role": "admin"}]}
    )
    desired = desired.replace(accounts=accounts)
    if limit is not None:
        desired = vpn.change_settings(desired, devices_per_member=limit)
    vpn.store.commit(desired, "test", "members")


LIMITS = [
    # (limit, owner, devices they add, added before the refusal)
    (2, "ana", 3, 2),
    (3, "root", 4, 3),  # an admin's own devices count too
    (1, None, 4, 4),  # the box's own devices (no owner) do not
]


@pytest.mark.parametrize("limit, owner, tries, allowed", LIMITS)
def test_one_member_has_at_most_the_limit_of_devices(vpn, limit, owner, tries, allowed):
    member_box(vpn, limit)
    added = 0
    for i in range(tries):
        try:
            commit(vpn, vpn.add_device(head(vpn), f"d{i}", owner=owner))
            added += 1
        except PoolExhausted as err:
            assert err.field == "devices_per_member" and "remove one" in err.message
            break
    assert added == allowed


def test_the_limit_is_twenty_by_default_and_checked(vpn):
    assert head(vpn).vpn.devices_per_member == 20
    with pytest.raises(Invalid) as err:
        vpn.change_settings(head(vpn), devices_per_member=0)
    assert err.value.field == "devices_per_member"


def test_changes_anywhere_store_the_same_layout_as_the_whole_document(tmp_path):
    """The store reuses last time's chunks; whatever changed, the manifest is the one
    the whole document splits into, and the document loads back as it was."""
    import random

    from appliance.revisionstore import split_document

    rng = random.Random(15)
    store = StateStore(tmp_path / "state.db")
    desired = with_devices(Desired.new(), 300)
    next_id = 301
    for step in range(40):
        devices = list(desired.vpn.devices)
        what = rng.choice(("add", "remove", "rename"))
        if what == "add":
            devices.append(with_devices(Desired.new(), next_id).vpn.devices[-1])
            next_id += 1
        elif what == "remove":
            devices.pop(rng.randrange(len(devices)))
        else:
            i = rng.randrange(len(devices))
            devices[i] = replace(devices[i], name=f"renamed {step}")
        desired = desired.replace(vpn=replace(desired.vpn, devices=tuple(devices)))
        n = store.commit(desired, "test", what).n
        stored = store._db.execute("SELECT manifest FROM revisions WHERE n = ?", (n,)).fetchone()
        assert json.loads(stored[0]) == split_document(desired.to_json())[0], what
        assert store.document(n) == desired.to_json()

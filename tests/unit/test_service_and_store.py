"""Devices, revisions and the address pool, over real SQLite stores."""

import ipaddress
import json

import pytest

from appliance.errors import Conflict, Invalid, NotFound, PoolExhausted
from appliance.schema import Desired
from appliance.store import StateStore
from appliance.vpn import keys
from appliance.vpn.schema import device_key_name, psk_name

from .conftest import commit, head


def test_adding_a_device_makes_keys_addresses_and_a_revision(vpn):
    desired, device = commit(vpn, vpn.add_device(head(vpn), "Grandma's phone", preshared_key=True))
    assert (str(device.ipv4), device.id, device.key_holder) == ("10.9.0.2", 1, "box")
    assert ipaddress.ip_address(device.ipv6) in desired.vpn.ipv6_subnet
    private = vpn.secrets.get(device_key_name(device.id))
    assert keys.public_key(private) == device.public_key
    assert vpn.secrets.get(psk_name(device.id)) is not None
    revision, stored = vpn.store.head()
    assert stored.vpn.devices == (device,)
    assert "PrivateKey" not in json.dumps(stored.to_json()) and private.reveal() not in json.dumps(
        stored.to_json()
    )


def test_addresses_are_never_handed_out_twice(vpn):
    desired, first = commit(vpn, vpn.add_device(head(vpn), "one"))
    commit(vpn, vpn.remove_device(head(vpn), first.id))
    _, second = commit(vpn, vpn.add_device(head(vpn), "two"))
    assert second.ipv4 != first.ipv4 and second.ipv6 != first.ipv6 and second.id != first.id


def test_a_rollback_cannot_make_an_address_or_id_reused(vpn):
    before = vpn.store.head()[0].n
    commit(vpn, vpn.add_device(head(vpn), "one"))
    vpn.store.commit(Desired.from_json(vpn.store.document(before)), "test", "rollback")
    _, again = commit(vpn, vpn.add_device(head(vpn), "again"))
    assert str(again.ipv4) == "10.9.0.3" and again.id == 2


def test_an_exhausted_pool_is_a_clear_error_and_changes_nothing(vpn):
    for i in range(5):  # a /29 holds the box and five devices
        commit(vpn, vpn.add_device(head(vpn), f"device {i}"))
    n = vpn.store.head()[0].n
    with pytest.raises(PoolExhausted, match="larger subnet"):
        vpn.add_device(head(vpn), "one too many")
    assert vpn.store.head()[0].n == n and len(head(vpn).vpn.devices) == 5
    # removing one does not free its address: it was handed out once already
    commit(vpn, vpn.remove_device(head(vpn), "device 0"))
    with pytest.raises(PoolExhausted):
        vpn.add_device(head(vpn), "still too many")


def test_names_are_unique_ignoring_case(vpn):
    commit(vpn, vpn.add_device(head(vpn), "Zoé's phone"))
    with pytest.raises(Conflict) as err:
        vpn.add_device(head(vpn), "ZOÉ'S PHONE")
    assert err.value.field == "name"


def test_a_device_may_bring_its_own_key_but_not_a_used_or_bad_one(vpn):
    own = keys.public_key(keys.new_private_key())
    _, device = commit(vpn, vpn.add_device(head(vpn), "laptop", public_key=own))
    assert device.key_holder == "device" and vpn.secrets.get(device_key_name(device.id)) is None
    with pytest.raises(Conflict):
        vpn.add_device(head(vpn), "copy", public_key=own)
    with pytest.raises(Conflict):
        vpn.add_device(head(vpn), "box's own", public_key=vpn.box_public_key())
    with pytest.raises(Invalid) as err:
        vpn.add_device(head(vpn), "bad", public_key="not a key")
    assert err.value.field == "public_key"


def test_update_and_remove_find_devices_by_id_or_name(vpn):
    _, d = commit(vpn, vpn.add_device(head(vpn), "tablet"))
    _, d2 = commit(vpn, vpn.update_device(head(vpn), "TABLET", mode="full", dns=["9.9.9.9"]))
    assert (d2.id, d2.mode, d2.dns) == (d.id, "full", ("9.9.9.9",))
    with pytest.raises(NotFound):
        vpn.remove_device(head(vpn), "nothing")
    with pytest.raises(Invalid):
        vpn.update_device(head(vpn), d.id, mode="everything")


def test_subnets_are_fixed_once_devices_exist(vpn):
    commit(vpn, vpn.add_device(head(vpn), "one"))
    with pytest.raises(Conflict):
        vpn.change_settings(head(vpn), ipv4_subnet="10.10.0.0/24")
    with pytest.raises(Invalid) as err:
        vpn.change_settings(head(vpn), listen_port=70000)
    assert err.value.field == "listen_port"
    with pytest.raises(Invalid) as err:
        vpn.change_settings(head(vpn), endpoint={"host": "bad host", "port": 1})
    assert err.value.field == "endpoint.host"


def test_history_and_documents(stores):
    store, _ = stores
    a = store.commit(Desired.new(), "alice", "first")
    b = store.commit(Desired.new(), "bob", "second")
    assert [r.n for r in store.history()] == [b.n, a.n]
    assert [r.who for r in store.history(limit=1)] == ["bob"]
    assert store.history(before=b.n)[0].why == "first"
    with pytest.raises(NotFound):
        store.document(999)


def test_the_store_survives_reopening(tmp_path, vpn):
    commit(vpn, vpn.add_device(head(vpn), "phone"))
    path = tmp_path / "state.db"
    again = StateStore(path)
    assert again.head()[1] == head(vpn)
    assert again.last_device_id == 1 and again.was_handed_out("10.9.0.2")

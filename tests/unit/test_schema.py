"""The desired-state document: what it accepts, and that it round-trips."""

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.errors import Conflict, Invalid
from appliance.schema import Desired
from appliance.vpn import keys


def doc_with_devices(*devices):
    doc = Desired.new().to_json()
    doc["vpn"].update(ipv4_subnet="10.1.0.0/24", ipv6_subnet="fd00:1::/64")
    doc["vpn"]["devices"] = list(devices)
    return doc


def device(i, **kw):
    d = {
        "id": i,
        "name": f"device {i}",
        "public_key": keys.public_key(keys.new_private_key()),
        "ipv4": f"10.1.0.{i + 1}",
        "ipv6": f"fd00:1::{i + 1:x}",
        "mode": "home",
    }
    d.update(kw)
    return d


def test_round_trip():
    doc = doc_with_devices(
        device(1), device(2, mode="full", dns=["192.0.2.53"], preshared_key=True, name="هاتف")
    )
    assert (
        Desired.from_json(doc).to_json()
        == Desired.from_json(Desired.from_json(doc).to_json()).to_json()
    )
    assert Desired.from_json(doc).vpn.devices[1].name == "هاتف"


@pytest.mark.parametrize(
    "path, value, field",
    [
        (("schema",), 2, "schema"),
        (("vpn", "listen_port"), "51820", "vpn.listen_port"),
        (("vpn", "interface"), "wg0\n[Peer]", "vpn.interface"),
        (("vpn", "ipv4_subnet"), "10.1.0.0/8", "vpn.ipv4_subnet"),
        (("vpn", "devices", 0, "name"), "x\ny", "vpn.devices[0].name"),
        (("vpn", "devices", 0, "ipv4"), "10.2.0.5", "vpn.devices[0].ipv4"),
        (("vpn", "devices", 0, "ipv4"), "10.1.0.1", "vpn.devices[0].ipv4"),
        (("vpn", "devices", 0, "mode"), "all", "vpn.devices[0].mode"),
        (("vpn", "devices", 0, "public_key"), "A" * 43 + "=", "vpn.devices[0].public_key"),
        (("vpn", "devices", 0, "surprise"), 1, "vpn.devices[0].surprise"),
        (("box", "name"), "", "box.name"),
    ],
)
def test_bad_documents_name_the_field(path, value, field):
    doc = doc_with_devices(device(1))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(Invalid) as err:
        Desired.from_json(doc)
    assert err.value.field == field


@pytest.mark.parametrize("clash", ["id", "name", "public_key", "ipv4", "ipv6"])
def test_no_two_devices_share_an_identity(clash):
    a, b = device(1), device(2)
    b[clash] = a[clash]
    with pytest.raises(Conflict):
        Desired.from_json(doc_with_devices(a, b))


@settings(max_examples=200)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
        ),
        max_leaves=8,
    ),
    st.sampled_from(["schema", "box", "vpn"]),
)
def test_garbage_anywhere_is_refused_as_invalid(garbage, where):
    doc = copy.deepcopy(doc_with_devices(device(1)))
    doc[where] = garbage
    try:
        Desired.from_json(doc)
    except (Invalid, Conflict):
        pass

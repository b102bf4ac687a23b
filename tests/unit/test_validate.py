"""Single values: what a household may type, and what it may not."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance import validate as v
from appliance.errors import Invalid
from appliance.vpn import keys


@pytest.mark.parametrize(
    "name",
    [
        "Grandma's phone",
        'The "big" laptop',
        "Phone [Peer]",
        "[Interface]",
        "Téléphone de Zoé",
        "هاتف جدتي",
        "दादी का फ़ोन",
        "bibi 📱",
        "👩‍👩‍👧 tablet",
        "a" * 64,
    ],
)
def test_names_households_use_are_accepted_exactly(name):
    assert v.text(name, "name", 64) == name


@pytest.mark.parametrize(
    "name, why",
    [
        ("phone\nPrivateKey = x", "control character"),
        ("phone\r", "start or end with spaces"),
        ("pho\rne", "control character"),
        ("ph\x00one", "control character"),
        ("ph\x1bone", "control character"),
        ("ph\u2028one", "control character"),
        ("evil\u202eenohp", "control character"),
        ("a" * 10_000, "too long"),
        ("a" * 65, "too long"),
        ("", "empty"),
        ("  phone", "spaces"),
    ],
)
def test_names_that_would_break_or_spoof_are_refused(name, why):
    with pytest.raises(Invalid, match=why) as err:
        v.text(name, "name", 64)
    assert err.value.field == "name"


@pytest.mark.parametrize("value", [None, 3, ["phone"], {"a": 1}, b"phone"])
def test_names_must_be_text(value):
    with pytest.raises(Invalid, match="must be text"):
        v.text(value, "name", 64)


@given(st.text(max_size=80))
def test_any_text_is_either_refused_or_kept_exactly(name):
    try:
        assert v.text(name, "name", 64) == name
    except Invalid as err:
        assert err.field == "name"


def test_name_key_makes_case_and_normal_form_the_same():
    assert v.name_key("Zoé") == v.name_key("ZOE\u0301")


def test_wireguard_keys():
    good = keys.public_key(keys.new_private_key())
    assert v.wg_key(good, "k") == good
    for bad in [
        "",
        "x" * 44,
        good[:-1],
        good + "=",
        "A" * 43 + "=",
        "!" * 43 + "=",
        good.replace("=", "\n"),
    ]:
        with pytest.raises(Invalid):
            v.wg_key(bad, "k")
    # Non-canonical base64: the same 32 bytes, with the last character's spare bits set.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    noncanonical = good[:42] + alphabet[alphabet.index(good[42]) | 1] + "="
    with pytest.raises(Invalid):
        v.wg_key(noncanonical, "k")


def test_integers_refuse_bools_and_ranges():
    assert v.integer(51820, "port", 1, 65535) == 51820
    for bad in (True, 0, 65536, "51820", 1.5, None):
        with pytest.raises(Invalid):
            v.integer(bad, "port", 1, 65535)


@pytest.mark.parametrize(
    "host", ["box.example.org", "192.0.2.1", "2001:db8::1", "BOX.example.org."]
)
def test_endpoint_hosts(host):
    assert v.hostname_or_ip(host, "host")


@pytest.mark.parametrize(
    "host",
    [
        "",
        "box example",
        "-box.org",
        "a" * 64 + ".org",
        "box.org\n",
        "box.org:51820",
        "http://box.org",
        "x" * 254,
    ],
)
def test_bad_endpoint_hosts(host):
    with pytest.raises(Invalid):
        v.hostname_or_ip(host, "host")


def test_networks_must_have_host_bits_zero_and_the_right_family():
    assert str(v.network("10.1.0.0/24", "n", 4)) == "10.1.0.0/24"
    for bad, version in (
        ("10.1.0.1/24", 4),
        ("fd00::/64", 4),
        ("10.0.0.0/24", 6),
        ("nope", 4),
        (7, 4),
    ):
        with pytest.raises(Invalid):
            v.network(bad, "n", version)


def test_interface_names():
    assert v.ifname("wg0", "i") == "wg0"
    for bad in ("", "a" * 16, "wg 0", "wg/0", "wg0\n", None):
        with pytest.raises(Invalid):
            v.ifname(bad, "i")
